#include "bench/report/format.h"

#include <cmath>

#include "absl/strings/str_format.h"

namespace txbuf::bench {

std::string FormatNumber(double v) {
  if (std::isnan(v)) return "-";
  const double a = std::fabs(v);
  if (a >= 100 || v == std::floor(v)) return absl::StrFormat("%.0f", v);
  if (a >= 10) return absl::StrFormat("%.1f", v);
  if (a >= 1) return absl::StrFormat("%.2f", v);
  return absl::StrFormat("%.3f", v);
}

std::string FormatByteCount(double b) {
  if (std::isnan(b)) return "-";
  if (b < 1) return "0";
  if (b < 1024) return absl::StrFormat("%.0f B", b);
  if (b < 1024.0 * 1024) return absl::StrFormat("%.1f KiB", b / 1024);
  if (b < 1024.0 * 1024 * 1024) {
    return absl::StrFormat("%.1f MiB", b / (1024.0 * 1024));
  }
  return absl::StrFormat("%.2f GiB", b / (1024.0 * 1024 * 1024));
}

std::string FormatRatio(double r) {
  return std::isnan(r) ? "-" : absl::StrFormat("%.2fx", r);
}

}  // namespace txbuf::bench
