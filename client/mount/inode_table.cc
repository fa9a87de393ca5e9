// client/mount/inode_table.cc: see inode_table.h.
#include "client/mount/inode_table.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace txbuf::client::mount {

InodeTable::InodeTable(std::string root_fh) {
  absl::MutexLock l(&mu_);
  by_fh_[root_fh] = kRootIno;
  inodes_[kRootIno] = Inode{.fh = std::move(root_fh), .nlookup = 1};
}

void InodeTable::UnnameLocked(uint64_t ino, Inode& inode) {
  if (inode.parent == 0) return;
  auto it = by_name_.find(Name(inode.parent, inode.name));
  if (it != by_name_.end() && it->second == ino) by_name_.erase(it);
  inode.parent = 0;
  inode.name.clear();
}

uint64_t InodeTable::Remember(const std::string& fh, uint64_t parent,
                              absl::string_view name, uint64_t fileid) {
  absl::MutexLock l(&mu_);
  auto [it, added] = by_fh_.try_emplace(fh, 0);
  if (added) {
    it->second = next_ino_++;
    inodes_[it->second] = Inode{.fh = fh, .epoch = epoch_};
  }
  const uint64_t ino = it->second;
  Inode& inode = inodes_[ino];
  ++inode.nlookup;
  if (fileid != 0) inode.fileid = fileid;
  if (parent != 0 && ino != kRootIno &&
      (inode.parent != parent || inode.name != name)) {
    UnnameLocked(ino, inode);
    Name key(parent, std::string(name));
    if (auto old = by_name_.find(key); old != by_name_.end()) {
      if (auto o = inodes_.find(old->second); o != inodes_.end()) {
        o->second.parent = 0;
        o->second.name.clear();
      }
      by_name_.erase(old);
    }
    inode.parent = parent;
    inode.name = std::string(name);
    by_name_[std::move(key)] = ino;
  }
  return ino;
}

std::optional<std::string> InodeTable::Handle(uint64_t ino) const {
  absl::MutexLock l(&mu_);
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return std::nullopt;
  return it->second.fh;
}

std::optional<Binding> InodeTable::Bind(uint64_t ino) const {
  absl::MutexLock l(&mu_);
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return std::nullopt;
  return Binding{.fh = it->second.fh,
                 .current = it->second.epoch == epoch_,
                 .fileid = it->second.fileid,
                 .epoch = epoch_};
}

bool InodeTable::Forget(uint64_t ino, uint64_t nlookup) {
  if (ino == kRootIno) return false;
  absl::MutexLock l(&mu_);
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return false;
  if (it->second.nlookup > nlookup) {
    it->second.nlookup -= nlookup;
    return false;
  }
  UnnameLocked(ino, it->second);
  if (auto f = by_fh_.find(it->second.fh);
      f != by_fh_.end() && f->second == ino) {
    by_fh_.erase(f);
  }
  inodes_.erase(it);
  return true;
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

void InodeTable::Rename(uint64_t old_parent, absl::string_view old_name,
                        uint64_t parent, absl::string_view name) {
  absl::MutexLock l(&mu_);
  Name to(parent, std::string(name));
  if (auto t = by_name_.find(to); t != by_name_.end()) {
    if (auto o = inodes_.find(t->second); o != inodes_.end()) {
      o->second.parent = 0;
      o->second.name.clear();
    }
    by_name_.erase(t);
  }
  auto f = by_name_.find(Name(old_parent, std::string(old_name)));
  if (f == by_name_.end()) return;
  const uint64_t ino = f->second;
  by_name_.erase(f);
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return;
  it->second.parent = parent;
  it->second.name = std::string(name);
  by_name_[std::move(to)] = ino;
}

void InodeTable::Unname(uint64_t parent, absl::string_view name) {
  absl::MutexLock l(&mu_);
  auto f = by_name_.find(Name(parent, std::string(name)));
  if (f == by_name_.end()) return;
  if (auto it = inodes_.find(f->second); it != inodes_.end()) {
    it->second.parent = 0;
    it->second.name.clear();
  }
  by_name_.erase(f);
}

std::optional<std::string> InodeTable::Path(uint64_t ino) const {
  absl::MutexLock l(&mu_);
  std::vector<const std::string*> names;
  // A chain longer than the table is a loop (cannot happen, but bounded).
  for (size_t steps = 0; ino != kRootIno; ++steps) {
    auto it = inodes_.find(ino);
    if (it == inodes_.end() || it->second.parent == 0 ||
        steps > inodes_.size()) {
      return std::nullopt;
    }
    names.push_back(&it->second.name);
    ino = it->second.parent;
  }
  std::reverse(names.begin(), names.end());
  std::string path;
  for (const std::string* n : names) {
    if (!path.empty()) path += '/';
    path += *n;
  }
  return path;
}

uint64_t InodeTable::NewEpoch(std::string root_fh) {
  absl::MutexLock l(&mu_);
  ++epoch_;
  Inode& root = inodes_[kRootIno];
  if (auto f = by_fh_.find(root.fh);
      f != by_fh_.end() && f->second == kRootIno) {
    by_fh_.erase(f);
  }
  root.fh = std::move(root_fh);
  root.epoch = epoch_;
  by_fh_[root.fh] = kRootIno;
  return epoch_;
}

void InodeTable::Rebind(uint64_t ino, const std::string& fh) {
  absl::MutexLock l(&mu_);
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return;
  if (auto f = by_fh_.find(it->second.fh);
      f != by_fh_.end() && f->second == ino) {
    by_fh_.erase(f);
  }
  it->second.fh = fh;
  it->second.epoch = epoch_;
  // A fresh LOOKUP of the same file may have given it another inode
  // number already: that one keeps the handle's index entry.
  by_fh_.try_emplace(fh, ino);
}

uint64_t InodeTable::epoch() const {
  absl::MutexLock l(&mu_);
  return epoch_;
}

size_t InodeTable::size() const {
  absl::MutexLock l(&mu_);
  return inodes_.size();
}

}  // namespace txbuf::client::mount
