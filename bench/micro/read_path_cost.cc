// read_path_cost: the server's work for one cached 4 KiB READ, in process.
//
//   read_path_cost [--ops N] [--event-loop] [--revalidate-ms MS]
//
// Builds the server's read path on a temporary export (Export, PageCache,
// Executor, TxBufContext), caches a 1 MiB file, then runs N compounds
// {PUTFH fh, READ 4 KiB at a pseudo-random page} through the executor (as
// the event loop does with --event-loop, else as a pool thread) and composes
// each reply as a txbuf, which is then released. No sockets, no io_uring:
// what is left is exactly the server's own instructions per READ, which
// `valgrind --tool=callgrind` counts repeatably
// (bench/micro/callgrind-op-cost.sh runs it twice, with two N, and prints the
// difference per op). The flags are Abseil flags, read with
// common/command_line.h. The page cache checks the file on disk as txbufd's
// does (--revalidate, default 100 ms; --revalidate-ms 0: at every READ, -1:
// never).
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/command_line.h"
#include "common/memory_stats.h"
#include "common/mutex_mode.h"
#include "common/page_pool.h"
#include "common/slab.h"
#include "common/txbuf.h"
#include "server/compound/executor.h"
#include "server/compound/reply_composer.h"
#include "server/fs/export.h"
#include "server/fs/page_cache.h"
#include "server/server.h"

ABSL_FLAG(int64_t, ops, 10000, "compounds to run");
ABSL_FLAG(bool, event_loop, false,
          "run them as the event loop does (ExecMode::kEventLoop), not as a "
          "pool thread");
ABSL_FLAG(int64_t, revalidate_ms, 0,
          "how often the page cache checks the file on disk, in ms (0: at "
          "every READ, -1: never; not given: txbufd's default)");

int main(int argc, char** argv) {
  txbuf::UseProductionMutexMode();  // as txbufd does
  absl::StatusOr<txbuf::CommandLine> line =
      txbuf::SplitCommandLine(std::vector<std::string>(argv + 1, argv + argc));
  absl::Status parsed = line.status();
  if (parsed.ok() && !line->positional.empty()) {
    parsed = absl::InvalidArgumentError(
        absl::StrCat("unexpected '", line->positional.front(), "'"));
  }
  if (parsed.ok()) parsed = txbuf::ApplyCommandLine(*line);
  if (!parsed.ok() || line->help) {
    if (!parsed.ok()) {
      std::fprintf(stderr, "read_path_cost: %s\n",
                   std::string(parsed.message()).c_str());
    }
    std::fprintf(stderr,
                 "usage: read_path_cost [--ops N] [--event-loop] "
                 "[--revalidate-ms MS]\n");
    return parsed.ok() ? 0 : 2;
  }
  const long ops = static_cast<long>(absl::GetFlag(FLAGS_ops));
  const bool event_loop = absl::GetFlag(FLAGS_event_loop);
  absl::Duration revalidate =
      txbuf::server::ServerOptions{}.revalidate_interval;
  for (const txbuf::GivenFlag& given : line->flags) {
    if (given.name != "revalidate_ms") continue;
    const int64_t ms = absl::GetFlag(FLAGS_revalidate_ms);
    revalidate = ms < 0 ? absl::InfiniteDuration() : absl::Milliseconds(ms);
  }
  char tmpl[] = "/tmp/txbuf-read-path-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return 1;
  const std::string dir = tmpl;
  const std::string file = dir + "/data.bin";
  {
    std::string bytes(1 << 20, 'd');
    FILE* f = std::fopen(file.c_str(), "w");
    if (f == nullptr) return 1;
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
  using txbuf::MemoryStats;
  using txbuf::PageCache;
  using txbuf::PagePool;
  using txbuf::SlabAllocator;
  using txbuf::TxBuf;
  using txbuf::TxBufContext;
  using txbuf::server::CompoundOutput;
  using txbuf::server::CompoundState;
  using txbuf::server::ExecMode;
  using txbuf::server::Executor;
  using txbuf::server::Export;
  using txbuf::server::HandleCache;
  using txbuf::server::ServerLimits;
  namespace rpc = txbuf::rpc;
  PagePool pool(64 << 20);
  PageCache cache(pool, {.revalidate_interval = revalidate});
  auto ex = Export::Open(dir, {}).value();
  ex->set_cache(&cache);
  Executor exec(*ex, ServerLimits{}, 1, nullptr);
  SlabAllocator slabs;
  MemoryStats stats;
  TxBufContext ctx(slabs, pool, stats);
  HandleCache handles;
  rpc::Reply reply;

  // The file's handle, and every page cached.
  rpc::Request req;
  req.add_ops()->mutable_putrootfh();
  req.add_ops()->mutable_lookup()->set_path("data.bin");
  req.add_ops()->mutable_read()->set_length(1 << 20);
  {
    CompoundOutput out(reply);
    exec.Execute(req, {}, &out, &handles);
    if (reply.status() != rpc::STATUS_OK) {
      std::fprintf(stderr, "setup: %s\n", reply.error().c_str());
      return 1;
    }
  }
  const std::string fh = reply.results(1).fh().fh();
  req.Clear();
  req.add_ops()->mutable_putfh()->set_fh(fh);
  rpc::Read* rd = req.add_ops()->mutable_read();
  rd->set_length(4096);
  uint64_t bytes = 0;
  uint32_t seed = 1;
  for (long i = 0; i < ops; ++i) {
    seed = seed * 1103515245 + 12345;
    rd->set_offset(uint64_t{(seed >> 16) % 256} * 4096);
    req.set_id(static_cast<uint64_t>(i + 1));
    CompoundOutput out(reply);
    CompoundState state;
    // As a connection does: on the loop as far as it can go, the rest (the
    // first PUTFH of a handle, a miss) as on a pool thread.
    if (!event_loop ||
        !exec.Run(req, {}, &out, &handles, &state, ExecMode::kEventLoop)) {
      exec.Run(req, {}, &out, &handles, &state, ExecMode::kMayBlock);
    }
    absl::StatusOr<TxBuf> tx = ComposeReply(ctx, out, nullptr);
    if (!tx.ok() || reply.status() != rpc::STATUS_OK ||
        state.next_op != req.ops_size()) {
      std::fprintf(stderr, "op %ld failed\n", i);
      return 1;
    }
    bytes += tx->size();
  }  // each txbuf is released here, as after a send
  std::printf("%ld ops, %llu reply bytes\n", ops,
              static_cast<unsigned long long>(bytes));
  std::remove(file.c_str());
  std::remove(dir.c_str());
  return 0;
}
