#include "bench/targets/target.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/client.h"

namespace txbuf::bench {
namespace {

class EngineTarget : public Target {
 public:
  EngineTarget(std::unique_ptr<TxbufdProcess> server,
               const TxbufdDriverOptions& driver, EngineKind engine)
      : server_(std::move(server)),
        driver_(server_->host(), server_->port(), driver),
        name_(EngineName(engine)) {}
  ~EngineTarget() override { Stop().IgnoreError(); }

  const std::string& name() const override { return name_; }
  bool is_engine() const override { return true; }
  bool CanRun(const Workload&) const override { return true; }

  absl::Status Prepare(const std::string& file, uint64_t size) override {
    client::ClientOptions o;
    o.host = server_->host();
    o.port = server_->port();
    absl::StatusOr<std::unique_ptr<client::Client>> c =
        client::Client::Connect(std::move(o));
    if (!c.ok()) return c.status();
    constexpr uint64_t kChunk = uint64_t{4} << 20;
    for (uint64_t off = 0; off < size; off += kChunk) {
      absl::StatusOr<std::string> data =
          (*c)->Read(file, off, std::min(kChunk, size - off));
      if (!data.ok()) return data.status();
    }
    return absl::OkStatus();
  }

  absl::StatusOr<RunResult> Run(const Workload& w) override {
    return driver_.Run(w, server_->pid(), nullptr);
  }

  absl::Status Stop() override { return server_->Stop(); }

  std::string address() const override {
    return absl::StrCat(server_->host(), ":", server_->port());
  }

 private:
  std::unique_ptr<TxbufdProcess> server_;
  TxbufdDriver driver_;
  std::string name_;
};

class PeerTarget : public Target {
 public:
  PeerTarget(peers::PeerKind kind, std::unique_ptr<peers::PeerServer> server,
             std::unique_ptr<peers::PeerDriver> driver)
      : server_(std::move(server)),
        driver_(std::move(driver)),
        name_(peers::PeerKindName(kind)) {}
  ~PeerTarget() override { Stop().IgnoreError(); }

  const std::string& name() const override { return name_; }
  bool is_engine() const override { return false; }
  bool CanRun(const Workload& w) const override { return w.PeersCanRun(); }
  absl::Status Prepare(const std::string&, uint64_t) override {
    return absl::OkStatus();
  }

  absl::StatusOr<RunResult> Run(const Workload& w) override {
    if (!CanRun(w)) {
      return absl::UnimplementedError(
          absl::StrCat("peer ", name_, " cannot run ", w.Id()));
    }
    return driver_->Run(w, server_->pid());
  }

  absl::Status Stop() override { return server_->Stop(); }

 private:
  std::unique_ptr<peers::PeerServer> server_;
  std::unique_ptr<peers::PeerDriver> driver_;
  std::string name_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Target>> StartEngineTarget(
    const TxbufdOptions& server, const TxbufdDriverOptions& driver) {
  absl::StatusOr<std::unique_ptr<TxbufdProcess>> p =
      TxbufdProcess::Start(server);
  if (!p.ok()) return p.status();
  return std::make_unique<EngineTarget>(*std::move(p), driver, server.engine);
}

absl::StatusOr<std::unique_ptr<Target>> StartPeerTarget(
    peers::PeerKind kind, const std::string& export_dir) {
  absl::StatusOr<std::unique_ptr<peers::PeerServer>> s =
      peers::StartPeerServer(kind, export_dir);
  if (!s.ok()) return s.status();
  absl::StatusOr<std::unique_ptr<peers::PeerDriver>> d =
      peers::MakePeerDriver(kind, (*s)->host_port(), export_dir);
  if (!d.ok()) return d.status();
  return std::make_unique<PeerTarget>(kind, *std::move(s), *std::move(d));
}

}  // namespace txbuf::bench
