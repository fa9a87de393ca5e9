#include "bench/targets/txbufd/server_pid.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace txbuf::bench {

std::vector<uint64_t> ListeningInodes(absl::string_view text, uint16_t port) {
  std::vector<uint64_t> out;
  bool header = true;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (header) {
      header = false;
      continue;
    }
    std::vector<absl::string_view> f =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout
    // inode ...
    if (f.size() < 10) continue;
    size_t colon = f[1].rfind(':');
    uint32_t p = 0;
    if (colon == absl::string_view::npos ||
        !absl::SimpleHexAtoi(f[1].substr(colon + 1), &p) || p != port ||
        f[3] != "0A") {
      continue;
    }
    uint64_t inode = 0;
    if (absl::SimpleAtoi(f[9], &inode) && inode != 0) out.push_back(inode);
  }
  return out;
}

absl::StatusOr<pid_t> FindListeningPid(uint16_t port) {
  std::vector<uint64_t> inodes;
  for (const char* path : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    std::vector<uint64_t> found = ListeningInodes(ss.str(), port);
    inodes.insert(inodes.end(), found.begin(), found.end());
  }
  if (inodes.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no local socket listens on port ", port));
  }
  std::vector<std::string> wanted;
  wanted.reserve(inodes.size());
  for (uint64_t i : inodes) wanted.push_back(absl::StrCat("socket:[", i, "]"));
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return absl::NotFoundError("cannot read /proc");
  pid_t result = 0;
  while (dirent* d = readdir(proc)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(d->d_name, &pid) || pid <= 0) continue;
    std::string fd_dir = absl::StrCat("/proc/", pid, "/fd");
    DIR* fds = opendir(fd_dir.c_str());
    if (fds == nullptr) continue;
    while (dirent* e = readdir(fds)) {
      if (e->d_name[0] == '.') continue;
      char target[64];
      std::string link = absl::StrCat(fd_dir, "/", e->d_name);
      ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
      if (n <= 0) continue;
      std::string t(target, static_cast<size_t>(n));
      if (std::find(wanted.begin(), wanted.end(), t) != wanted.end()) {
        result = pid;
        break;
      }
    }
    closedir(fds);
    if (result != 0) break;
  }
  closedir(proc);
  if (result == 0) {
    return absl::NotFoundError(absl::StrCat(
        "no visible process holds the socket listening on port ", port));
  }
  return result;
}

}  // namespace txbuf::bench
