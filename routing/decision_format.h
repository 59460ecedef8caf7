// Renders a routing Decision (routing/route.h) for people and for programs.
//
// JSON (stable keys; `tracepager route --format json`, the daemon's audit log and API build on
// it): decision, reason, alerting_service, symptom, teams, culprits[], naive{teams,culprits[]},
// changed_by[], traces[] {trace_id, alerting_service, path[], culprits[] {service, role,
// virtual, why, path[], spans[]}, naive[], changed_by[], notes[]}.
//
// Text is for a person woken at 3 a.m.: the decision and the team first, then per trace the
// path as an indented tree with each failing span's service, operation, error and timing.
// Pure; safe to call concurrently.
#pragma once

#include <string>

#include "routing/route.h"

namespace tracepager::routing {

// One JSON object, no trailing newline. `pretty` indents for people.
std::string DecisionToJson(const Decision& decision, bool pretty = false);

// Multi-line text ending in a newline.
std::string DecisionToText(const Decision& decision);

}  // namespace tracepager::routing
