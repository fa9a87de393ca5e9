// access_rules.h: which clients may use an export, and how (as /etc/exports).
//
// An export's rules are a list of (address range, access) pairs; a client
// gets the access of the first rule whose range holds its address, and no
// access at all if none does. An export without rules is open to every
// client that reaches the port (and authenticates, with a token), at the
// export's own access. Ranges are CIDR blocks ("10.0.0.0/8", "fd00::/8") or
// single addresses ("192.0.2.7", "::1"); an IPv4 client connecting over an
// IPv6 socket (::ffff:a.b.c.d) matches IPv4 ranges.
//
// Thread-safety: immutable values; pure functions.
//
// Example:
//   absl::StatusOr<AddressRange> lan = AddressRange::Parse("10.0.0.0/8");
//   std::vector<AccessRule> rules = {{*lan, Access::kReadWrite}};
//   Access a = AccessFor(rules, Access::kReadWrite, peer_sockaddr);
#ifndef TXBUF_SERVER_ACCESS_RULES_H_
#define TXBUF_SERVER_ACCESS_RULES_H_

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace txbuf::server {

// What a client may do with an export.
enum class Access { kNone, kReadOnly, kReadWrite };

// "none", "ro" or "rw".
absl::string_view AccessName(Access a);
// Parses "ro" / "read-only" or "rw" / "read-write".
absl::StatusOr<Access> ParseAccess(absl::string_view text);

// A block of IPv4 or IPv6 addresses.
class AddressRange {
 public:
  // "ADDRESS/BITS" or "ADDRESS" (all its bits). InvalidArgument for
  // anything else, such as host bits set beyond the prefix ("10.1.0.0/8":
  // a typo that would silently open more than meant).
  static absl::StatusOr<AddressRange> Parse(absl::string_view text);

  // Whether `addr` (AF_INET or AF_INET6; an IPv4-mapped IPv6 address as its
  // IPv4 one) lies in the range.
  bool Contains(const sockaddr_storage& addr) const;

  // As it was written, normalized ("10.0.0.0/8").
  const std::string& text() const { return text_; }

 private:
  int family_ = 0;  // AF_INET or AF_INET6
  std::array<uint8_t, 16> bytes_{};
  int prefix_bits_ = 0;
  std::string text_;
};

struct AccessRule {
  AddressRange from;
  Access access = Access::kReadOnly;
};

// The access of a client at `peer` to an export with `rules` (see the file
// comment); `open_access` when `rules` is empty.
Access AccessFor(const std::vector<AccessRule>& rules, Access open_access,
                 const sockaddr_storage& peer);

}  // namespace txbuf::server

#endif  // TXBUF_SERVER_ACCESS_RULES_H_
