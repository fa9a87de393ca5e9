#include "bench/targets/binary_path.h"

#include <unistd.h>

#include <cstdlib>

namespace txbuf::bench {

bool Executable(const std::string& path) {
  return !path.empty() && access(path.c_str(), X_OK) == 0;
}

std::string FindBinary(const BinarySearch& s) {
  if (!s.flag.empty()) return s.flag;
  if (s.env != nullptr) {
    if (const char* e = std::getenv(s.env); e != nullptr && *e != '\0') {
      return e;
    }
  }
  if (s.built != nullptr && Executable(s.built)) return s.built;
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    std::string dir(self, static_cast<size_t>(n));
    dir.resize(dir.rfind('/') + 1);
    for (const char* rel : s.near_self) {
      std::string candidate = dir + rel;
      if (Executable(candidate)) return candidate;
    }
  }
  return s.fallback;
}

}  // namespace txbuf::bench
