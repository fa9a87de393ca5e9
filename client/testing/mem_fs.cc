#include "client/testing/mem_fs.h"

#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace txbuf::client::testing {
namespace {

constexpr absl::string_view kFhPrefix = "MEMFH";
constexpr uint64_t kRoot = 1;

int64_t NowNs() { return absl::ToUnixNanos(absl::Now()); }

// A name check as PROTOCOL.md section 3 says.
rpc::Status CheckName(absl::string_view name) {
  if (name.empty() || name == "." || name == ".." ||
      name.find('/') != absl::string_view::npos ||
      name.find('\0') != absl::string_view::npos) {
    return rpc::STATUS_INVAL;
  }
  if (name.size() > 255) return rpc::STATUS_NAMETOOLONG;
  return rpc::STATUS_OK;
}

}  // namespace

MemFs::MemFs(MemFsOptions options) : options_(options) {
  absl::MutexLock l(&mu_);
  Node* root = NewNode(rpc::FILE_TYPE_DIRECTORY, 0755);
  (void)root;
}

MemFs::Node* MemFs::NewNode(rpc::FileType type, uint32_t mode) {
  uint64_t id = next_id_++;
  Node& n = nodes_[id];
  n.id = id;
  n.type = type;
  n.mode = mode;
  n.atime_ns = n.mtime_ns = n.ctime_ns = NowNs();
  return &n;
}

MemFs::Node* MemFs::Get(uint64_t id) {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : &it->second;
}

MemFs::Node* MemFs::Resolve(absl::string_view path) {
  Node* n = Get(kRoot);
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (n == nullptr || n->type != rpc::FILE_TYPE_DIRECTORY) return nullptr;
    auto it = n->children.find({part.data(), part.size()});
    if (it == n->children.end()) return nullptr;
    n = Get(it->second);
  }
  return n;
}

std::string MemFs::Fh(const Node& n) const {
  std::string fh(kFhPrefix);
  for (int i = 0; i < 8; ++i) fh.push_back(static_cast<char>(n.id >> (8 * i)));
  return fh;
}

void MemFs::FillAttr(const Node& n, rpc::Attr* a) const {
  a->set_type(n.type);
  a->set_mode(n.mode);
  a->set_nlink(n.type == rpc::FILE_TYPE_DIRECTORY ? 2 : 1);
  a->set_uid(1000);
  a->set_gid(1000);
  a->set_size(n.type == rpc::FILE_TYPE_DIRECTORY ? 4096 : n.data.size());
  a->set_used(n.data.size());
  a->set_fileid(n.id);
  a->set_atime_ns(n.atime_ns);
  a->set_mtime_ns(n.mtime_ns);
  a->set_ctime_ns(n.ctime_ns);
}

void MemFs::FhResult(const Node& n, rpc::OpResult* r) const {
  r->mutable_fh()->set_fh(Fh(n));
  FillAttr(n, r->mutable_fh()->mutable_attr());
}

FakeServer::Handler MemFs::Handler() {
  std::shared_ptr<MemFs> self = shared_from_this();
  return [self](const FakeServer::ConnPtr& conn, const rpc::Request& req,
                absl::string_view payload) {
    rpc::Reply reply;
    std::string out;
    self->Execute(req, payload, &reply, &out);
    conn->SendReply(reply, out).IgnoreError();
  };
}

