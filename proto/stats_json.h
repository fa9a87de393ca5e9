// stats_json.h: the one JSON layout of txbufd's statistics (docs/STATS.md).
//
// A StatsResult becomes a JSON object field by field, by reflection: every
// field of the message, defaults included, keyed by its proto field name,
// in declaration order; integers as JSON numbers (uint64 exact), doubles as
// numbers (null if not finite), enums by name, strings as strings, nested
// messages as objects and repeated fields as arrays (engines, slabs, ops,
// histogram buckets: arrays of objects). A field added to the proto appears
// without a change here. `txbuf stats --json` and the line txbufd prints
// when it stops are both this, so they cannot differ in layout.
//
// Thread-safety: pure functions.
//
// Example:
//   rpc::StatsResult s = ...;  // STATS, or Server::FillStats
//   std::string line = txbuf::StatsJsonLine(s);  // {"pinned_bytes":0,...}
#ifndef TXBUF_PROTO_STATS_JSON_H_
#define TXBUF_PROTO_STATS_JSON_H_

#include <string>

#include "nlohmann/json.hpp"
#include "proto/txbuf.pb.h"

namespace txbuf {

// The statistics as a JSON object in the layout above.
nlohmann::ordered_json StatsToJson(const rpc::StatsResult& stats);

// StatsToJson's object as one line of text (common/json_text.h: valid JSON
// whatever bytes the strings hold), without the newline.
std::string StatsJsonLine(const rpc::StatsResult& stats);

}  // namespace txbuf

#endif  // TXBUF_PROTO_STATS_JSON_H_
