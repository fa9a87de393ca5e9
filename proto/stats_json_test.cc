#include "proto/stats_json.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "gtest/gtest.h"

namespace txbuf {
namespace {

namespace pb = google::protobuf;
using Json = nlohmann::ordered_json;

// A distinctive value per field: its number, plus 1000 per nesting level.
uint64_t ValueOf(const pb::FieldDescriptor* f, int depth) {
  return static_cast<uint64_t>(f->number()) + 1000u * depth;
}

// Sets every field of `m` (one element in each repeated field), nested
// messages too, each to ValueOf (strings: the field's name; enums: their
// last value).
void FillEveryField(pb::Message* m, int depth = 0) {
  const pb::Descriptor* d = m->GetDescriptor();
  const pb::Reflection* r = m->GetReflection();
  for (int k = 0; k < d->field_count(); ++k) {
    const pb::FieldDescriptor* f = d->field(k);
    const uint64_t v = ValueOf(f, depth);
    const bool rep = f->is_repeated();
    switch (f->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_UINT64:
        rep ? r->AddUInt64(m, f, v) : r->SetUInt64(m, f, v);
        break;
      case pb::FieldDescriptor::CPPTYPE_UINT32:
        rep ? r->AddUInt32(m, f, static_cast<uint32_t>(v))
            : r->SetUInt32(m, f, static_cast<uint32_t>(v));
        break;
      case pb::FieldDescriptor::CPPTYPE_INT64:
        rep ? r->AddInt64(m, f, static_cast<int64_t>(v))
            : r->SetInt64(m, f, static_cast<int64_t>(v));
        break;
      case pb::FieldDescriptor::CPPTYPE_INT32:
        rep ? r->AddInt32(m, f, static_cast<int32_t>(v))
            : r->SetInt32(m, f, static_cast<int32_t>(v));
        break;
      case pb::FieldDescriptor::CPPTYPE_DOUBLE:
        rep ? r->AddDouble(m, f, static_cast<double>(v) + 0.5)
            : r->SetDouble(m, f, static_cast<double>(v) + 0.5);
        break;
      case pb::FieldDescriptor::CPPTYPE_FLOAT:
        rep ? r->AddFloat(m, f, static_cast<float>(v) + 0.5f)
            : r->SetFloat(m, f, static_cast<float>(v) + 0.5f);
        break;
      case pb::FieldDescriptor::CPPTYPE_BOOL:
        rep ? r->AddBool(m, f, true) : r->SetBool(m, f, true);
        break;
      case pb::FieldDescriptor::CPPTYPE_ENUM: {
        const pb::EnumDescriptor* e = f->enum_type();
        const pb::EnumValueDescriptor* last = e->value(e->value_count() - 1);
        rep ? r->AddEnum(m, f, last) : r->SetEnum(m, f, last);
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_STRING:
        rep ? r->AddString(m, f, f->name()) : r->SetString(m, f, f->name());
        break;
      case pb::FieldDescriptor::CPPTYPE_MESSAGE:
        FillEveryField(rep ? r->AddMessage(m, f) : r->MutableMessage(m, f),
                       depth + 1);
        break;
    }
  }
}

// Checks that `j` has exactly the fields of `d`, in declaration order, each
// with the value FillEveryField gave it (`filled`) or its default.
void ExpectEveryField(const Json& j, const pb::Descriptor* d, bool filled,
                      const std::string& path, int depth = 0) {
  ASSERT_TRUE(j.is_object()) << path;
  ASSERT_EQ(j.size(), static_cast<size_t>(d->field_count())) << path;
  int k = 0;
  for (const auto& [key, value] : j.items()) {
    const pb::FieldDescriptor* f = d->field(k++);
    const std::string where = path + "." + f->name();
    ASSERT_EQ(key, f->name()) << where << ": fields out of order or renamed";
    const Json* v = &value;
    if (f->is_repeated()) {
      ASSERT_TRUE(value.is_array()) << where;
      ASSERT_EQ(value.size(), filled ? 1u : 0u) << where;
      if (!filled) continue;
      v = &value.front();
    }
    const uint64_t want = filled ? ValueOf(f, depth) : 0;
    switch (f->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_UINT64:
      case pb::FieldDescriptor::CPPTYPE_UINT32:
      case pb::FieldDescriptor::CPPTYPE_INT64:
      case pb::FieldDescriptor::CPPTYPE_INT32:
        ASSERT_TRUE(v->is_number_integer()) << where << " " << *v;
        EXPECT_EQ(v->get<uint64_t>(), want) << where;
        break;
      case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      case pb::FieldDescriptor::CPPTYPE_FLOAT:
        ASSERT_TRUE(v->is_number()) << where << " " << *v;
        EXPECT_DOUBLE_EQ(v->get<double>(), filled ? want + 0.5 : 0) << where;
        break;
      case pb::FieldDescriptor::CPPTYPE_BOOL:
        EXPECT_EQ(*v, Json(filled)) << where;
        break;
      case pb::FieldDescriptor::CPPTYPE_ENUM: {
        const pb::EnumDescriptor* e = f->enum_type();
        EXPECT_EQ(*v, Json(e->value(filled ? e->value_count() - 1 : 0)->name()))
            << where;
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_STRING:
        EXPECT_EQ(*v, Json(filled ? f->name() : "")) << where;
        break;
      case pb::FieldDescriptor::CPPTYPE_MESSAGE:
        ExpectEveryField(*v, f->message_type(), filled, where, depth + 1);
        break;
    }
  }
}

// A field added to StatsResult (or to a message inside it) cannot be left
// out of the JSON: every one is there, by its proto name, with its value.
TEST(StatsJsonTest, EveryFieldAppearsWithItsValue) {
  rpc::StatsResult s;
  FillEveryField(&s);
  ExpectEveryField(StatsToJson(s), rpc::StatsResult::descriptor(),
                   /*filled=*/true, "");
}

TEST(StatsJsonTest, DefaultsAppearToo) {
  ExpectEveryField(StatsToJson(rpc::StatsResult()),
                   rpc::StatsResult::descriptor(), /*filled=*/false, "");
}

// The shapes docs/STATS.md promises, on a value txbufd could send.
TEST(StatsJsonTest, EnginesOpsAndHistogramsAreArraysOfObjects) {
  rpc::StatsResult s;
  s.set_pinned_bytes(std::numeric_limits<uint64_t>::max());
  s.mutable_destructor_latency()->set_p99(70000);
  s.mutable_destructor_latency()->set_mean(std::nan(""));
  rpc::EngineStats* e = s.add_engines();
  e->set_name("copy");
  e->set_txbufs(3);
  rpc::OpCount* op = s.add_ops();
  op->set_op("read");
  op->set_status(rpc::STATUS_NOENT);
  op->set_count(2);
  rpc::HistogramBucket* b = s.add_destructor_latency_buckets();
  b->set_lo(64);
  b->set_hi(66);
  b->set_count(1);
  const std::string line = StatsJsonLine(s);
  EXPECT_EQ(line.rfind("{\"pinned_bytes\":18446744073709551615,", 0), 0u)
      << line;
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const Json j = Json::parse(line);
  EXPECT_EQ(j["destructor_latency"]["p99"], 70000);
  EXPECT_TRUE(j["destructor_latency"]["mean"].is_null()) << line;
  EXPECT_EQ(j["engines"][0]["name"], "copy");
  EXPECT_EQ(j["engines"][0]["txbufs"], 3);
  EXPECT_EQ(j["ops"][0], Json::parse(R"({"op":"read","status":"STATUS_NOENT",
                                          "count":2})"));
  EXPECT_EQ(j["destructor_latency_buckets"][0],
            Json::parse(R"({"lo":64,"hi":66,"count":1})"));
}

// Strings are the server's (engine, slab and op names), but whatever bytes
// they hold the line is valid JSON and nothing throws.
TEST(StatsJsonTest, ControlCharactersAndInvalidUtf8StayValidJson) {
  rpc::StatsResult s;
  s.set_engine(std::string("a\"b\n\x01\xff", 6));
  s.add_slabs()->set_name(std::string("\xc3(\x7f", 3));
  std::string line;
  ASSERT_NO_THROW(line = StatsJsonLine(s));
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  const Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << line;
  EXPECT_EQ(j["engine"], "a\"b\n\x01\xef\xbf\xbd");
  EXPECT_EQ(j["slabs"][0]["name"], "\xef\xbf\xbd(\x7f");
}

}  // namespace
}  // namespace txbuf