void MemFs::Execute(const rpc::Request& request, absl::string_view payload,
                    rpc::Reply* reply, std::string* reply_payload) {
  absl::MutexLock l(&mu_);
  reply->set_id(request.id());
  Node* cfh = nullptr;
  uint64_t cfh_id = 0;
  for (const rpc::Op& op : request.ops()) {
    rpc::OpResult* r = reply->add_results();
    rpc::Status st = rpc::STATUS_OK;
    std::string err;
    auto fail = [&](rpc::Status s, std::string e) {
      st = s;
      err = std::move(e);
    };
    // CFH may have been removed by an earlier op.
    if (cfh_id != 0) cfh = Get(cfh_id);
    auto need = [&](rpc::FileType t) {
      if (cfh_id == 0) {
        fail(rpc::STATUS_NOFILEHANDLE, "no current file handle");
        return false;
      }
      if (cfh == nullptr) {
        fail(rpc::STATUS_STALE, "stale file handle");
        return false;
      }
      if (t == rpc::FILE_TYPE_DIRECTORY && cfh->type != t) {
        fail(rpc::STATUS_NOTDIR, "not a directory");
        return false;
      }
      if (t == rpc::FILE_TYPE_REGULAR && cfh->type != t) {
        fail(cfh->type == rpc::FILE_TYPE_DIRECTORY ? rpc::STATUS_ISDIR
                                                   : rpc::STATUS_INVAL,
             "not a regular file");
        return false;
      }
      return true;
    };
    auto writable = [&] {
      if (options_.read_only) {
        fail(rpc::STATUS_ROFS, "the export is read-only");
        return false;
      }
      return true;
    };
    switch (op.op_case()) {
      case rpc::Op::kPutrootfh:
        cfh_id = kRoot;
        cfh = Get(kRoot);
        FhResult(*cfh, r);
        break;
      case rpc::Op::kPutfh: {
        const std::string& fh = op.putfh().fh();
        if (fh.size() != kFhPrefix.size() + 8 ||
            !absl::StartsWith(fh, kFhPrefix)) {
          fail(rpc::STATUS_BADHANDLE, "not a handle of this server");
          break;
        }
        uint64_t id = 0;
        for (int i = 0; i < 8; ++i) {
          id |= uint64_t{static_cast<uint8_t>(fh[kFhPrefix.size() + i])}
                << (8 * i);
        }
        Node* n = Get(id);
        if (n == nullptr) {
          fail(rpc::STATUS_STALE, "the file no longer exists");
          break;
        }
        cfh_id = id;
        cfh = n;
        FhResult(*n, r);
        break;
      }
      case rpc::Op::kGetfh:
        if (need(rpc::FILE_TYPE_UNKNOWN)) FhResult(*cfh, r);
        break;
      case rpc::Op::kLookup: {
        if (!need(rpc::FILE_TYPE_DIRECTORY)) break;
        const std::string& path = op.lookup().path();
        if (path.empty() || path[0] == '/') {
          fail(path.empty() ? rpc::STATUS_INVAL : rpc::STATUS_ACCES,
               "bad path");
          break;
        }
        Node* n = cfh;
        for (absl::string_view part : absl::StrSplit(path, '/')) {
          if (part == "..") {
            fail(rpc::STATUS_ACCES, "'..' leaves the export");
            break;
          }
          if (rpc::Status s = CheckName(part); s != rpc::STATUS_OK) {
            fail(s, absl::StrCat("bad name '", part, "'"));
            break;
          }
          if (n->type != rpc::FILE_TYPE_DIRECTORY) {
            fail(rpc::STATUS_NOTDIR, absl::StrCat("not a directory: ", path));
            break;
          }
          auto it = n->children.find({part.data(), part.size()});
          if (it == n->children.end()) {
            fail(rpc::STATUS_NOENT,
                 absl::StrCat("no such file or directory: ", path));
            break;
          }
          n = Get(it->second);
        }
        if (st != rpc::STATUS_OK) break;
        cfh = n;
        cfh_id = n->id;
        FhResult(*n, r);
        break;
      }
      case rpc::Op::kGetattr:
        if (need(rpc::FILE_TYPE_UNKNOWN)) {
          FillAttr(*cfh, r->mutable_attr()->mutable_attr());
        }
        break;
      case rpc::Op::kSetattr: {
        if (!need(rpc::FILE_TYPE_UNKNOWN) || !writable()) break;
        const rpc::SetAttr& s = op.setattr();
        if (s.has_size()) {
          if (cfh->type != rpc::FILE_TYPE_REGULAR) {
            fail(rpc::STATUS_ISDIR, "size of a directory");
            break;
          }
          cfh->data.resize(s.size());
          cfh->mtime_ns = NowNs();
        }
        if (s.has_mode()) cfh->mode = s.mode() & 07777;
        if (s.has_atime_ns()) {
          cfh->atime_ns = s.atime_ns() == -1 ? NowNs() : s.atime_ns();
        }
        if (s.has_mtime_ns()) {
          cfh->mtime_ns = s.mtime_ns() == -1 ? NowNs() : s.mtime_ns();
        }
        cfh->ctime_ns = NowNs();
        FillAttr(*cfh, r->mutable_attr()->mutable_attr());
        break;
      }
      case rpc::Op::kRead: {
        if (!need(rpc::FILE_TYPE_REGULAR)) break;
        const rpc::Read& rd = op.read();
        if (rd.length() > options_.max_read) {
          fail(rpc::STATUS_TOOBIG, "READ over max_read");
          break;
        }
        uint64_t size = cfh->data.size();
        uint64_t off = rd.offset();
        uint64_t n =
            off >= size ? 0 : std::min<uint64_t>(rd.length(), size - off);
        if (reply_payload->size() + n > options_.max_reply_payload) {
          fail(rpc::STATUS_TOOBIG, "reply payload over the limit");
          break;
        }
        rpc::ReadResult* res = r->mutable_read();
        res->set_payload_offset(reply_payload->size());
        res->set_length(static_cast<uint32_t>(n));
        res->set_eof(off + n >= size);
        if (n > 0) reply_payload->append(cfh->data, off, n);
        break;
      }
      case rpc::Op::kWrite: {
        if (!need(rpc::FILE_TYPE_REGULAR) || !writable()) break;
        const rpc::Write& w = op.write();
        if (w.payload_offset() > payload.size() ||
            w.length() > payload.size() - w.payload_offset()) {
          fail(rpc::STATUS_INVAL, "WRITE range outside the payload");
          break;
        }
        if (w.offset() + w.length() > cfh->data.size()) {
          cfh->data.resize(w.offset() + w.length());
        }
        std::memcpy(cfh->data.data() + w.offset(),
                    payload.data() + w.payload_offset(), w.length());
        cfh->mtime_ns = NowNs();
        rpc::WriteResult* res = r->mutable_write();
        res->set_count(w.length());
        res->set_committed(w.stable());
        res->set_verifier(verifier_);
        break;
      }
      case rpc::Op::kCommit:
        if (!need(rpc::FILE_TYPE_REGULAR)) break;
        ++commits_;
        r->mutable_commit()->set_verifier(verifier_);
        break;
      case rpc::Op::kCreate:
      case rpc::Op::kMkdir: {
        if (!need(rpc::FILE_TYPE_DIRECTORY) || !writable()) break;
        bool dir = op.op_case() == rpc::Op::kMkdir;
        const std::string& name = dir ? op.mkdir().name() : op.create().name();
        if (rpc::Status s = CheckName(name); s != rpc::STATUS_OK) {
          fail(s, absl::StrCat("bad name '", name, "'"));
          break;
        }
        auto it = cfh->children.find(name);
        if (it != cfh->children.end()) {
          Node* n = Get(it->second);
          if (dir || op.create().exclusive()) {
            fail(rpc::STATUS_EXIST, absl::StrCat("'", name, "' exists"));
            break;
          }
          if (n->type == rpc::FILE_TYPE_DIRECTORY) {
            fail(rpc::STATUS_ISDIR,
                 absl::StrCat("'", name, "' is a directory"));
            break;
          }
          cfh = n;
          cfh_id = n->id;
          FhResult(*n, r);
          break;
        }
        uint64_t parent = cfh_id;
        Node* n =
            NewNode(dir ? rpc::FILE_TYPE_DIRECTORY : rpc::FILE_TYPE_REGULAR,
                    (dir ? op.mkdir().mode() : op.create().mode()) & 07777);
        Get(parent)->children[name] = n->id;
        cfh = n;
        cfh_id = n->id;
        FhResult(*n, r);
        break;
      }
      case rpc::Op::kRemove:
      case rpc::Op::kRmdir: {
        if (!need(rpc::FILE_TYPE_DIRECTORY) || !writable()) break;
        bool dir = op.op_case() == rpc::Op::kRmdir;
        const std::string& name = dir ? op.rmdir().name() : op.remove().name();
        auto it = cfh->children.find(name);
        if (it == cfh->children.end()) {
          fail(rpc::STATUS_NOENT, absl::StrCat("no such entry '", name, "'"));
          break;
        }
        Node* n = Get(it->second);
        if (dir && n->type != rpc::FILE_TYPE_DIRECTORY) {
          fail(rpc::STATUS_NOTDIR,
               absl::StrCat("'", name, "' is not a directory"));
          break;
        }
        if (!dir && n->type == rpc::FILE_TYPE_DIRECTORY) {
          fail(rpc::STATUS_ISDIR, absl::StrCat("'", name, "' is a directory"));
          break;
        }
        if (dir && !n->children.empty()) {
          fail(rpc::STATUS_NOTEMPTY, absl::StrCat("'", name, "' is not empty"));
          break;
        }
        nodes_.erase(n->id);
        cfh->children.erase(it);
        break;
      }
      case rpc::Op::kRename: {
        if (!need(rpc::FILE_TYPE_DIRECTORY) || !writable()) break;
        const rpc::Rename& rn = op.rename();
        Node* to_dir = cfh;
        if (!rn.to_dir().empty()) {
          to_dir = nullptr;
          const std::string& fh = rn.to_dir();
          if (fh.size() == kFhPrefix.size() + 8) {
            uint64_t id = 0;
            for (int i = 0; i < 8; ++i) {
              id |= uint64_t{static_cast<uint8_t>(fh[kFhPrefix.size() + i])}
                    << (8 * i);
            }
            to_dir = Get(id);
          }
          if (to_dir == nullptr) {
            fail(rpc::STATUS_STALE, "bad to_dir handle");
            break;
          }
        }
        if (rpc::Status s = CheckName(rn.to_name()); s != rpc::STATUS_OK) {
          fail(s, "bad target name");
          break;
        }
        auto it = cfh->children.find(rn.from_name());
        if (it == cfh->children.end()) {
          fail(rpc::STATUS_NOENT,
               absl::StrCat("no such entry '", rn.from_name(), "'"));
          break;
        }
        uint64_t id = it->second;
        auto old = to_dir->children.find(rn.to_name());
        if (old != to_dir->children.end() && old->second != id) {
          Node* o = Get(old->second);
          if (o->type == rpc::FILE_TYPE_DIRECTORY) {
            fail(rpc::STATUS_EXIST, "target is a directory");
            break;
          }
          nodes_.erase(o->id);
        }
        cfh->children.erase(it);
        to_dir->children[rn.to_name()] = id;
        break;
      }
      case rpc::Op::kReaddir: {
        if (!need(rpc::FILE_TYPE_DIRECTORY)) break;
        const rpc::ReadDir& rd = op.readdir();
        uint32_t max = rd.max_entries() == 0 ? 1024 : rd.max_entries();
        rpc::ReadDirResult* res = r->mutable_readdir();
        uint64_t pos = 0;
        bool eof = true;
        for (const auto& [name, id] : cfh->children) {
          ++pos;
          if (pos <= rd.cookie()) continue;
          if (static_cast<uint32_t>(res->entries_size()) >= max) {
            eof = false;
            break;
          }
          Node* n = Get(id);
          rpc::DirEntry* e = res->add_entries();
          e->set_name(name);
          e->set_cookie(pos);
          e->set_fileid(id);
          e->set_type(n->type);
          if (rd.with_attrs()) {
            FillAttr(*n, e->mutable_attr());
            e->set_fh(Fh(*n));
          }
        }
        res->set_eof(eof);
        break;
      }
      case rpc::Op::kStatfs: {
        rpc::StatFsResult* s = r->mutable_statfs();
        s->set_total_bytes(uint64_t{100} << 30);
        s->set_free_bytes(uint64_t{60} << 30);
        s->set_avail_bytes(uint64_t{50} << 30);
        s->set_total_files(1000000);
        s->set_free_files(1000000 - nodes_.size());
        s->set_block_size(4096);
        s->set_name_max(255);
        break;
      }
      case rpc::Op::kStats: {
        rpc::StatsResult* s = r->mutable_stats();
        s->set_pinned_bytes(4096);
        s->set_pinned_bytes_max(1 << 20);
        s->set_txbufs_in_flight(1);
        s->mutable_destructor_latency()->set_count(10);
        s->mutable_destructor_latency()->set_p50(70000);
        s->mutable_destructor_latency()->set_p99(5000000);
        s->mutable_destructor_latency()->set_mean(123456.5);
        s->set_zerocopy_completions(3);
        s->set_copied_completions(7);
        rpc::EngineStats* e = s->add_engines();
        e->set_name("copy");
        e->set_txbufs(10);
        e->set_bytes(12345);
        rpc::SlabStats* sl = s->add_slabs();
        sl->set_name("attr_reply");
        sl->set_object_size(112);
        sl->set_active_objects(2);
        s->mutable_page_cache()->set_pages(42);
        s->set_connections(1);
        s->set_connections_total(3);
        s->set_requests(99);
        s->set_engine("auto \"quoted\"");
        break;
      }
      case rpc::Op::kSymlink:  // the fake file system has no symlinks
      case rpc::Op::kReadlink:
        fail(rpc::STATUS_NOTSUPP, "symbolic links are not supported here");
        break;
      case rpc::Op::OP_NOT_SET:
        fail(rpc::STATUS_OP_ILLEGAL, "unknown operation");
        break;
    }
    if (st != rpc::STATUS_OK) {
      r->clear_result();
      r->set_status(st);
      r->set_error(err);
      reply->set_status(st);
      reply->set_error(err);
      return;
    }
  }
  reply->set_status(rpc::STATUS_OK);
}

