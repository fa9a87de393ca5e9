#include "common/flag_types.h"

#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/socket_util.h"

namespace txbuf {

absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text) {
  absl::string_view digits = text;
  int shift = 0;
  if (!digits.empty()) {
    switch (absl::ascii_toupper(digits.back())) {
      case 'K':
        shift = 10;
        break;
      case 'M':
        shift = 20;
        break;
      case 'G':
        shift = 30;
        break;
      default:
        break;
    }
    if (shift != 0) digits.remove_suffix(1);
  }
  uint64_t n = 0;
  if (digits.empty() ||
      !std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(digits, &n) ||
      n > (std::numeric_limits<uint64_t>::max() >> shift)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", text, "' is not a byte count (digits, then K, M or G)"));
  }
  return n << shift;
}

std::string FormatByteSize(uint64_t bytes) {
  for (const auto& [shift, unit] :
       {std::pair<int, char>{30, 'G'}, {20, 'M'}, {10, 'K'}}) {
    const uint64_t one = uint64_t{1} << shift;
    if (bytes != 0 && bytes % one == 0)
      return absl::StrCat(bytes >> shift, std::string(1, unit));
  }
  return absl::StrCat(bytes);
}

bool AbslParseFlag(absl::string_view text, ByteSize* out, std::string* error) {
  absl::StatusOr<uint64_t> n = ParseByteSize(text);
  if (!n.ok()) {
    *error = "digits, then K, M or G";
    return false;
  }
  out->bytes = *n;
  return true;
}

std::string AbslUnparseFlag(ByteSize v) { return FormatByteSize(v.bytes); }

bool AbslParseFlag(absl::string_view text, Seconds* out, std::string* error) {
  double secs = 0;
  absl::Duration d;
  if (absl::SimpleAtod(text, &secs) && std::isfinite(secs)) {
    d = absl::Seconds(secs);
  } else if (!absl::ParseDuration(text, &d) || d == absl::InfiniteDuration()) {
    *error = "seconds (10, 0.5) or a duration (500ms, 2m)";
    return false;
  }
  if (d < absl::ZeroDuration()) {
    *error = "not negative";
    return false;
  }
  out->value = d;
  return true;
}

std::string AbslUnparseFlag(Seconds v) {
  return absl::StrCat(absl::ToDoubleSeconds(v.value));
}

bool AbslParseFlag(absl::string_view text, HostPort* out, std::string* error) {
  if (text.empty()) {
    *out = HostPort{};
    return true;
  }
  absl::StatusOr<std::pair<std::string, uint16_t>> hp = SplitHostPort(text);
  if (!hp.ok()) {
    *error = std::string(hp.status().message());
    return false;
  }
  out->host = std::move(hp->first);
  out->port = hp->second;
  return true;
}

bool AbslParseFlag(absl::string_view text, ServiceAddress* out,
                   std::string* error) {
  if (text.empty()) {
    *out = ServiceAddress{};
    return true;
  }
  absl::StatusOr<std::pair<std::string, uint16_t>> hp =
      SplitHostPort(text, kDefaultPort);
  if (!hp.ok()) {
    *error = std::string(hp.status().message());
    return false;
  }
  out->host = std::move(hp->first);
  out->port = hp->second;
  return true;
}

std::string AbslUnparseFlag(const ServiceAddress& v) {
  return AbslUnparseFlag(static_cast<const HostPort&>(v));
}

std::string AbslUnparseFlag(const HostPort& v) {
  if (v.empty()) return "";
  return v.host.find(':') == std::string::npos
             ? absl::StrCat(v.host, ":", v.port)
             : absl::StrCat("[", v.host, "]:", v.port);
}

bool AbslParseFlag(absl::string_view text, EngineKind* out,
                   std::string* error) {
  absl::StatusOr<EngineKind> e = ParseEngineKind(text);
  if (!e.ok()) {
    *error = std::string(e.status().message());
    return false;
  }
  *out = *e;
  return true;
}

std::string AbslUnparseFlag(EngineKind v) { return std::string(EngineName(v)); }

}  // namespace txbuf
