#include "server/status_map.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/page_cache.h"
#include "common/socket_util.h"

namespace txbuf::server {

OpError ErrnoError(int err, absl::string_view what) {
  return {StatusFromErrno(err), absl::StrCat(what, ": ", std::strerror(err))};
}

OpError FromAbsl(const absl::Status& s) {
  if (s.ok()) return OpError::Ok();
  // Meant to be repeated off the event loop, never to reach a client; if it
  // does, "retry" is the honest answer.
  if (IsWouldBlock(s)) return {rpc::STATUS_DELAY, std::string(s.message())};
  // A failed syscall keeps its errno (ErrnoStatus), and so its identity:
  // EFBIG (also the page cache's FileTooLargeError) is FBIG, ENOSPC NOSPC,
  // EDQUOT DQUOT, EIO IO; only errnos a retry can fix are DELAY.
  if (int err = ErrnoOf(s); err != 0) {
    return {StatusFromErrno(err), std::string(s.message())};
  }
  return {StatusFromAbslCode(s.code()), std::string(s.message())};
}

}  // namespace txbuf::server
