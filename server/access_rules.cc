#include "server/access_rules.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace txbuf::server {
namespace {

// The address of `ss` as (family, 16 bytes): IPv4 in the first 4 bytes;
// an IPv4-mapped IPv6 address as IPv4.
bool AddressOf(const sockaddr_storage& ss, int* family,
               std::array<uint8_t, 16>* bytes) {
  bytes->fill(0);
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    *family = AF_INET;
    std::memcpy(bytes->data(), &in->sin_addr, 4);
    return true;
  }
  if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      *family = AF_INET;
      std::memcpy(bytes->data(), &in6->sin6_addr.s6_addr[12], 4);
    } else {
      *family = AF_INET6;
      std::memcpy(bytes->data(), &in6->sin6_addr, 16);
    }
    return true;
  }
  return false;
}

// Whether the first `bits` bits of a and b are equal.
bool SamePrefix(const std::array<uint8_t, 16>& a,
                const std::array<uint8_t, 16>& b, int bits) {
  const int whole = bits / 8;
  if (std::memcmp(a.data(), b.data(), whole) != 0) return false;
  const int rest = bits % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

}  // namespace

absl::string_view AccessName(Access a) {
  switch (a) {
    case Access::kNone:
      return "none";
    case Access::kReadOnly:
      return "ro";
    case Access::kReadWrite:
      return "rw";
  }
  return "?";
}

absl::StatusOr<Access> ParseAccess(absl::string_view text) {
  if (text == "ro" || text == "read-only") return Access::kReadOnly;
  if (text == "rw" || text == "read-write") return Access::kReadWrite;
  return absl::InvalidArgumentError(
      absl::StrCat("access '", text, "': expected \"ro\" or \"rw\""));
}

absl::StatusOr<AddressRange> AddressRange::Parse(absl::string_view text) {
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("address range '", text, "': ", why));
  };
  absl::string_view addr = text;
  int bits = -1;
  if (size_t slash = text.find('/'); slash != absl::string_view::npos) {
    addr = text.substr(0, slash);
    absl::string_view b = text.substr(slash + 1);
    if (b.empty() || b.size() > 3 ||
        b.find_first_not_of("0123456789") != absl::string_view::npos ||
        !absl::SimpleAtoi(b, &bits)) {
      return bad("the prefix length after '/' is not a number");
    }
  }
  AddressRange r;
  const std::string a(addr);
  if (inet_pton(AF_INET, a.c_str(), r.bytes_.data()) == 1) {
    r.family_ = AF_INET;
  } else if (inet_pton(AF_INET6, a.c_str(), r.bytes_.data()) == 1) {
    r.family_ = AF_INET6;
    if (IN6_IS_ADDR_V4MAPPED(
            reinterpret_cast<const in6_addr*>(r.bytes_.data()))) {
      return bad("write an IPv4-mapped address as IPv4");
    }
  } else {
    return bad("not an IPv4 or IPv6 address (host names are not accepted)");
  }
  const int max_bits = r.family_ == AF_INET ? 32 : 128;
  if (bits < 0) bits = max_bits;
  if (bits > max_bits) {
    return bad(absl::StrCat("prefix length over ", max_bits));
  }
  std::array<uint8_t, 16> masked{};
  std::memcpy(masked.data(), r.bytes_.data(), max_bits / 8);
  for (int i = bits; i < max_bits; ++i) {
    if (masked[i / 8] & (0x80 >> (i % 8))) {
      return bad(
          absl::StrCat("address bits set beyond the /", bits, " prefix"));
    }
  }
  r.prefix_bits_ = bits;
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(r.family_, r.bytes_.data(), buf, sizeof(buf));
  r.text_ = absl::StrCat(buf, "/", bits);
  return r;
}

bool AddressRange::Contains(const sockaddr_storage& addr) const {
  int family = 0;
  std::array<uint8_t, 16> bytes;
  if (!AddressOf(addr, &family, &bytes) || family != family_) return false;
  return SamePrefix(bytes, bytes_, prefix_bits_);
}

Access AccessFor(const std::vector<AccessRule>& rules, Access open_access,
                 const sockaddr_storage& peer) {
  if (rules.empty()) return open_access;
  for (const AccessRule& r : rules) {
    if (r.from.Contains(peer)) return r.access;
  }
  return Access::kNone;
}

}  // namespace txbuf::server
