// tests/install/consumer/consumer.cc: a program outside txbuf's tree, built
// against the installed client library by tests/install/install_test.sh.
//
//   consumer HOST PORT
//
// Creates the file "consumer.bin" on the txbufd at HOST:PORT and writes it
// with kWrites WRITE compounds submitted back to back (a pipelined batch: all
// are sent before the first reply is waited for), each from its own buffer
// released by its Deleter, then COMMITs. Then one compound, LOOKUP + GETATTR
// + READ, reads it back. Prints "consumer: ok ..." and exits 0 if every WRITE
// succeeded, the size and the bytes read are what was written and every
// buffer was released exactly once; else prints what differs and exits 1.
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "client/client.h"
#include "client/compound.h"

namespace {

using txbuf::client::Client;
using txbuf::client::Compound;
using txbuf::client::CompoundReply;

constexpr char kFile[] = "consumer.bin";
constexpr int kWrites = 16;
// Over 1 KiB: referenced in place, not copied (client/compound.h).
constexpr size_t kChunk = 64 * 1024;
constexpr size_t kTotal = kWrites * kChunk;

int Fail(const std::string& what) {
  std::fprintf(stderr, "consumer: FAIL: %s\n", what.c_str());
  return 1;
}

int Run(const char* host, const char* port) {
  txbuf::client::ClientOptions options;
  options.host = host;
  options.port = static_cast<uint16_t>(std::atoi(port));
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
  if (!client.ok()) return Fail("connect: " + client.status().ToString());

  absl::StatusOr<txbuf::rpc::FhResult> created =
      (*client)->Create(kFile, 0644, /*exclusive=*/true);
  if (!created.ok()) return Fail("create: " + created.status().ToString());
  const std::string fh = created->fh();

  std::vector<std::byte> expected(kTotal);
  for (size_t i = 0; i < kTotal; ++i) {
    expected[i] = static_cast<std::byte>((i * 131 + 7) % 251);
  }

  // The pipelined batch.
  std::atomic<int> released{0};
  std::mutex mu;
  std::condition_variable cv;
  int replies = 0;
  std::vector<std::string> errors;
  for (int w = 0; w < kWrites; ++w) {
    auto buf = std::make_unique<std::byte[]>(kChunk);
    std::memcpy(buf.get(), expected.data() + w * kChunk, kChunk);
    std::byte* data = buf.get();
    Compound c;
    c.PutFh(fh).Write(
        w * kChunk, {data, kChunk},
        txbuf::Deleter::FromCallable([b = std::move(buf), &released]() mutable {
          b.reset();
          released.fetch_add(1);
        }),
        txbuf::rpc::STABILITY_UNSTABLE);
    (*client)->Submit(std::move(c), [&, w](absl::StatusOr<CompoundReply> r) {
      std::string error;
      if (!r.ok()) {
        error = r.status().ToString();
      } else if (absl::Status s = r->status(2); !s.ok()) {
        error = s.ToString();
      } else if (r->result(1).write().count() != kChunk) {
        error =
            "wrote " + std::to_string(r->result(1).write().count()) + " bytes";
      }
      std::lock_guard<std::mutex> lock(mu);
      if (!error.empty()) {
        errors.push_back("WRITE " + std::to_string(w) + ": " + error);
      }
      ++replies;
      cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return replies == kWrites; });
    if (!errors.empty()) return Fail(errors.front());
  }
  Compound commit;
  commit.PutFh(fh).Commit();
  absl::StatusOr<CompoundReply> committed = (*client)->Call(std::move(commit));
  if (!committed.ok()) return Fail("commit: " + committed.status().ToString());
  if (absl::Status s = committed->status(2); !s.ok()) {
    return Fail("commit: " + s.ToString());
  }

  // One compound: LOOKUP + GETATTR + READ.
  Compound get;
  get.PutRootFh().Lookup(kFile).GetAttr().Read(0, kTotal);
  absl::StatusOr<CompoundReply> r = (*client)->Call(std::move(get));
  if (!r.ok()) return Fail("read compound: " + r.status().ToString());
  if (absl::Status s = r->status(4); !s.ok()) {
    return Fail("read compound: " + s.ToString());
  }
  const uint64_t size = r->result(2).attr().attr().size();
  if (size != kTotal) {
    return Fail("GETATTR size " + std::to_string(size) + ", wrote " +
                std::to_string(kTotal));
  }
  absl::Span<const std::byte> data = r->ReadData(3);
  if (data.size() != kTotal) {
    return Fail("READ returned " + std::to_string(data.size()) +
                " bytes, wrote " + std::to_string(kTotal));
  }
  if (std::memcmp(data.data(), expected.data(), kTotal) != 0) {
    return Fail("READ bytes differ from the bytes written");
  }

  // Destroying the client waits for every request txbuf's destructor, so
  // every WRITE buffer's Deleter has run by then.
  client->reset();
  if (released.load() != kWrites) {
    return Fail(std::to_string(released.load()) + " of " +
                std::to_string(kWrites) + " WRITE buffers released");
  }
  std::printf(
      "consumer: ok: %d pipelined WRITEs of %zu bytes, LOOKUP+GETATTR+READ "
      "read %zu equal bytes back, %d buffers released\n",
      kWrites, kChunk, kTotal, released.load());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: consumer HOST PORT\n");
    return 2;
  }
  return Run(argv[1], argv[2]);
}
