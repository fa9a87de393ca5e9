#include "client/status.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"

namespace txbuf::client {
namespace {

constexpr absl::string_view kPayloadUrl = "type.txbuf/txbuf.rpc.Status";

}  // namespace

absl::Status StatusFromRpc(rpc::Status code, absl::string_view error,
                           absl::string_view context) {
  if (code == rpc::STATUS_OK) return absl::OkStatus();
  std::string name = RpcStatusName(code);
  std::string msg = absl::StrCat(
      context, context.empty() ? "" : ": ",
      error.empty() ? RpcStatusDescription(code) : error, " [", name, "]");
  absl::Status s(RpcStatusCode(code), msg);
  s.SetPayload(kPayloadUrl, absl::Cord(absl::StrCat(static_cast<int>(code))));
  return s;
}

std::optional<rpc::Status> RpcStatusOf(const absl::Status& status) {
  if (status.ok()) return std::nullopt;
  absl::optional<absl::Cord> p = status.GetPayload(kPayloadUrl);
  if (!p.has_value()) return std::nullopt;
  int v = 0;
  if (!absl::SimpleAtoi(p->Flatten(), &v)) return std::nullopt;
  return static_cast<rpc::Status>(v);
}

}  // namespace txbuf::client
