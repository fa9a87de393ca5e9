// flag_types.h: value types of txbufd's and txbuf-bench's command-line flags
// (Abseil flags), with the text forms they read and print: byte counts
// with K/M/G suffixes, seconds, HOST:PORT, and the send engine.
//
//   ABSL_FLAG(txbuf::ByteSize, budget, txbuf::ByteSize{1ull << 30}, "...");
//   --budget 512M     --budget-deadline 10     --budget-deadline 500ms
//
// Abseil finds AbslParseFlag / AbslUnparseFlag by argument-dependent lookup,
// so they live in namespace txbuf beside the types.
//
// Thread-safety: value types and pure functions.
#ifndef TXBUF_COMMON_FLAG_TYPES_H_
#define TXBUF_COMMON_FLAG_TYPES_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/engine_kind.h"

namespace txbuf {

// A byte count: digits with an optional K, M or G suffix (powers of 1024,
// either case): "4096", "4K", "64M", "1G".
struct ByteSize {
  uint64_t bytes = 0;
};

// Parses a byte count as above. InvalidArgument for anything else,
// including a count that does not fit in 64 bits.
//
// Example:
//   absl::StatusOr<uint64_t> n = ParseByteSize("64M");  // 67108864
absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text);

// The shortest form ParseByteSize reads back: "64M", "1G", "1000".
std::string FormatByteSize(uint64_t bytes);

bool AbslParseFlag(absl::string_view text, ByteSize* out, std::string* error);
std::string AbslUnparseFlag(ByteSize v);

// A length of time in seconds: a plain number of seconds ("10", "0.5") or
// an Abseil duration with its unit ("500ms", "2m", "1h30m"). Not negative.
struct Seconds {
  absl::Duration value;
};

bool AbslParseFlag(absl::string_view text, Seconds* out, std::string* error);
// Seconds as a plain number: "10", "0.1".
std::string AbslUnparseFlag(Seconds v);

// "HOST:PORT" (IPv6 as "[::1]:PORT"); the empty text is the unset value
// (`host` empty, `port` 0): a flag whose default is "none" can hold it.
struct HostPort {
  std::string host;
  uint16_t port = 0;
  bool empty() const { return host.empty() && port == 0; }
};

bool AbslParseFlag(absl::string_view text, HostPort* out, std::string* error);
std::string AbslUnparseFlag(const HostPort& v);

// "HOST[:PORT]" of a txbuf server: without a port, kDefaultPort (7390).
// The empty text is the unset value, as for HostPort.
struct ServiceAddress : HostPort {};

bool AbslParseFlag(absl::string_view text, ServiceAddress* out,
                   std::string* error);
std::string AbslUnparseFlag(const ServiceAddress& v);

// An engine by its name: copy, msg_zerocopy, uring_zc, kmod, auto.
bool AbslParseFlag(absl::string_view text, EngineKind* out, std::string* error);
std::string AbslUnparseFlag(EngineKind v);

}  // namespace txbuf

#endif  // TXBUF_COMMON_FLAG_TYPES_H_