void MemFs::MakeDirs(absl::string_view path) {
  absl::MutexLock l(&mu_);
  Node* n = Get(kRoot);
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    auto it = n->children.find({part.data(), part.size()});
    if (it != n->children.end()) {
      n = Get(it->second);
      continue;
    }
    uint64_t parent = n->id;
    Node* d = NewNode(rpc::FILE_TYPE_DIRECTORY, 0755);
    Get(parent)->children[{part.data(), part.size()}] = d->id;
    n = d;
  }
}

void MemFs::PutFile(absl::string_view path, absl::string_view data) {
  std::vector<absl::string_view> parts =
      absl::StrSplit(path, '/', absl::SkipEmpty());
  std::string name(parts.back());
  parts.pop_back();
  std::string dir = absl::StrJoin(parts, "/");
  MakeDirs(dir);
  absl::MutexLock l(&mu_);
  Node* d = Resolve(dir);
  auto it = d->children.find(name);
  Node* f = nullptr;
  if (it != d->children.end()) {
    f = Get(it->second);
  } else {
    uint64_t parent = d->id;
    f = NewNode(rpc::FILE_TYPE_REGULAR, 0644);
    Get(parent)->children[name] = f->id;
  }
  f->data.assign(data.data(), data.size());
}

std::optional<std::string> MemFs::GetFile(absl::string_view path) const {
  absl::MutexLock l(&mu_);
  Node* n = const_cast<MemFs*>(this)->Resolve(path);
  if (n == nullptr || n->type != rpc::FILE_TYPE_REGULAR) return std::nullopt;
  return n->data;
}

bool MemFs::Exists(absl::string_view path) const {
  absl::MutexLock l(&mu_);
  return const_cast<MemFs*>(this)->Resolve(path) != nullptr;
}

void MemFs::set_verifier(uint64_t v) {
  absl::MutexLock l(&mu_);
  verifier_ = v;
}

uint64_t MemFs::commits() const {
  absl::MutexLock l(&mu_);
  return commits_;
}

}  // namespace txbuf::client::testing
