// client/write_lease.h: one WRITE whose buffer the caller lends, done when
// both the reply came and the buffer was released.
//
// A WRITE's bytes go out by reference (Compound::Write), so a caller that
// reuses or frees the buffer must wait for two events that come in either
// order: the server's reply (the Submit() callback) and the release of the
// buffer by the request's txbuf (its Deleter, after the kernel is done with
// the bytes). A `WriteLease` joins the two: give BufferRelease() to
// Compound::Write and ReplyCallback() to Client::Submit; then either `done`
// runs exactly once, after both, with the reply, or Wait() returns it.
//
// An end never handed out counts as finished when the lease is destroyed
// (a reply never asked for as Cancelled), and so does a reply callback
// destroyed without being called: a lease always finishes.
//
// Thread-safety: the two ends may finish on any threads (the client's loop
// thread, usually). BufferRelease(), ReplyCallback() and Wait() are called
// by the lease's owner, each at most once.
//
// Example (a window of buffers, reused once their WRITE is done):
//   txbuf::client::WriteLease lease([&, slot](absl::StatusOr<CompoundReply> r)
//   {
//     absl::MutexLock l(&mu);
//     free_slots.push_back(slot);   // reply in hand, buffer no longer used
//   });
//   c.PutFh(fh).Write(off, {buf, n}, lease.BufferRelease());
//   client->Submit(std::move(c), lease.ReplyCallback());
#ifndef TXBUF_CLIENT_WRITE_LEASE_H_
#define TXBUF_CLIENT_WRITE_LEASE_H_

#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "client/client.h"
#include "client/compound.h"
#include "common/deleter.h"

namespace txbuf::client {
namespace internal {
struct WriteLeaseState;
}  // namespace internal

class WriteLease {
 public:
  // Runs once both ends finished, with the reply (or the transport error),
  // on the thread that finished last: keep it short, never block in it.
  using DoneFn = absl::AnyInvocable<void(absl::StatusOr<CompoundReply>) &&>;

  // A lease that runs `done` when it finishes.
  explicit WriteLease(DoneFn done);
  // A lease to Wait() for.
  WriteLease();

  WriteLease(WriteLease&&) noexcept = default;
  WriteLease& operator=(WriteLease&&) noexcept = default;
  WriteLease(const WriteLease&) = delete;
  WriteLease& operator=(const WriteLease&) = delete;
  ~WriteLease();

  // The buffer's release, for Compound::Write.
  Deleter BufferRelease() { return std::move(release_); }

  // The reply's callback, for Client::Submit.
  DoneCallback ReplyCallback() { return std::move(reply_); }

  // Blocks until the reply came and the buffer was released; returns the
  // reply. Only for a lease made without `done`, after both ends were
  // handed out.
  absl::StatusOr<CompoundReply> Wait();

 private:
  std::shared_ptr<internal::WriteLeaseState> state_;
  Deleter release_;
  DoneCallback reply_;
};

}  // namespace txbuf::client

#endif  // TXBUF_CLIENT_WRITE_LEASE_H_
