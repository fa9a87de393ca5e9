// json_writer.h: a small streaming JSON writer (objects, arrays, strings,
// numbers, booleans, null) producing compact, valid JSON. Non-finite
// numbers are written as null.
//
// Thread-safety: thread-compatible.
//
// Example:
//   JsonWriter j;
//   j.BeginObject();
//   j.Key("ops_s").Number(61234.5);
//   j.Key("engines").BeginArray().String("copy").EndArray();
//   j.EndObject();
//   std::string text = j.str();  // {"ops_s":61234.5,"engines":["copy"]}
#ifndef TXBUF_BENCH_TXBUF_BENCH_JSON_WRITER_H_
#define TXBUF_BENCH_TXBUF_BENCH_JSON_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace txbuf::bench {

class JsonWriter {
 public:
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  // Inside an object: the next value's key.
  JsonWriter& Key(absl::string_view key);
  JsonWriter& String(absl::string_view s);
  JsonWriter& Number(double v);
  JsonWriter& Int(int64_t v);
  JsonWriter& Uint(uint64_t v);
  JsonWriter& Bool(bool b);
  JsonWriter& Null();

  const std::string& str() const { return out_; }

  // `s` as a JSON string literal, quotes included.
  static std::string Quote(absl::string_view s);

 private:
  void BeforeValue();
  std::string out_;
  // Per open container: whether a value was written (for commas).
  std::vector<bool> has_value_;
  bool after_key_ = false;
};

}  // namespace txbuf::bench

#endif  // TXBUF_BENCH_TXBUF_BENCH_JSON_WRITER_H_
