#include "client/internal/format.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace txbuf::client::internal {

namespace {

// The length of the valid UTF-8 sequence at the start of `s` (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF), or 0.
size_t Utf8Length(absl::string_view s, uint32_t* code_point) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  size_t n = 0;
  uint32_t cp = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // the second byte's range
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0f;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
  for (size_t i = 1; i < n; ++i) {
    if (b(i) < 0x80 || b(i) > 0xbf) return 0;
    cp = (cp << 6) | (b(i) & 0x3f);
  }
  *code_point = cp;
  return n;
}

void AppendOctal(std::string* out, unsigned char c) {
  absl::StrAppendFormat(out, "\\%03o", c);
}

}  // namespace

std::string EscapeName(absl::string_view name) {
  std::string out;
  out.reserve(name.size());
  while (!name.empty()) {
    const auto c = static_cast<unsigned char>(name.front());
    if (c >= 0x80) {
      uint32_t cp = 0;
      const size_t n = Utf8Length(name, &cp);
      if (n == 0 || cp <= 0x9f) {  // not UTF-8, or a C1 control
        const size_t bytes = n == 0 ? 1 : n;
        for (size_t i = 0; i < bytes; ++i) {
          AppendOctal(&out, static_cast<unsigned char>(name[i]));
        }
        name.remove_prefix(bytes);
      } else {
        out.append(name.data(), n);
        name.remove_prefix(n);
      }
      continue;
    }
    name.remove_prefix(1);
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\a':
        out += "\\a";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\v':
        out += "\\v";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          AppendOctal(&out, c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

std::string ModeString(rpc::FileType type, uint32_t mode) {
  std::string s(10, '-');
  switch (type) {
    case rpc::FILE_TYPE_DIRECTORY:
      s[0] = 'd';
      break;
    case rpc::FILE_TYPE_SYMLINK:
      s[0] = 'l';
      break;
    case rpc::FILE_TYPE_REGULAR:
      s[0] = '-';
      break;
    default:
      s[0] = '?';
      break;
  }
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) {
    if (mode & (0400u >> i)) s[1 + i] = rwx[i];
  }
  if (mode & 04000) s[3] = (mode & 0100) ? 's' : 'S';
  if (mode & 02000) s[6] = (mode & 0010) ? 's' : 'S';
  if (mode & 01000) s[9] = (mode & 0001) ? 't' : 'T';
  return s;
}

std::string HumanBytes(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes) / 1024;
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  return absl::StrFormat("%.1f %s", v, units[u]);
}

std::string HumanNanos(double ns) {
  if (ns < 1000) return absl::StrFormat("%.0f ns", ns);
  if (ns < 1e6) return absl::StrFormat("%.1f us", ns / 1e3);
  if (ns < 1e9) return absl::StrFormat("%.2f ms", ns / 1e6);
  return absl::StrFormat("%.2f s", ns / 1e9);
}

std::string FormatTimeNs(int64_t ns, bool precise) {
  absl::Time t = absl::FromUnixNanos(ns);
  if (!precise) {
    return absl::FormatTime("%Y-%m-%d %H:%M", t, absl::LocalTimeZone());
  }
  return absl::FormatTime("%Y-%m-%d %H:%M:%E9S %z", t, absl::LocalTimeZone());
}

std::string FormatListing(std::vector<rpc::DirEntry> entries,
                          bool human_sizes) {
  std::sort(entries.begin(), entries.end(),
            [](const rpc::DirEntry& a, const rpc::DirEntry& b) {
              return a.name() < b.name();
            });
  std::vector<std::string> sizes;
  size_t width = 1;
  for (const rpc::DirEntry& e : entries) {
    sizes.push_back(human_sizes ? HumanBytes(e.attr().size())
                                : absl::StrCat(e.attr().size()));
    width = std::max(width, sizes.back().size());
  }
  std::string out;
  for (size_t i = 0; i < entries.size(); ++i) {
    const rpc::DirEntry& e = entries[i];
    if (!out.empty()) out += '\n';
    rpc::FileType type = e.has_attr() ? e.attr().type() : e.type();
    absl::StrAppendFormat(
        &out, "%s %*s %s %s", ModeString(type, e.attr().mode()),
        static_cast<int>(width), sizes[i],
        FormatTimeNs(e.attr().mtime_ns(), false), EscapeName(e.name()));
  }
  return out;
}

std::string FormatNames(std::vector<rpc::DirEntry> entries) {
  std::sort(entries.begin(), entries.end(),
            [](const rpc::DirEntry& a, const rpc::DirEntry& b) {
              return a.name() < b.name();
            });
  std::string out;
  for (const rpc::DirEntry& e : entries) {
    if (!out.empty()) out += '\n';
    out += EscapeName(e.name());
  }
  return out;
}

std::string FormatStat(absl::string_view path, const rpc::Attr& a) {
  absl::string_view type = "unknown";
  switch (a.type()) {
    case rpc::FILE_TYPE_REGULAR:
      type = "regular file";
      break;
    case rpc::FILE_TYPE_DIRECTORY:
      type = "directory";
      break;
    case rpc::FILE_TYPE_SYMLINK:
      type = "symbolic link";
      break;
    case rpc::FILE_TYPE_OTHER:
      type = "other";
      break;
    default:
      break;
  }
  return absl::StrFormat(
      "  File: %s\n"
      "  Type: %s\n"
      "  Mode: %04o (%s)\n"
      "  Size: %d (%s)\n"
      "  Used: %d\n"
      " Links: %d\n"
      "   Uid: %d\n"
      "   Gid: %d\n"
      "FileId: %d\n"
      "Access: %s\n"
      "Modify: %s\n"
      "Change: %s\n",
      path.empty() ? "/" : EscapeName(path), type, a.mode(),
      ModeString(a.type(), a.mode()), a.size(), HumanBytes(a.size()), a.used(),
      a.nlink(), a.uid(), a.gid(), a.fileid(), FormatTimeNs(a.atime_ns(), true),
      FormatTimeNs(a.mtime_ns(), true), FormatTimeNs(a.ctime_ns(), true));
}

std::string FormatStatFs(const rpc::StatFsResult& s, bool human_sizes) {
  uint64_t used =
      s.total_bytes() > s.free_bytes() ? s.total_bytes() - s.free_bytes() : 0;
  uint64_t denom = used + s.avail_bytes();
  int pct = denom == 0 ? 0 : static_cast<int>(std::ceil(100.0 * used / denom));
  auto size = [human_sizes](uint64_t bytes) {
    return human_sizes ? HumanBytes(bytes) : absl::StrCat(bytes);
  };
  return absl::StrFormat(
      "%15s %15s %15s %5s %12s %12s %6s %8s\n"
      "%15s %15s %15s %4d%% %12d %12d %6d %8d\n",
      "Size", "Used", "Avail", "Use%", "Files", "FreeFiles", "Block", "NameMax",
      size(s.total_bytes()), size(used), size(s.avail_bytes()), pct,
      s.total_files(), s.free_files(), s.block_size(), s.name_max());
}

std::string FormatStats(const rpc::StatsResult& s) {
  const rpc::LatencySummary& l = s.destructor_latency();
  const rpc::PageCacheStats& pc = s.page_cache();
  std::string out = absl::StrFormat(
      "engine              %s\n"
      "connections         %d open, %d accepted\n"
      "requests            %d\n"
      "pinned bytes        %s now (%d), %s max\n"
      "txbufs              %d in flight, %d created, %d destroyed\n"
      "destructor latency  n=%d  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  "
      "mean %s\n"
      "completions         %d zero-copy, %d copied\n"
      "budgets             %d waits, %d closes\n"
      "page cache          %d pages, %d pinned, %d dirty, %d cow copies, "
      "%d hits, %d misses, %d evictions\n",
      s.engine().empty() ? "-" : s.engine(), s.connections(),
      s.connections_total(), s.requests(), HumanBytes(s.pinned_bytes()),
      s.pinned_bytes(), HumanBytes(s.pinned_bytes_max()), s.txbufs_in_flight(),
      s.txbufs_created(), s.txbufs_destroyed(), l.count(), HumanNanos(l.p50()),
      HumanNanos(l.p90()), HumanNanos(l.p99()), HumanNanos(l.p999()),
      HumanNanos(l.max()), HumanNanos(l.mean()), s.zerocopy_completions(),
      s.copied_completions(), s.budget_waits(), s.budget_closes(), pc.pages(),
      pc.pinned_pages(), pc.dirty_pages(), pc.cow_copies(), pc.hits(),
      pc.misses(), pc.evictions());
  if (!s.engines().empty()) {
    absl::StrAppendFormat(
        &out, "engines\n  %-14s %10s %12s %11s %8s %8s %9s %9s %7s %7s %7s\n",
        "name", "txbufs", "bytes", "submissions", "partial", "wouldblk",
        "zc_notif", "zc_copied", "nobufs", "fixed", "errors");
    for (const rpc::EngineStats& e : s.engines()) {
      absl::StrAppendFormat(
          &out, "  %-14s %10d %12s %11d %8d %8d %9d %9d %7d %7d %7d\n",
          e.name(), e.txbufs(), HumanBytes(e.bytes()), e.submissions(),
          e.partial_sends(), e.would_block(), e.zc_notifications(),
          e.zc_copied(), e.nobufs_fallbacks(), e.fixed_buffer_sends(),
          e.errors());
    }
  }
  if (!s.slabs().empty()) {
    absl::StrAppendFormat(&out, "slabs\n  %-20s %8s %10s %10s %8s\n", "name",
                          "objsize", "active", "total", "slabs");
    for (const rpc::SlabStats& sl : s.slabs()) {
      absl::StrAppendFormat(&out, "  %-20s %8d %10d %10d %8d\n", sl.name(),
                            sl.object_size(), sl.active_objects(),
                            sl.total_objects(), sl.slabs());
    }
  }
  return out;
}

std::string ProgressLine(uint64_t done, uint64_t total, double seconds) {
  double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
  std::string line = absl::StrFormat("%10s", HumanBytes(done));
  if (total > 0) {
    int pct = static_cast<int>(std::min<uint64_t>(100, done * 100 / total));
    constexpr int kWidth = 24;
    int fill = pct * kWidth / 100;
    std::string bar(kWidth, ' ');
    for (int i = 0; i < fill; ++i) bar[i] = '=';
    if (fill < kWidth) bar[fill] = '>';
    absl::StrAppendFormat(&line, " / %-10s %3d%%  %9.1f MiB/s  [%s]",
                          HumanBytes(total), pct, rate / (1 << 20), bar);
  } else {
    absl::StrAppendFormat(&line, "  %9.1f MiB/s", rate / (1 << 20));
  }
  return line;
}

}  // namespace txbuf::client::internal
