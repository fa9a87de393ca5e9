// client/mount/inode_table.cc: see inode_table.h.
#include "client/mount/inode_table.h"

#include <utility>

namespace txbuf::client::mount {

InodeTable::InodeTable(std::string root_fh) {
  absl::MutexLock l(&mu_);
  by_fh_[root_fh] = kRootIno;
  inodes_[kRootIno] = Inode{.fh = std::move(root_fh), .nlookup = 1};
}

uint64_t InodeTable::Remember(const std::string& fh) {
  absl::MutexLock l(&mu_);
  auto [it, added] = by_fh_.try_emplace(fh, 0);
  if (added) {
    it->second = next_ino_++;
    inodes_[it->second] = Inode{.fh = fh};
  }
  ++inodes_[it->second].nlookup;
  return it->second;
}

std::optional<std::string> InodeTable::Handle(uint64_t ino) const {
  absl::MutexLock l(&mu_);
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return std::nullopt;
  return it->second.fh;
}

void InodeTable::Forget(uint64_t ino, uint64_t nlookup) {
  if (ino == kRootIno) return;
  absl::MutexLock l(&mu_);
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return;
  if (it->second.nlookup > nlookup) {
    it->second.nlookup -= nlookup;
    return;
  }
  by_fh_.erase(it->second.fh);
  inodes_.erase(it);
}

bool InodeTable::UpdateStamp(uint64_t ino, const ChangeStamp& stamp) {
  absl::MutexLock l(&mu_);
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return true;
  const bool changed =
      it->second.stamp.has_value() && !(*it->second.stamp == stamp);
  it->second.stamp = stamp;
  return changed;
}

void InodeTable::MarkDirty(uint64_t ino) {
  absl::MutexLock l(&mu_);
  auto it = inodes_.find(ino);
  if (it != inodes_.end()) it->second.dirty = true;
}

bool InodeTable::TakeDirty(uint64_t ino) {
  absl::MutexLock l(&mu_);
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return false;
  return std::exchange(it->second.dirty, false);
}

size_t InodeTable::size() const {
  absl::MutexLock l(&mu_);
  return inodes_.size();
}

}  // namespace txbuf::client::mount
