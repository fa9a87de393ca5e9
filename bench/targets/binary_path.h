// bench/targets/binary_path.h: where a binary txbuf-bench starts (txbufd,
// the txbuf CLI for a mount, a peer server) is found, the same way for
// each: the flag, then an environment variable, then the path CMake built
// it at, then beside the running executable.
//
// Thread-safety: a pure function of the process's environment and files.

#ifndef TXBUF_BENCH_TARGETS_BINARY_PATH_H_
#define TXBUF_BENCH_TARGETS_BINARY_PATH_H_

#include <initializer_list>
#include <string>

namespace txbuf::bench {

// What FindBinary looks at, in order.
struct BinarySearch {
  std::string flag;             // a path given on the command line, if any
  const char* env = nullptr;    // an environment variable naming the path
  const char* built = nullptr;  // where CMake built it (TXBUF_*_PATH)
  // Paths relative to the running executable's directory, first match wins.
  std::initializer_list<const char*> near_self;
  std::string fallback;  // when nothing is found (left to the caller/PATH)
};

// The first of: `flag` if not empty; $env if set and not empty; `built` if
// executable; the first executable `near_self` path; `fallback`.
//
// Example:
//   std::string txbufd = FindBinary({.env = "TXBUF_TXBUFD",
//                                    .built = TXBUF_TXBUFD_PATH,
//                                    .near_self = {"txbufd"},
//                                    .fallback = "txbufd"});
std::string FindBinary(const BinarySearch& s);

// True if `path` names a file this process may execute.
bool Executable(const std::string& path);

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_TARGETS_BINARY_PATH_H_
