#include "client/compound.h"

#include <limits>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/internal/compound_access.h"
#include "client/status.h"
#include "common/page_pool.h"
#include "proto/compose.h"

namespace txbuf::client {

Compound& Compound::PutRootFh(absl::string_view export_name) {
  AddOp().mutable_putrootfh()->set_export_name(export_name.data(),
                                               export_name.size());
  return *this;
}

Compound& Compound::PutFh(absl::string_view fh) {
  AddOp().mutable_putfh()->set_fh(fh.data(), fh.size());
  return *this;
}

Compound& Compound::GetFh() {
  AddOp().mutable_getfh();
  return *this;
}

Compound& Compound::Lookup(absl::string_view path, bool no_follow) {
  rpc::Lookup* l = AddOp().mutable_lookup();
  l->set_path(path.data(), path.size());
  if (no_follow) l->set_no_follow(true);
  return *this;
}

Compound& Compound::Symlink(absl::string_view name, absl::string_view target) {
  rpc::Symlink* s = AddOp().mutable_symlink();
  s->set_name(name.data(), name.size());
  s->set_target(target.data(), target.size());
  return *this;
}

Compound& Compound::Readlink() {
  AddOp().mutable_readlink();
  return *this;
}

Compound& Compound::GetAttr() {
  AddOp().mutable_getattr();
  return *this;
}

Compound& Compound::SetAttr(const SetAttrArgs& args) {
  rpc::SetAttr* s = AddOp().mutable_setattr();
  if (args.mode) s->set_mode(*args.mode);
  if (args.size) s->set_size(*args.size);
  if (args.atime_ns) s->set_atime_ns(*args.atime_ns);
  if (args.mtime_ns) s->set_mtime_ns(*args.mtime_ns);
  return *this;
}

Compound& Compound::Read(uint64_t offset, uint32_t length) {
  rpc::Read* r = AddOp().mutable_read();
  r->set_offset(offset);
  r->set_length(length);
  return *this;
}

Compound& Compound::Write(uint64_t offset, OwnedBytes data,
                          rpc::Stability stable) {
  rpc::Write* w = AddOp().mutable_write();
  w->set_offset(offset);
  w->set_stable(stable);
  if (data.size() > std::numeric_limits<uint32_t>::max()) {
    if (status_.ok()) {
      status_ = absl::InvalidArgumentError(absl::StrFormat(
          "WRITE of %d bytes: at most 4 GiB - 1 per op", data.size()));
    }
    return *this;  // `data` is released now.
  }
  w->set_length(static_cast<uint32_t>(data.size()));
  w->set_payload_offset(payload_size_);
  payload_size_ += data.size();
  if (data.empty()) return *this;  // nothing to reference; released now.
  payload_.push_back(std::move(data));
  return *this;
}

Compound& Compound::Write(uint64_t offset, std::string data,
                          rpc::Stability stable) {
  return Write(offset, OwnedBytes::Of(std::move(data)), stable);
}

Compound& Compound::Commit() {
  AddOp().mutable_commit();
  return *this;
}

Compound& Compound::Create(absl::string_view name, uint32_t mode,
                           bool exclusive) {
  rpc::Create* c = AddOp().mutable_create();
  c->set_name(name.data(), name.size());
  c->set_mode(mode);
  c->set_exclusive(exclusive);
  return *this;
}

Compound& Compound::Mkdir(absl::string_view name, uint32_t mode) {
  rpc::Mkdir* m = AddOp().mutable_mkdir();
  m->set_name(name.data(), name.size());
  m->set_mode(mode);
  return *this;
}

Compound& Compound::Remove(absl::string_view name) {
  AddOp().mutable_remove()->set_name(name.data(), name.size());
  return *this;
}

Compound& Compound::Rmdir(absl::string_view name) {
  AddOp().mutable_rmdir()->set_name(name.data(), name.size());
  return *this;
}

Compound& Compound::Rename(absl::string_view from_name,
                           absl::string_view to_name,
                           absl::string_view to_dir_fh) {
  rpc::Rename* r = AddOp().mutable_rename();
  r->set_from_name(from_name.data(), from_name.size());
  r->set_to_name(to_name.data(), to_name.size());
  r->set_to_dir(to_dir_fh.data(), to_dir_fh.size());
  return *this;
}

Compound& Compound::ReadDir(uint64_t cookie, uint32_t max_entries,
                            bool with_attrs) {
  rpc::ReadDir* r = AddOp().mutable_readdir();
  r->set_cookie(cookie);
  r->set_max_entries(max_entries);
  r->set_with_attrs(with_attrs);
  return *this;
}

Compound& Compound::StatFs() {
  AddOp().mutable_statfs();
  return *this;
}

Compound& Compound::Stats() {
  AddOp().mutable_stats();
  return *this;
}

std::string Compound::DebugString() const {
  std::string out;
  for (const rpc::Op& op : request_.ops()) {
    if (!out.empty()) out += ' ';
    out += OpDescription(op);
  }
  return out;
}

std::string OpDescription(const rpc::Op& op) {
  auto quoted = [](absl::string_view s) {
    return absl::StrCat("'", absl::Utf8SafeCHexEscape(s), "'");
  };
  switch (op.op_case()) {
    case rpc::Op::kPutrootfh:
      return "PUTROOTFH";
    case rpc::Op::kPutfh:
      return "PUTFH";
    case rpc::Op::kGetfh:
      return "GETFH";
    case rpc::Op::kLookup:
      return absl::StrCat("LOOKUP ", quoted(op.lookup().path()));
    case rpc::Op::kGetattr:
      return "GETATTR";
    case rpc::Op::kSetattr:
      return "SETATTR";
    case rpc::Op::kRead:
      return absl::StrCat("READ ", op.read().offset(), "+", op.read().length());
    case rpc::Op::kWrite:
      return absl::StrCat("WRITE ", op.write().offset(), "+",
                          op.write().length());
    case rpc::Op::kCommit:
      return "COMMIT";
    case rpc::Op::kCreate:
      return absl::StrCat("CREATE ", quoted(op.create().name()));
    case rpc::Op::kMkdir:
      return absl::StrCat("MKDIR ", quoted(op.mkdir().name()));
    case rpc::Op::kRemove:
      return absl::StrCat("REMOVE ", quoted(op.remove().name()));
    case rpc::Op::kRmdir:
      return absl::StrCat("RMDIR ", quoted(op.rmdir().name()));
    case rpc::Op::kRename:
      return absl::StrCat("RENAME ", quoted(op.rename().from_name()), " -> ",
                          quoted(op.rename().to_name()));
    case rpc::Op::kReaddir:
      return "READDIR";
    case rpc::Op::kStatfs:
      return "STATFS";
    case rpc::Op::kStats:
      return "STATS";
    case rpc::Op::kSymlink:
      return absl::StrCat("SYMLINK ", quoted(op.symlink().name()));
    case rpc::Op::kReadlink:
      return "READLINK";
    case rpc::Op::OP_NOT_SET:
      break;
  }
  return "OP_ILLEGAL";
}

// --- CompoundReply -----------------------------------------------------------

CompoundReply::CompoundReply(rpc::Reply reply, absl::string_view payload,
                             std::string failing_op)
    : reply_(std::move(reply)),
      payload_(
          OwnedBytes::Copy({reinterpret_cast<const std::byte*>(payload.data()),
                            payload.size()})),
      failing_op_(std::move(failing_op)) {}

absl::Status CompoundReply::status(int expected_results) const {
  if (reply_.status() != rpc::STATUS_OK) {
    absl::string_view error = reply_.error();
    if (error.empty() && !reply_.results().empty()) {
      error = reply_.results(reply_.results_size() - 1).error();
    }
    std::string context = failing_op_;
    // The server's text may name the op already ("lookup 'a': ..."): then
    // it says it all.
    absl::string_view op_name =
        absl::string_view(failing_op_)
            .substr(0, absl::string_view(failing_op_).find(' '));
    if (!op_name.empty() && error.size() > op_name.size() &&
        absl::StartsWithIgnoreCase(error, op_name) &&
        error[op_name.size()] == ' ') {
      context.clear();
    }
    if (failing_op_.empty() && reply_.results().empty()) {
      context = "request refused";
    }
    return StatusFromRpc(reply_.status(), error, context);
  }
  if (expected_results >= 0 && reply_.results_size() < expected_results) {
    return absl::DataLossError(absl::StrFormat(
        "server reply has %d results for %d ops but claims success",
        reply_.results_size(), expected_results));
  }
  return absl::OkStatus();
}

absl::Span<const std::byte> CompoundReply::ReadData(int i) const {
  if (i < 0 || i >= reply_.results_size() || !reply_.results(i).has_read()) {
    return {};
  }
  const rpc::ReadResult& r = reply_.results(i).read();
  const size_t payload_size = payload_.size();
  if (r.payload_offset() > payload_size ||
      r.length() > payload_size - r.payload_offset()) {
    return {};
  }
  return {payload_.data() + r.payload_offset(), r.length()};
}

absl::string_view CompoundReply::ReadString(int i) const {
  absl::Span<const std::byte> d = ReadData(i);
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

absl::Status CompoundReply::Validate() const {
  for (int i = 0; i < reply_.results_size(); ++i) {
    if (!reply_.results(i).has_read()) continue;
    const rpc::ReadResult& r = reply_.results(i).read();
    const size_t payload_size = payload_.size();
    if (r.payload_offset() > payload_size ||
        r.length() > payload_size - r.payload_offset()) {
      return absl::DataLossError(absl::StrFormat(
          "malformed reply %d: READ result %d has bytes [%d, %d) outside "
          "the %d-byte payload",
          reply_.id(), i, r.payload_offset(), r.payload_offset() + r.length(),
          payload_size));
    }
  }
  return absl::OkStatus();
}

// --- internal::CompoundAccess ------------------------------------------------

namespace internal {

absl::StatusOr<TxBuf> CompoundAccess::BuildRequestFrame(
    TxBufContext& ctx, Compound& c, uint64_t id, const RequestLimits& limits) {
  // Whatever happens, the WRITE buffers leave the compound: into the txbuf,
  // or released at once on error.
  std::vector<OwnedBytes> pieces = std::move(c.payload_);
  c.payload_.clear();
  if (!c.status_.ok()) return c.status_;
  if (c.request_.ops().empty()) {
    return absl::InvalidArgumentError("empty compound (no ops)");
  }
  if (static_cast<uint64_t>(c.request_.ops_size()) > limits.max_ops) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("compound of %d ops is over the server's limit of %d",
                        c.request_.ops_size(), limits.max_ops));
  }
  if (c.payload_size_ > limits.max_payload) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "%d bytes of WRITE data in one compound is over the server's limit "
        "of %d",
        c.payload_size_, limits.max_payload));
  }
  c.request_.set_id(id);
  size_t env = c.request_.ByteSizeLong();
  if (env > limits.max_envelope) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "request envelope of %d bytes is over the server's limit of %d", env,
        limits.max_envelope));
  }
  absl::StatusOr<TxBuf> tx = ComposeRequestFrame(
      ctx, c.request_, c.payload_size_, [&pieces](TxBufBuilder& b) {
        for (OwnedBytes& p : pieces) b.AppendExternal(std::move(p));
        pieces.clear();
      });
  if (!tx.ok()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "client out of memory for the request frame: ", tx.status().message()));
  }
  return tx;
}

CompoundReply CompoundAccess::MakeReply(rpc::Reply reply, OwnedBytes payload,
                                        const rpc::Request* request) {
  CompoundReply r;
  r.reply_ = std::move(reply);
  r.payload_ = std::move(payload);
  int failed = r.reply_.results_size() - 1;
  if (request != nullptr && r.reply_.status() != rpc::STATUS_OK &&
      failed >= 0 && failed < request->ops_size()) {
    r.failing_op_ = OpDescription(request->ops(failed));
  }
  return r;
}

}  // namespace internal
}  // namespace txbuf::client
