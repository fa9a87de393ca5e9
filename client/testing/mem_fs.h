// client/testing/mem_fs.h: a small in-memory file system that executes
// compounds as docs/PROTOCOL.md section 3 says, for client tests.
//
// It keeps directories and regular files in memory, with file handles that
// go STALE when their file is removed, READ data appended to the reply
// payload in op order, WRITE data taken from the request payload, READDIR
// cookies, a settable write verifier, and an optional read-only mode (ROFS).
// `Handler()` plugs it into a FakeServer.
//
// Thread-safety: thread-safe (one mutex).
//
// Example:
//   auto fs = std::make_shared<MemFs>();
//   fs->PutFile("docs/a.txt", "hello");
//   auto server = FakeServer::Start({}, fs->Handler()).value();
#ifndef TXBUF_CLIENT_TESTING_MEM_FS_H_
#define TXBUF_CLIENT_TESTING_MEM_FS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "client/testing/fake_server.h"
#include "proto/txbuf.pb.h"

namespace txbuf::client::testing {

struct MemFsOptions {
  bool read_only = false;
  uint32_t max_read = 16 << 20;
  // Largest READ reply payload per compound.
  uint64_t max_reply_payload = 64 << 20;
};

class MemFs : public std::enable_shared_from_this<MemFs> {
 public:
  explicit MemFs(MemFsOptions options = {});

  // A FakeServer handler that executes each request here and replies.
  //
  // Example:
  //   FakeServer::Start({}, fs->Handler());
  FakeServer::Handler Handler();

  // Executes one compound.
  //
  // Example:
  //   rpc::Reply reply; std::string payload;
  //   fs.Execute(request, request_payload, &reply, &payload);
  void Execute(const rpc::Request& request, absl::string_view payload,
               rpc::Reply* reply, std::string* reply_payload);

  // Creates (or replaces) a file and its parent directories.
  //
  // Example:
  //   fs->PutFile("docs/a.txt", "hello");
  void PutFile(absl::string_view path, absl::string_view data);
  // A file's bytes, nullopt if there is no such regular file.
  //
  // Example:
  //   EXPECT_EQ(*fs->GetFile("docs/a.txt"), "hello");
  std::optional<std::string> GetFile(absl::string_view path) const;
  // Creates a directory tree.
  //
  // Example:
  //   fs->MakeDirs("a/b/c");
  void MakeDirs(absl::string_view path);
  // True if `path` names anything.
  //
  // Example:
  //   EXPECT_FALSE(fs->Exists("gone"));
  bool Exists(absl::string_view path) const;

  // The write verifier WRITE and COMMIT return (change it to "restart").
  //
  // Example:
  //   fs->set_verifier(99);
  void set_verifier(uint64_t v);
  // COMMITs executed.
  //
  // Example:
  //   EXPECT_EQ(fs->commits(), 1u);
  uint64_t commits() const;

 private:
  struct Node {
    uint64_t id = 0;
    rpc::FileType type = rpc::FILE_TYPE_REGULAR;
    uint32_t mode = 0644;
    std::string data;
    std::map<std::string, uint64_t> children;  // directories
    int64_t atime_ns = 0, mtime_ns = 0, ctime_ns = 0;
  };
  Node* Get(uint64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Node* Resolve(absl::string_view path) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Node* NewNode(rpc::FileType type, uint32_t mode)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FillAttr(const Node& n, rpc::Attr* a) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string Fh(const Node& n) const;
  void FhResult(const Node& n, rpc::OpResult* r) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const MemFsOptions options_;
  mutable absl::Mutex mu_;
  std::map<uint64_t, Node> nodes_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t verifier_ ABSL_GUARDED_BY(mu_) = 0x7478627566ULL;
  uint64_t commits_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace txbuf::client::testing

#endif  // TXBUF_CLIENT_TESTING_MEM_FS_H_
