// format.h: number formatting shared by the reports and checks: "-" for a
// figure that does not apply (NaN), integers for large values, three
// significant digits for small ones.
//
// Thread-safety: pure functions.
//
// Example:
//   FormatNumber(61234.4) == "61234"; FormatNumber(12.345) == "12.3";
//   FormatByteCount(1536) == "1.5 KiB";
#ifndef TXBUF_BENCH_REPORT_FORMAT_H_
#define TXBUF_BENCH_REPORT_FORMAT_H_

#include <string>

namespace txbuf::bench {

// "-" for NaN; integers from 100 up ("812", "61234"); else 3 significant
// digits ("12.3", "1.25", "0.125").
std::string FormatNumber(double v);
// "-" for NaN; "0", "512 B", "4.0 KiB", "1.0 MiB", "2.50 GiB".
std::string FormatByteCount(double bytes);
// "2.00x", "-" for NaN.
std::string FormatRatio(double r);

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_REPORT_FORMAT_H_
