// The audit record of a page delivery, from the outbox's delivery record
// (integrations/delivery/delivery.h): what the daemon's DeliveryHooks::record hook hands to
// AuditLogWriter::AppendDelivery.
//
//   hooks.record = [queue](const integrations::delivery::DeliveryRecord& r,
//                          const integrations::PagerTarget* target) {
//     if (auto a = DeliveryAuditFromRecord(r, target)) queue->Push(std::move(*a));
//   };  // and a thread that pops and calls AuditLogWriter::AppendDelivery
//
// The hook runs under Delivery's lock and must not block for long: with sync kEveryRecord an
// append waits for fdatasync, hence the queue (or sync kBatched, whose appends only write). The
// mapping is cheap. Map inside the hook: the target (and its secrets) must not be kept.
#pragma once

#include <optional>

#include "daemon/audit_record.h"
#include "integrations/delivery/delivery.h"

namespace tracepager::daemon {

// kRetry gives nullopt: a page's attempts are written once, with its final outcome (the record
// carries the attempt log). Every other kind maps to the DeliveryOutcome of the same name
// (kSent -> kAccepted, kFailed -> kRejected). `target` (null when none) is used only to
// fingerprint its credential and to scrub its secrets (DeliveryRecordJson); the slack and webhook
// credential is the endpoint URL. Thread-safe; pure.
std::optional<DeliveryAudit> DeliveryAuditFromRecord(
    const integrations::delivery::DeliveryRecord& record, const integrations::PagerTarget* target);

}  // namespace tracepager::daemon
