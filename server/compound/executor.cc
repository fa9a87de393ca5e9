#include "server/compound/executor.h"

#include "absl/strings/str_cat.h"

namespace txbuf::server {
namespace {

absl::Status NeedFh(const NodeRef& cfh) {
  if (cfh == nullptr) {
    return RpcError(rpc::STATUS_NOFILEHANDLE,
                    "no current file handle (start with PUTROOTFH or PUTFH)");
  }
  return absl::OkStatus();
}

Stability ToStability(rpc::Stability s) {
  switch (s) {
    case rpc::STABILITY_DATA_SYNC:
      return Stability::kDataSync;
    case rpc::STABILITY_FILE_SYNC:
      return Stability::kFileSync;
    default:
      return Stability::kUnstable;
  }
}

// A data op whose file the cache releases this many times in a row fails.
constexpr int kMaxFileReleasedRetries = 4;

IoMode IoModeOf(ExecMode mode) {
  return mode == ExecMode::kEventLoop ? IoMode::kNoBlock : IoMode::kMayBlock;
}

// The file system's plain types to and from their messages.
rpc::FileType ToWire(FileType t) {
  switch (t) {
    case FileType::kRegular:
      return rpc::FILE_TYPE_REGULAR;
    case FileType::kDirectory:
      return rpc::FILE_TYPE_DIRECTORY;
    case FileType::kSymlink:
      return rpc::FILE_TYPE_SYMLINK;
    case FileType::kOther:
      return rpc::FILE_TYPE_OTHER;
    case FileType::kUnknown:
      break;
  }
  return rpc::FILE_TYPE_UNKNOWN;
}

void ToWire(const FileAttr& a, rpc::Attr* out) {
  out->set_type(ToWire(a.type));
  out->set_mode(a.mode);
  out->set_nlink(a.nlink);
  out->set_uid(a.uid);
  out->set_gid(a.gid);
  out->set_size(a.size);
  out->set_used(a.used);
  out->set_fileid(a.fileid);
  out->set_atime_ns(a.atime_ns);
  out->set_mtime_ns(a.mtime_ns);
  out->set_ctime_ns(a.ctime_ns);
}

void ToWire(DirEntry&& e, rpc::DirEntry* out) {
  out->set_name(std::move(e.name));
  out->set_cookie(e.cookie);
  out->set_fileid(e.fileid);
  out->set_type(ToWire(e.type));
  if (e.attr.has_value()) ToWire(*e.attr, out->mutable_attr());
  if (!e.fh.empty()) out->set_fh(std::move(e.fh));
}

void ToWire(const FsStats& s, rpc::StatFsResult* out) {
  out->set_total_bytes(s.total_bytes);
  out->set_free_bytes(s.free_bytes);
  out->set_avail_bytes(s.avail_bytes);
  out->set_total_files(s.total_files);
  out->set_free_files(s.free_files);
  out->set_block_size(s.block_size);
  out->set_name_max(s.name_max);
}

SetAttrArgs FromWire(const rpc::SetAttr& a) {
  SetAttrArgs out;
  if (a.has_mode()) out.mode = a.mode();
  if (a.has_size()) out.size = a.size();
  if (a.has_atime_ns()) out.atime_ns = a.atime_ns();
  if (a.has_mtime_ns()) out.mtime_ns = a.mtime_ns();
  return out;
}

// Marks the op as one to run off the event loop (it changed nothing).
absl::Status WouldBlock(CompoundState& cur) {
  cur.would_block = true;
  return absl::OkStatus();
}

}  // namespace

Executor::Executor(std::vector<ServedExport> exports, ServerLimits limits,
                   uint64_t verifier, StatsFiller fill_stats)
    : exports_(std::move(exports)),
      limits_(limits),
      verifier_(verifier),
      fill_stats_(std::move(fill_stats)) {}

ClientAccess Executor::AccessOf(const sockaddr_storage& peer) const {
  ClientAccess out;
  out.reserve(exports_.size());
  for (const ServedExport& e : exports_) {
    const Access own =
        e.ex->read_only() ? Access::kReadOnly : Access::kReadWrite;
    const Access a = AccessFor(e.rules, own, peer);
    out.push_back(a == Access::kReadWrite ? own : a);
  }
  return out;
}

absl::Status Executor::CheckAccess(const CompoundState& cur, uint32_t index,
                                   bool modifies) const {
  if (cur.access == nullptr) return absl::OkStatus();
  const Access a =
      index < cur.access->size() ? (*cur.access)[index] : Access::kNone;
  if (a == Access::kNone) {
    return RpcError(rpc::STATUS_ACCES,
                    absl::StrCat("export '", exports_[index].name,
                                 "' is not exported to this client"));
  }
  if (modifies && a == Access::kReadOnly) {
    return RpcError(rpc::STATUS_ROFS,
                    absl::StrCat("export '", exports_[index].name,
                                 "' is read-only for this client"));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> Executor::ExportOfHandle(absl::string_view fh) const {
  uint64_t id = 0;
  if (Export::ExportIdOfHandle(fh, &id)) {
    for (uint32_t i = 0; i < exports_.size(); ++i) {
      if (exports_[i].ex->export_id() == id) return i;
    }
  }
  return RpcError(rpc::STATUS_BADHANDLE, "not a file handle of this server");
}

absl::Status Executor::WithFile(
    CompoundState& cur, ExecMode mode,
    absl::FunctionRef<absl::Status(PageCache::File&)> use, bool write) {
  for (int tries = 0;; ++tries) {
    absl::StatusOr<std::shared_ptr<PageCache::File>> f =
        FileOf(cur, mode, write);
    if (!f.ok()) return f.status();
    if (*f == nullptr) return WouldBlock(cur);
    absl::Status s = use(**f);
    if (IsFileReleased(s) && tries < kMaxFileReleasedRetries) {
      // The export gave the file's descriptor back meanwhile: get it again
      // (not the released File, which the node may still hold a moment).
      if (cur.cached != nullptr) cur.cached->file.reset();
      Export::DropReleased(*cur.cfh, *f);
      continue;
    }
    if (IsWouldBlock(s)) return WouldBlock(cur);
    return s;
  }
}

absl::Status Executor::FillFh(Export& ex, const NodeRef& n,
                              rpc::OpResult* res) {
  absl::StatusOr<struct stat> st = ex.Stat(*n);
  if (!st.ok()) return st.status();
  rpc::FhResult* fh = res->mutable_fh();
  fh->set_fh(ex.HandleOf(*n));
  FileAttr attr;
  Export::ToAttr(*st, n.get(), &attr);
  ToWire(attr, fh->mutable_attr());
  return absl::OkStatus();
}

absl::Status Executor::FillNewFh(Export& ex, const NodeRef& n,
                                 rpc::OpResult* res) {
  absl::Status e = FillFh(ex, n, res);
  if (WireStatusOf(e) == rpc::STATUS_STALE) {
    // The object this op made was removed by someone else before its
    // attributes were read: no handle of the client's is stale.
    return RpcError(rpc::STATUS_NOENT,
                    "created, then removed by another client before the reply");
  }
  return e;
}

void Executor::Execute(const rpc::Request& req,
                       absl::Span<const std::byte> payload, CompoundOutput* out,
                       HandleCache* handles) {
  CompoundState state;
  while (!Run(req, payload, out, handles, &state, ExecMode::kMayBlock)) {
  }
}

bool Executor::Run(const rpc::Request& req, absl::Span<const std::byte> payload,
                   CompoundOutput* out, HandleCache* handles,
                   CompoundState* state, ExecMode mode) {
  const bool done = RunOps(req, payload, out, handles, state, mode);
  // Pool threads also write back the files descriptor eviction could not
  // close because of their dirty pages.
  if (mode == ExecMode::kMayBlock) {
    for (const ServedExport& e : exports_) e.ex->FlushEvicted();
  }
  return done;
}

bool Executor::RunOps(const rpc::Request& req,
                      absl::Span<const std::byte> payload, CompoundOutput* out,
                      HandleCache* handles, CompoundState* state,
                      ExecMode mode) {
  rpc::Reply& reply = out->reply;
  if (state->next_op == 0) {
    reply.set_id(req.id());
    if (static_cast<uint32_t>(req.ops_size()) > limits_.max_ops) {
      reply.set_status(rpc::STATUS_TOOBIG);
      reply.set_error(absl::StrCat("compound of ", req.ops_size(),
                                   " ops over the limit of ", limits_.max_ops));
      return true;
    }
  }
  int ran = 0;
  while (state->next_op < req.ops_size()) {
    const rpc::Op& op = req.ops(state->next_op);
    if (mode == ExecMode::kEventLoop &&
        (ran == kMaxEventLoopOps || !EventLoopSafe(op, *state, handles))) {
      return false;
    }
    // A pool thread hands a long compound back after a share of its ops
    // (the caller queues the rest behind the other connections' work).
    if (mode == ExecMode::kMayBlock && ran == kMaxPoolOps) return false;
    rpc::OpResult* res = reply.add_results();
    state->ops_after = req.ops_size() - state->next_op - 1;
    absl::Status e = RunOp(op, payload, *state, handles, res, out, mode);
    if (state->would_block) {  // nothing was changed: finish off the loop
      state->would_block = false;
      reply.mutable_results()->RemoveLast();
      return false;
    }
    ++state->next_op;
    ++ran;
    // The one place a failed op's absl::Status becomes its wire status.
    const rpc::Status status = WireStatusOf(e);
    op_stats_.Count(op.op_case(), status);
    if (e.ok() && op.has_read()) {
      op_stats_.AddReadBytes(res->read().length());
    } else if (e.ok() && op.has_write()) {
      op_stats_.AddWriteBytes(res->write().count());
    }
    if (!e.ok()) {
      std::string message(e.message());
      if (message.size() > limits_.max_error_bytes) {
        message.resize(limits_.max_error_bytes);
      }
      res->clear_result();
      res->set_status(status);
      res->set_error(message);
      reply.set_status(status);
      reply.set_error(std::move(message));
      return true;
    }
  }
  return true;
}

uint64_t Executor::WriteVerifier() const {
  // The exports share one page cache.
  Export& ex = *exports_.front().ex;
  const uint64_t lost = ex.has_cache() ? ex.cache().lost_pages() : 0;
  return verifier_ ^ (lost * 0x9e3779b97f4a7c15ULL);  // 0 lost: unchanged
}

bool Executor::EventLoopSafe(const rpc::Op& op, const CompoundState& cur,
                             HandleCache* handles) const {
  switch (op.op_case()) {
    case rpc::Op::kPutrootfh:
    case rpc::Op::kStatfs:
    case rpc::Op::OP_NOT_SET:
      return true;
    case rpc::Op::kPutfh:  // a recent handle: no table, no stat
      return handles != nullptr && handles->Find(op.putfh().fh()) != nullptr;
    case rpc::Op::kGetattr:  // fstat of an open descriptor; a directory's
                             // also walks its parents (subtree check)
      return cur.cfh == nullptr ||
             (!cur.cfh->is_dir && Ex(cur).HasFd(*cur.cfh));
    case rpc::Op::kRead:  // from cached pages (else it says it would block)
      return true;
    case rpc::Op::kWrite:  // into the cache; stable writes sync
      return op.write().stable() == rpc::STABILITY_UNSTABLE;
    default:
      return false;
  }
}

absl::StatusOr<std::shared_ptr<PageCache::File>> Executor::FileOf(
    CompoundState& cur, ExecMode mode, bool write) {
  if (cur.cached != nullptr) {
    std::shared_ptr<PageCache::File> f = cur.cached->file.lock();
    if (f != nullptr && (!write || f->writable())) {
      return f;
    }
  }
  if (mode == ExecMode::kEventLoop) {
    // Opening may block: only a file the export already has open (for
    // writing, if the op writes).
    std::shared_ptr<PageCache::File> f = Ex(cur).OpenFileIfAny(*cur.cfh);
    if (f != nullptr && write && !f->writable()) f = nullptr;
    return f;
  }
  absl::StatusOr<std::shared_ptr<PageCache::File>> f =
      Ex(cur).File(*cur.cfh, write);
  if (f.ok() && cur.cached != nullptr) cur.cached->file = *f;
  return f;
}

absl::Status Executor::RunOp(const rpc::Op& op,
                             absl::Span<const std::byte> payload,
                             CompoundState& cur, HandleCache* handles,
                             rpc::OpResult* res, CompoundOutput* out,
                             ExecMode mode) {
  NodeRef& cfh = cur.cfh;
  switch (op.op_case()) {  // ops that move the CFH off a cached handle
    case rpc::Op::kPutrootfh:
    case rpc::Op::kLookup:
    case rpc::Op::kCreate:
    case rpc::Op::kMkdir:
      cur.cached = nullptr;
      break;
    default:
      break;
  }
  // Every op on a CFH first checks the connection's access to its export;
  // those that change something need read-write access.
  switch (op.op_case()) {
    case rpc::Op::kPutrootfh:
    case rpc::Op::kPutfh:
    case rpc::Op::kStats:
    case rpc::Op::OP_NOT_SET:
      break;
    case rpc::Op::kStatfs:  // of the CFH's export, or the first one
      if (absl::Status e = CheckAccess(cur, cur.export_index, false); !e.ok()) {
        return e;
      }
      break;
    default: {
      if (absl::Status e = NeedFh(cfh); !e.ok()) return e;
      const bool modifies = op.has_write() || op.has_setattr() ||
                            op.has_create() || op.has_mkdir() ||
                            op.has_remove() || op.has_rmdir() ||
                            op.has_rename() || op.has_symlink();
      if (absl::Status e = CheckAccess(cur, cur.export_index, modifies);
          !e.ok()) {
        return e;
      }
      break;
    }
  }
  Export& ex = Ex(cur);
  switch (op.op_case()) {
    case rpc::Op::kPutrootfh: {  // status only, as in NFSv4 (GETFH asks)
      const std::string& name = op.putrootfh().export_name();
      uint32_t index = 0;
      if (!name.empty()) {
        while (index < exports_.size() && exports_[index].name != name) {
          ++index;
        }
        if (index == exports_.size()) {
          return RpcError(rpc::STATUS_NOENT,
                          absl::StrCat("no export named '", name, "'"));
        }
      }
      if (absl::Status e = CheckAccess(cur, index, false); !e.ok()) return e;
      cur.export_index = index;
      cfh = exports_[index].ex->Root();
      return absl::OkStatus();
    }
    case rpc::Op::kPutfh: {
      const std::string& fh = op.putfh().fh();
      if (handles != nullptr) {
        if (HandleCache::Entry* e = handles->Find(fh)) {
          if (absl::Status a = CheckAccess(cur, e->export_index, false);
              !a.ok()) {
            return a;
          }
          cfh = e->node;
          cur.export_index = e->export_index;
          cur.cached = e;
          return absl::OkStatus();
        }
      }
      absl::StatusOr<uint32_t> index = ExportOfHandle(fh);
      if (!index.ok()) return index.status();
      if (absl::Status a = CheckAccess(cur, *index, false); !a.ok()) return a;
      absl::StatusOr<NodeRef> n = exports_[*index].ex->FromHandle(fh);
      if (!n.ok()) return n.status();
      cfh = *n;
      cur.export_index = *index;
      cur.cached = handles != nullptr ? handles->Put(fh, cfh, *index) : nullptr;
      return absl::OkStatus();
    }
    case rpc::Op::kGetfh:
      return FillFh(ex, cfh, res);
    case rpc::Op::kLookup: {
      absl::StatusOr<NodeRef> n =
          ex.Lookup(*cfh, op.lookup().path(), op.lookup().no_follow());
      if (!n.ok()) return n.status();
      cfh = *n;
      return FillFh(ex, cfh, res);
    }
    case rpc::Op::kGetattr: {
      absl::StatusOr<FileAttr> a = ex.GetAttr(*cfh, IoModeOf(mode));
      if (IsWouldBlock(a.status())) return WouldBlock(cur);
      if (!a.ok()) return a.status();
      ToWire(*a, res->mutable_attr()->mutable_attr());
      return absl::OkStatus();
    }
    case rpc::Op::kSetattr: {
      if (absl::Status e = ex.SetAttr(*cfh, FromWire(op.setattr())); !e.ok()) {
        return e;
      }
      absl::StatusOr<FileAttr> a = ex.GetAttr(*cfh);
      if (!a.ok()) return a.status();
      ToWire(*a, res->mutable_attr()->mutable_attr());
      return absl::OkStatus();
    }
    case rpc::Op::kRead: {
      const rpc::Read& r = op.read();
      if (r.length() > limits_.max_read) {
        return RpcError(
            rpc::STATUS_TOOBIG,
            absl::StrCat("READ of ", r.length(), " bytes over the limit of ",
                         limits_.max_read));
      }
      if (out->payload_bytes + r.length() > limits_.max_reply_payload) {
        return RpcError(rpc::STATUS_TOOBIG,
                        "the compound's READs exceed the reply payload limit");
      }
      CachedRead data;
      if (absl::Status e = WithFile(cur, mode,
                                    [&](PageCache::File& f) {
                                      absl::StatusOr<CachedRead> got =
                                          f.Read(r.offset(), r.length(),
                                                 IoModeOf(mode));
                                      if (!got.ok()) return got.status();
                                      data = *std::move(got);
                                      return absl::OkStatus();
                                    });
          !e.ok() || cur.would_block) {
        return e;
      }
      rpc::ReadResult* rr = res->mutable_read();
      rr->set_payload_offset(out->payload_bytes);
      rr->set_length(static_cast<uint32_t>(data.bytes));
      rr->set_eof(data.eof);
      out->payload_bytes += data.bytes;
      for (PageSlice& s : data.slices) out->payload.push_back(std::move(s));
      return absl::OkStatus();
    }
    case rpc::Op::kWrite: {
      if (ex.read_only())
        return RpcError(rpc::STATUS_ROFS, "the export is read-only");
      const rpc::Write& w = op.write();
      if (w.payload_offset() > payload.size() ||
          w.length() > payload.size() - w.payload_offset()) {
        return RpcError(rpc::STATUS_INVAL,
                        "WRITE data range lies outside the frame payload");
      }
      absl::Status set_id;
      if (absl::Status e = WithFile(
              cur, mode,
              [&](PageCache::File& f) {
                // As the kernel does for writers without CAP_FSETID, and
                // before the data lands: no moment where a set-id file
                // holds bytes its owner did not write.
                set_id = Export::DropSetId(f);
                if (!set_id.ok()) return absl::OkStatus();
                return f.Write(w.offset(),
                               payload.subspan(w.payload_offset(), w.length()),
                               ToStability(w.stable()), IoModeOf(mode));
              },
              /*write=*/true);
          !e.ok() || cur.would_block) {
        return e;
      }
      if (!set_id.ok()) return set_id;
      rpc::WriteResult* wr = res->mutable_write();
      wr->set_count(w.length());
      wr->set_committed(w.stable());
      wr->set_verifier(WriteVerifier());
      return absl::OkStatus();
    }
    case rpc::Op::kCommit: {
      // A directory is ISDIR, another non-regular file INVAL (File()), as
      // for READ and WRITE.
      if (absl::Status e = WithFile(
              cur, mode,
              [&](PageCache::File& f) { return f.Commit(IoModeOf(mode)); });
          !e.ok() || cur.would_block) {
        return e;
      }
      res->mutable_commit()->set_verifier(WriteVerifier());
      return absl::OkStatus();
    }
    case rpc::Op::kCreate: {
      const rpc::Create& c = op.create();
      absl::StatusOr<NodeRef> n =
          ex.Create(*cfh, c.name(), c.mode() ? c.mode() : 0644, c.exclusive());
      if (!n.ok()) return n.status();
      cfh = *n;
      return FillNewFh(ex, cfh, res);
    }
    case rpc::Op::kMkdir: {
      const rpc::Mkdir& m = op.mkdir();
      absl::StatusOr<NodeRef> n =
          ex.Mkdir(*cfh, m.name(), m.mode() ? m.mode() : 0755);
      if (!n.ok()) return n.status();
      cfh = *n;
      return FillNewFh(ex, cfh, res);
    }
    case rpc::Op::kRemove:
      return ex.Remove(*cfh, op.remove().name());
    case rpc::Op::kRmdir:
      return ex.Rmdir(*cfh, op.rmdir().name());
    case rpc::Op::kRename: {
      const rpc::Rename& r = op.rename();
      NodeRef to = cfh;
      if (!r.to_dir().empty()) {
        absl::StatusOr<uint32_t> index = ExportOfHandle(r.to_dir());
        if (!index.ok()) return index.status();
        if (*index != cur.export_index) {
          return RpcError(rpc::STATUS_XDEV, "RENAME into another export");
        }
        absl::StatusOr<NodeRef> n = ex.FromHandle(r.to_dir());
        if (!n.ok()) return n.status();
        to = *n;
      }
      return ex.Rename(*cfh, r.from_name(), *to, r.to_name());
    }
    case rpc::Op::kReaddir: {
      const rpc::ReadDir& r = op.readdir();
      // What is left of the reply envelope for this page, with room for
      // the page's own framing and for the results that may follow (an
      // attribute set or a handle each, or an error text).
      const size_t used = out->reply.ByteSizeLong() + 2048 +
                          200 * static_cast<size_t>(cur.ops_after);
      const size_t room = used < limits_.max_reply_envelope
                              ? limits_.max_reply_envelope - used
                              : 0;
      rpc::ReadDirResult* rd = res->mutable_readdir();
      size_t bytes = 0;
      absl::StatusOr<bool> eof = ex.ReadDir(
          *cfh, r.cookie(), r.max_entries(), r.with_attrs(), [&](DirEntry& e) {
            rpc::DirEntry wire;
            ToWire(std::move(e), &wire);
            // The entry's share of the reply: its bytes plus tag and length.
            const size_t size = wire.ByteSizeLong() + 6;
            if (bytes + size > room) return false;
            bytes += size;
            *rd->add_entries() = std::move(wire);
            return true;
          });
      if (!eof.ok()) return eof.status();
      rd->set_eof(*eof);
      return absl::OkStatus();
    }
    case rpc::Op::kStatfs: {
      absl::StatusOr<FsStats> s = ex.StatFs();
      if (!s.ok()) return s.status();
      ToWire(*s, res->mutable_statfs());
      return absl::OkStatus();
    }
    case rpc::Op::kStats:
      if (fill_stats_) fill_stats_(res->mutable_stats());
      return absl::OkStatus();
    case rpc::Op::kSymlink: {
      const rpc::Symlink& sl = op.symlink();
      absl::StatusOr<NodeRef> n = ex.Symlink(*cfh, sl.name(), sl.target());
      if (!n.ok()) return n.status();
      cfh = *n;
      return FillNewFh(ex, cfh, res);
    }
    case rpc::Op::kReadlink: {
      absl::StatusOr<std::string> t = ex.Readlink(*cfh);
      if (!t.ok()) return t.status();
      res->mutable_readlink()->set_target(std::move(*t));
      return absl::OkStatus();
    }
    case rpc::Op::OP_NOT_SET:
      break;
  }
  return RpcError(rpc::STATUS_OP_ILLEGAL, "unknown operation");
}

}  // namespace txbuf::server
