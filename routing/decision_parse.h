// Reads a routing Decision back from the JSON that DecisionToJson (routing/decision_format.h)
// wrote, so that a stored decision (the audit log) can be drawn again with DecisionToText.
//
// What comes back is what the JSON holds: every field DecisionToText and DecisionToJson use.
// Fields the JSON does not carry keep their defaults (Culprit::earliest_failure_ns,
// TraceCulprit::failure_start_ns; per-trace naive culprits carry only their service). Keys the
// reader does not know are ignored, so records written by a newer tracepager still load; a
// known key with the wrong type is an error (kInvalidInput) naming the key's path, e.g.
// `traces[1].culprits[0].spans[2].start_offset_ns: expected an integer`.
// Pure; safe to call concurrently.
#pragma once

#include <rapidjson/document.h>

#include <string_view>

#include "routing/result.h"
#include "routing/route.h"

namespace tracepager::routing {

// `json` is one DecisionToJson object.
Result<Decision> DecisionFromJson(std::string_view json);

// `value` is a parsed DecisionToJson object (for callers that hold it inside a larger document).
Result<Decision> DecisionFromJsonValue(const rapidjson::Value& value);

}  // namespace tracepager::routing
