#include "proto/stats_json.h"

#include <cmath>

#include "common/json_text.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace txbuf {
namespace {

namespace pb = google::protobuf;
using Json = nlohmann::ordered_json;

Json MessageToJson(const pb::Message& m);

Json Number(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

// Field `f` of `m`: element `i` of a repeated field, or the value (i < 0).
Json FieldValue(const pb::Message& m, const pb::FieldDescriptor* f, int i) {
  const pb::Reflection* r = m.GetReflection();
  const bool rep = i >= 0;
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32:
      return rep ? r->GetRepeatedInt32(m, f, i) : r->GetInt32(m, f);
    case pb::FieldDescriptor::CPPTYPE_INT64:
      return rep ? r->GetRepeatedInt64(m, f, i) : r->GetInt64(m, f);
    case pb::FieldDescriptor::CPPTYPE_UINT32:
      return rep ? r->GetRepeatedUInt32(m, f, i) : r->GetUInt32(m, f);
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      return rep ? r->GetRepeatedUInt64(m, f, i) : r->GetUInt64(m, f);
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      return Number(rep ? r->GetRepeatedDouble(m, f, i) : r->GetDouble(m, f));
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      return Number(rep ? r->GetRepeatedFloat(m, f, i) : r->GetFloat(m, f));
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      return rep ? r->GetRepeatedBool(m, f, i) : r->GetBool(m, f);
    case pb::FieldDescriptor::CPPTYPE_ENUM:
      return (rep ? r->GetRepeatedEnum(m, f, i) : r->GetEnum(m, f))->name();
    case pb::FieldDescriptor::CPPTYPE_STRING:
      // StatsResult has no bytes field; a string's bytes that are not UTF-8
      // are replaced when the JSON becomes text (JsonText).
      return rep ? r->GetRepeatedString(m, f, i) : r->GetString(m, f);
    case pb::FieldDescriptor::CPPTYPE_MESSAGE:
      return MessageToJson(rep ? r->GetRepeatedMessage(m, f, i)
                               : r->GetMessage(m, f));
  }
  return nullptr;
}

Json MessageToJson(const pb::Message& m) {
  Json out = Json::object();
  const pb::Descriptor* d = m.GetDescriptor();
  for (int k = 0; k < d->field_count(); ++k) {
    const pb::FieldDescriptor* f = d->field(k);
    if (f->is_repeated()) {
      Json a = Json::array();
      const int n = m.GetReflection()->FieldSize(m, f);
      for (int i = 0; i < n; ++i) a.push_back(FieldValue(m, f, i));
      out[f->name()] = std::move(a);
    } else {
      out[f->name()] = FieldValue(m, f, -1);
    }
  }
  return out;
}

}  // namespace

nlohmann::ordered_json StatsToJson(const rpc::StatsResult& stats) {
  return MessageToJson(stats);
}

std::string StatsJsonLine(const rpc::StatsResult& stats) {
  return JsonText(StatsToJson(stats));
}

}  // namespace txbuf
