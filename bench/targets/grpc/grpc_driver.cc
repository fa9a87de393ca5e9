// The gRPC peer's driver: the async client API. Each connection is its own
// channel (GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL plus a distinct channel arg,
// so channels never share a subchannel/TCP connection) with its own
// CompletionQueue and client thread. The thread keeps its share of the
// outstanding calls in flight: every completion immediately starts the next
// call. Latency is from starting the call to its Finish tag. Default channel
// settings otherwise; each call has a 30 s deadline (only a guard against a
// wedged server).
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/load/harness.h"
#include "bench/targets/peer_factories.h"
#include "common/clock.h"
#include "grpcpp/grpcpp.h"
#include "peer_files.grpc.pb.h"

namespace txbuf::peers::internal {
namespace {

using rpc::Files;
using rpc::ReadReply;
using rpc::ReadRequest;
using rpc::WriteReply;
using rpc::WriteRequest;

class GrpcDriver : public PeerDriver {
 public:
  explicit GrpcDriver(std::string target) : target_(std::move(target)) {}

  absl::StatusOr<RunResult> Run(const Workload& w, pid_t server_pid) override {
    return RunHarness(w, server_pid, [this](int index, ConnContext& ctx) {
      Connection(index, ctx);
    });
  }

 private:
  struct Call {
    std::unique_ptr<::grpc::ClientContext> context;
    std::unique_ptr<::grpc::ClientAsyncResponseReader<ReadReply>> read_rpc;
    std::unique_ptr<::grpc::ClientAsyncResponseReader<WriteReply>> write_rpc;
    ReadReply read_reply;
    WriteReply write_reply;
    ::grpc::Status status;
    int64_t start_ns = 0;
    uint64_t offset = 0;
  };

  void Connection(int index, ConnContext& ctx) const {
    const Workload& w = ctx.workload();
    ::grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("txbuf.peers.channel_index", index);
    std::shared_ptr<::grpc::Channel> channel = ::grpc::CreateCustomChannel(
        target_, ::grpc::InsecureChannelCredentials(), args);
    bool connected = channel->WaitForConnected(
        std::chrono::system_clock::now() + std::chrono::seconds(10));
    std::unique_ptr<Files::Stub> stub = Files::NewStub(channel);
    if (!ctx.Start(connected
                       ? absl::OkStatus()
                       : absl::UnavailableError(absl::StrCat(
                             "gRPC peer: cannot connect to ", target_))) ||
        ctx.slots() == 0) {
      return;
    }

    const bool is_read = w.kind == WorkloadKind::kRead;
    ::grpc::CompletionQueue cq;
    std::vector<Call> calls(static_cast<size_t>(ctx.slots()));
    ReadRequest read_req;
    read_req.set_path(w.file);
    read_req.set_length(w.size);
    WriteRequest write_req;
    write_req.set_path(w.file);
    std::vector<uint8_t> scratch;

    // The request is serialized when the call starts, so one request
    // object per connection is reused.
    auto issue = [&](Call& c) {
      c.context = std::make_unique<::grpc::ClientContext>();
      c.context->set_deadline(std::chrono::system_clock::now() +
                              std::chrono::nanoseconds(kOpTimeoutNs));
      c.offset = ctx.NextOffset();
      if (is_read) {
        read_req.set_offset(c.offset);
        c.start_ns = MonoNowNs();
        c.read_rpc = stub->AsyncRead(c.context.get(), read_req, &cq);
        c.read_rpc->Finish(&c.read_reply, &c.status, &c);
      } else {
        write_req.set_offset(c.offset);
        c.start_ns = MonoNowNs();
        write_req.set_data(ctx.pattern().Data(c.offset, w.size, scratch),
                           w.size);
        c.write_rpc = stub->AsyncWrite(c.context.get(), write_req, &cq);
        c.write_rpc->Finish(&c.write_reply, &c.status, &c);
      }
    };

    int outstanding = 0;
    for (Call& c : calls) {
      if (!ctx.ShouldIssue(MonoNowNs())) break;
      issue(c);
      ++outstanding;
    }
    while (outstanding > 0) {
      void* tag = nullptr;
      bool ok = false;
      if (!cq.Next(&tag, &ok)) break;
      const int64_t now = MonoNowNs();
      --outstanding;
      Call& c = *static_cast<Call*>(tag);
      bool good = ok && c.status.ok() &&
                  (is_read ? c.read_reply.data().size() == w.size
                           : c.write_reply.written() == w.size);
      bool verified =
          !is_read || !good ||
          ctx.pattern().Check(
              c.offset, absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(
                                                c.read_reply.data().data()),
                                            c.read_reply.data().size()));
      ctx.Complete(c.start_ns, now, w.size, good, verified);
      if (ctx.ShouldIssue(now)) {
        issue(c);
        ++outstanding;
      }
    }
    cq.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq.Next(&tag, &ok)) {
    }
  }

  std::string target_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<PeerDriver>> MakeGrpcDriver(
    const std::string& host_port) {
  return std::make_unique<GrpcDriver>(host_port);
}

}  // namespace txbuf::peers::internal
