// json_string.h: one string as a JSON string literal.
//
// Thread-safety: a pure function.
//
// Example:
//   std::string q = txbuf::JsonQuote("a\"b\n");  // "\"a\\\"b\\n\""
#ifndef TXBUF_COMMON_JSON_STRING_H_
#define TXBUF_COMMON_JSON_STRING_H_

#include <string>

#include "absl/strings/string_view.h"

namespace txbuf {

// `s` in double quotes with `"` and `\` escaped, \n \r \t as such and every
// other control byte (and DEL) as \u00XX. Other bytes pass through, so
// UTF-8 text stays as it is.
std::string JsonQuote(absl::string_view s);

}  // namespace txbuf

#endif  // TXBUF_COMMON_JSON_STRING_H_
