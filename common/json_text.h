// json_text.h: a JSON value as the one line of text txbuf writes (the STATS
// JSON, txbufd's final statistics line, txbuf-bench's reports).
//
// Every JSON txbuf writes is built as an nlohmann::ordered_json (keys keep
// the order they were added in) and turned into text here, so that text is
// always valid JSON: compact, on one line, control characters escaped, and
// bytes that are not valid UTF-8 (a path, an error text) replaced by U+FFFD
// (one per invalid byte or truncated sequence) instead of nlohmann's
// default, an exception.
//
// Thread-safety: a pure function.
//
// Example:
//   nlohmann::ordered_json j = {{"name", "a\nb"}, {"count", 3}};
//   std::string text = txbuf::JsonText(j);  // {"name":"a\nb","count":3}
#ifndef TXBUF_COMMON_JSON_TEXT_H_
#define TXBUF_COMMON_JSON_TEXT_H_

#include <string>

#include "nlohmann/json.hpp"

namespace txbuf {

// `j` as compact JSON text (no newline). Never throws on bad UTF-8 (U+FFFD
// instead). Non-finite numbers are written as null.
std::string JsonText(const nlohmann::ordered_json& j);

}  // namespace txbuf

#endif  // TXBUF_COMMON_JSON_TEXT_H_
