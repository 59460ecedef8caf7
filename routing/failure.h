// When a span counts as failed. PLACEHOLDER: the full rule list with its rationale is written
// by the implementation of ClassifyFailure.
#pragma once

#include "routing/trace.h"

namespace tracepager::routing {

// Sets span.failed, span.failure_source, span.failure_reason and span.caller_fault from the
// span's status and attributes. Idempotent. Pure.
void ClassifyFailure(Span& span);

}  // namespace tracepager::routing
