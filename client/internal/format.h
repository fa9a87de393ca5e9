// client/internal/format.h: how the `txbuf` command-line tool prints things.
//
// Text layouts of `ls`, `stat`, `df` and `stats`, a reflection-based JSON
// printer for protobuf messages (integers as JSON numbers, every field
// present), human-readable sizes and durations, and the progress bar line.
// Kept out of txbuf_main.cc so they can be unit-tested.
//
// Not for callers: the CLI only.
//
// Thread-safety: pure functions; thread-safe.
#ifndef TXBUF_CLIENT_INTERNAL_FORMAT_H_
#define TXBUF_CLIENT_INTERNAL_FORMAT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "proto/txbuf.pb.h"

namespace txbuf::client::internal {

// A file name (or any text) made safe and unambiguous for a terminal, in
// the manner of `ls -b`: a backslash becomes "\\", the control characters
// \a \b \t \n \v \f \r their C escapes, every other byte below 0x20, 0x7f,
// each byte that is not part of valid UTF-8, and the UTF-8 encodings of the
// C1 controls U+0080..U+009F three-digit octal escapes ("\377"). Printable
// ASCII and other valid UTF-8 pass unchanged.
//
// Example:
//   EscapeName("a\xffb\\c\n") == "a\\377b\\\\c\\n"
std::string EscapeName(absl::string_view name);

// "drwxr-xr-x", "-rw-r--r--", "lrwxrwxrwx" (with setuid/setgid/sticky).
//
// Example:
//   ModeString(rpc::FILE_TYPE_DIRECTORY, 0755) == "drwxr-xr-x"
std::string ModeString(rpc::FileType type, uint32_t mode);

// "1.5 KiB", "12.0 MiB", "512 B".
//
// Example:
//   HumanBytes(1536) == "1.5 KiB"
std::string HumanBytes(uint64_t bytes);

// "70.0 us", "5.00 ms", "1.20 s", "800 ns".
//
// Example:
//   HumanNanos(70000) == "70.0 us"
std::string HumanNanos(double ns);

// A time in ns since the epoch in the local time zone: "2025-11-24 00:10"
// (`precise`: "2025-11-24 00:10:00.123456789 +0100").
//
// Example:
//   FormatTimeNs(attr.mtime_ns(), /*precise=*/false)
std::string FormatTimeNs(int64_t ns, bool precise);

// `ls -l` long format: one line per entry (type+mode, size, mtime, name),
// sorted by name, sizes right-aligned: in bytes, or with `human_sizes` as
// HumanBytes() ("1.5 KiB"). No trailing newline on the last line.
//
// Example:
//   std::cout << FormatListing(entries) << "\n";
std::string FormatListing(std::vector<rpc::DirEntry> entries,
                          bool human_sizes = false);

// `ls` short format: the names, escaped (EscapeName), sorted, one a line.
// No trailing newline on the last line.
//
// Example:
//   std::cout << FormatNames(entries) << "\n";
std::string FormatNames(std::vector<rpc::DirEntry> entries);

// `stat` output: File, Type, Mode, Size, ... one field a line.
//
// Example:
//   std::cout << FormatStat("docs/a.txt", attr);
std::string FormatStat(absl::string_view path, const rpc::Attr& attr);

// `df` output: a header line and a value line; sizes in bytes, or with
// `human_sizes` as HumanBytes() ("100.0 GiB").
//
// Example:
//   std::cout << FormatStatFs(statfs, /*human_sizes=*/true);
std::string FormatStatFs(const rpc::StatFsResult& s, bool human_sizes = false);

// `stats` output, human-readable.
//
// Example:
//   std::cout << FormatStats(stats);
std::string FormatStats(const rpc::StatsResult& s);

// The progress bar's text: "  12.0 MiB / 100.0 MiB  12%  85.3 MiB/s  [===>  ]"
// (`total` 0: unknown, no percent or bar).
//
// Example:
//   ProgressLine(12 << 20, 100 << 20, 0.5)
std::string ProgressLine(uint64_t done, uint64_t total, double seconds);

}  // namespace txbuf::client::internal

#endif  // TXBUF_CLIENT_INTERNAL_FORMAT_H_
