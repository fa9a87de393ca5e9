// txbuf-grpc-server: the gRPC C++ peer.
//
//   txbuf-grpc-server --root DIR --listen HOST:PORT
//
// A synchronous `Files` service (the default gRPC C++ server model) built
// with default ServerBuilder settings and insecure credentials. Read
// preads into the reply's `bytes` field; Write pwrites the request's. Paths
// are confined to DIR (export_root.h); descriptors are cached per path.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "bench/load/harness.h"
#include "bench/targets/export_root.h"
#include "bench/targets/server_args.h"
#include "grpcpp/grpcpp.h"
#include "peer_files.grpc.pb.h"

namespace txbuf::peers::rpc {
namespace {

::grpc::Status ToGrpc(const absl::Status& s) {
  std::string message(s.message());
  return ::grpc::Status(static_cast<::grpc::StatusCode>(s.code()), message);
}

::grpc::Status ErrnoToGrpc(int err, absl::string_view what) {
  return ::grpc::Status(::grpc::StatusCode::INTERNAL,
                        absl::StrCat(what, ": ", std::strerror(err)));
}

class FilesService final : public Files::Service {
 public:
  explicit FilesService(const internal::ExportRoot& root) : files_(root) {}

  ::grpc::Status Read(::grpc::ServerContext* /*context*/,
                      const ReadRequest* req, ReadReply* reply) override {
    if (req->length() > bench::kMaxRequestBytes) {
      return ::grpc::Status(::grpc::StatusCode::INVALID_ARGUMENT,
                            "length too large");
    }
    absl::StatusOr<int> fd = files_.Get(req->path());
    if (!fd.ok()) return ToGrpc(fd.status());
    std::string* data = reply->mutable_data();
    data->resize(req->length());
    uint64_t got = 0;
    while (got < req->length()) {
      ssize_t r = ::pread(*fd, data->data() + got, req->length() - got,
                          static_cast<off_t>(req->offset() + got));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return ErrnoToGrpc(errno, "pread");
      if (r == 0) break;
      got += static_cast<uint64_t>(r);
    }
    data->resize(got);
    return ::grpc::Status::OK;
  }

  ::grpc::Status Write(::grpc::ServerContext* /*context*/,
                       const WriteRequest* req, WriteReply* reply) override {
    absl::StatusOr<int> fd = files_.Get(req->path());
    if (!fd.ok()) return ToGrpc(fd.status());
    const std::string& data = req->data();
    uint64_t put = 0;
    while (put < data.size()) {
      ssize_t w = ::pwrite(*fd, data.data() + put, data.size() - put,
                           static_cast<off_t>(req->offset() + put));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return ErrnoToGrpc(w < 0 ? errno : EIO, "pwrite");
      put += static_cast<uint64_t>(w);
    }
    reply->set_written(put);
    return ::grpc::Status::OK;
  }

 private:
  internal::FileTable files_;
};

int Main(int argc, char** argv) {
  int exit_code = 0;
  std::optional<internal::PeerServerStart> start =
      internal::StartPeerServer("txbuf-grpc-server", argc, argv, &exit_code);
  if (!start) return exit_code;
  const internal::ServerArgs* args = &start->args;
  const internal::ExportRoot* root = &start->root;
  size_t colon = args->listen.rfind(':');
  if (colon == std::string::npos) {
    std::fprintf(stderr, "txbuf-grpc-server: --listen wants HOST:PORT\n");
    return 2;
  }
  const std::string host = args->listen.substr(0, colon);

  FilesService service(*root);
  ::grpc::ServerBuilder builder;  // Default settings, as users deploy it.
  int port = 0;
  builder.AddListeningPort(args->listen, ::grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  std::unique_ptr<::grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "txbuf-grpc-server: cannot listen on %s\n",
                 args->listen.c_str());
    return 1;
  }
  std::printf("listening on %s:%d\n", host.c_str(), port);
  std::fflush(stdout);
  server->Wait();
  return 0;
}

}  // namespace
}  // namespace txbuf::peers::rpc

int main(int argc, char** argv) { return txbuf::peers::rpc::Main(argc, argv); }
