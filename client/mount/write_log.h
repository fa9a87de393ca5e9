// client/mount/write_log.h: the UNSTABLE writes a mount has sent that no
// COMMIT has confirmed yet, with their bytes, so that none is lost when the
// server restarts between a WRITE and its COMMIT.
//
// A server holds UNSTABLE data in its cache until COMMIT; each WRITE and
// COMMIT reply carries the server's write verifier, which changes when the
// server restarts (or drops unstable data it could not write back). The
// mount records each WRITE the server accepted (offset, bytes, verifier).
// A COMMIT covers the writes recorded before it was sent: if each of them
// had the COMMIT's verifier, they are durable and dropped; otherwise the
// server may have lost any of them, and all of them are handed back, in the
// order they were first written (a later write over an earlier one still
// wins), to be written again and committed again.
//
// Thread-safety: thread-safe (one mutex).
//
// Example:
//   WriteLog log;
//   log.Add(ino, 0, WriteBytes::CopyOf(data), write_verifier);
//   uint64_t upto = log.LastSeq(ino);            // then send COMMIT
//   for (const WriteLog::Write& w : log.Confirm(ino, upto, commit_verifier))
//     { /* WRITE w.data.view again */ log.Resent(ino, w.seq, new_verifier); }
#ifndef TXBUF_CLIENT_MOUNT_WRITE_LOG_H_
#define TXBUF_CLIENT_MOUNT_WRITE_LOG_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace txbuf::client::mount {

// The bytes of a WRITE: a view, and what keeps them alive (shared by the
// log and by each send of them). Copyable; the bytes are never changed.
struct WriteBytes {
  std::string_view view;
  std::shared_ptr<const void> owner;
  // The memory `owner` keeps (at least view.size()): what the log counts.
  size_t held = 0;

  // A copy of `bytes`, owning itself.
  static WriteBytes CopyOf(std::string_view bytes);
  size_t size() const { return view.size(); }
};

class WriteLog {
 public:
  struct Write {
    uint64_t seq = 0;  // order of recording, over the whole log (from 1)
    uint64_t offset = 0;
    WriteBytes data;
    uint64_t verifier = 0;
  };

  // Records a WRITE of `data` at `offset` to `ino` that the server answered
  // with `verifier`. Returns the bytes the log holds now (all inodes: the
  // memory their owners keep, WriteBytes::held).
  uint64_t Add(uint64_t ino, uint64_t offset, WriteBytes data,
               uint64_t verifier);

  // The seq of the last write recorded for `ino` (0: none): what a COMMIT
  // sent now covers.
  uint64_t LastSeq(uint64_t ino) const;

  // After a COMMIT of `ino` answered with `verifier` that covered the writes
  // up to seq `upto`: if each of those had `verifier`, they are dropped and
  // the result is empty; otherwise they are all returned, oldest first, to
  // be written again (and kept until a later Confirm).
  std::vector<Write> Confirm(uint64_t ino, uint64_t upto, uint64_t verifier);

  // Write `seq` of `ino` was written again; the server answered `verifier`.
  void Resent(uint64_t ino, uint64_t seq, uint64_t verifier);

  // Forgets `ino`'s writes (the file is gone).
  void Drop(uint64_t ino);

  bool Has(uint64_t ino) const;
  uint64_t bytes() const;

 private:
  mutable absl::Mutex mu_;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, std::vector<Write>> writes_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace txbuf::client::mount

#endif  // TXBUF_CLIENT_MOUNT_WRITE_LOG_H_
