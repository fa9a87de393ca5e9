#include "common/json_text.h"

namespace txbuf {

std::string JsonText(const nlohmann::ordered_json& j) {
  // error_handler_t::replace: the only exception dump() throws (type_error
  // 316, invalid UTF-8) cannot happen.
  return j.dump(/*indent=*/-1, /*indent_char=*/' ', /*ensure_ascii=*/false,
                nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace txbuf
