// client/mount/write_log.cc: see write_log.h.
#include "client/mount/write_log.h"

#include <memory>
#include <string>
#include <utility>

namespace txbuf::client::mount {

WriteBytes WriteBytes::CopyOf(std::string_view bytes) {
  auto copy = std::make_shared<const std::string>(bytes);
  const std::string_view view = *copy;
  return WriteBytes{
      .view = view, .owner = std::move(copy), .held = view.size()};
}

uint64_t WriteLog::Add(uint64_t ino, uint64_t offset, WriteBytes data,
                       uint64_t verifier) {
  absl::MutexLock l(&mu_);
  bytes_ += data.held;
  writes_[ino].push_back(Write{.seq = next_seq_++,
                               .offset = offset,
                               .data = std::move(data),
                               .verifier = verifier});
  return bytes_;
}

uint64_t WriteLog::LastSeq(uint64_t ino) const {
  absl::MutexLock l(&mu_);
  auto it = writes_.find(ino);
  if (it == writes_.end() || it->second.empty()) return 0;
  return it->second.back().seq;
}

std::vector<WriteLog::Write> WriteLog::Confirm(uint64_t ino, uint64_t upto,
                                               uint64_t verifier) {
  absl::MutexLock l(&mu_);
  auto it = writes_.find(ino);
  if (it == writes_.end()) return {};
  std::vector<Write>& ws = it->second;
  // Writes are recorded in seq order: those covered are a prefix.
  size_t covered = 0;
  bool all_match = true;
  while (covered < ws.size() && ws[covered].seq <= upto) {
    all_match = all_match && ws[covered].verifier == verifier;
    ++covered;
  }
  if (!all_match) {
    return std::vector<Write>(ws.begin(), ws.begin() + covered);
  }
  for (size_t i = 0; i < covered; ++i) bytes_ -= ws[i].data.held;
  ws.erase(ws.begin(), ws.begin() + covered);
  if (ws.empty()) writes_.erase(it);
  return {};
}

void WriteLog::Resent(uint64_t ino, uint64_t seq, uint64_t verifier) {
  absl::MutexLock l(&mu_);
  auto it = writes_.find(ino);
  if (it == writes_.end()) return;
  for (Write& w : it->second) {
    if (w.seq == seq) {
      w.verifier = verifier;
      return;
    }
  }
}

void WriteLog::Drop(uint64_t ino) {
  absl::MutexLock l(&mu_);
  auto it = writes_.find(ino);
  if (it == writes_.end()) return;
  for (const Write& w : it->second) bytes_ -= w.data.held;
  writes_.erase(it);
}

bool WriteLog::Has(uint64_t ino) const {
  absl::MutexLock l(&mu_);
  return writes_.contains(ino);
}

uint64_t WriteLog::bytes() const {
  absl::MutexLock l(&mu_);
  return bytes_;
}

}  // namespace txbuf::client::mount
