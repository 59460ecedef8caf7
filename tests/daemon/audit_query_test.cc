// Query semantics (daemon/audit_query.h) that the CLI and API tests do not pin down.
#include "daemon/audit_query.h"

#include <gtest/gtest.h>

#include "daemon/audit_log.h"
#include "tests/support/audit_samples.h"
#include "tests/support/process.h"

namespace tracepager::daemon {
namespace {

using testing::kSampleBaseNs;
using testing::SampleDecisionAudit;
using testing::SampleDelivery;
using testing::SampleFallbackDecision;
using testing::TempDir;

constexpr int64_t kS = 1'000'000'000;

DeliveryAudit Outcome(const DecisionAudit& d, const std::string& team, DeliveryOutcome outcome) {
  DeliveryAudit p = SampleDelivery(d, team, d.time_ns + kS);
  p.outcome = outcome;
  if (outcome != DeliveryOutcome::kAccepted) p.accepted_ns = 0;
  return p;
}

TEST(AuditQuery, NobodyPagedAndWhichOutcomesCountAsFailures) {
  TempDir dir;
  AuditLogOptions options;
  options.path = dir.path() + "/audit.jsonl";
  auto writer = AuditLogWriter::Open(options);
  ASSERT_TRUE(writer.ok());
  // d1: web has no target, the chain goes on to platform, which has none either: nobody paged.
  DecisionAudit d1 =
      SampleDecisionAudit("d1", kSampleBaseNs, SampleFallbackDecision("frontend", "web"));
  ASSERT_TRUE((*writer)->AppendDecision(d1).ok());
  ASSERT_TRUE((*writer)->AppendDelivery(Outcome(d1, "web", DeliveryOutcome::kNoTarget)).ok());
  ASSERT_TRUE((*writer)->AppendDelivery(Outcome(d1, "web", DeliveryOutcome::kFallback)).ok());
  ASSERT_TRUE(
      (*writer)->AppendDelivery(Outcome(d1, "platform", DeliveryOutcome::kNobodyPaged)).ok());
  // d2: accepted, then its trigger was cancelled by a resolve (not a failure).
  DecisionAudit d2 =
      SampleDecisionAudit("d2", kSampleBaseNs + kS, SampleFallbackDecision("cart", "checkout"));
  ASSERT_TRUE((*writer)->AppendDecision(d2).ok());
  ASSERT_TRUE((*writer)->AppendDelivery(Outcome(d2, "checkout", DeliveryOutcome::kAccepted)).ok());
  ASSERT_TRUE((*writer)->AppendDelivery(Outcome(d2, "checkout", DeliveryOutcome::kCancelled)).ok());
  ASSERT_TRUE((*writer)->Close().ok());

  Result<AuditListing> listing = ListDecisions(options.path, {}, 0);
  ASSERT_TRUE(listing.ok());
  ASSERT_EQ(listing->decisions.size(), 2u);
  EXPECT_EQ(listing->decisions[0].id, "d2");
  EXPECT_FALSE(listing->decisions[0].nobody_paged);
  EXPECT_TRUE(listing->decisions[1].nobody_paged);

  Result<AuditStats> stats = ComputeAuditStats(options.path, {});
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->nobody_paged, 1u);
  for (const TeamStats& t : stats->teams) {
    SCOPED_TRACE(t.team);
    if (t.team == "web") {
      EXPECT_EQ(t.pages_failed, 1u);  // no_target; the fallback record is not a failure
    }
    if (t.team == "platform") {
      EXPECT_EQ(t.pages_failed, 1u);  // nobody_paged
    }
    if (t.team == "checkout") {
      EXPECT_EQ(t.pages_accepted, 1u);
      EXPECT_EQ(t.pages_failed, 0u);  // cancelled is not a failure
    }
  }
  EXPECT_EQ(stats->page_latency_count, 1u);  // only d2 reached anyone
}

TEST(AuditQuery, TimeArguments) {
  const int64_t now = kSampleBaseNs;
  EXPECT_EQ(*ParseTimeArg("now", now), now);
  EXPECT_EQ(*ParseTimeArg("90s", now), now - 90 * kS);
  EXPECT_EQ(*ParseTimeArg("1h30m", now), now - 5400 * kS);
  EXPECT_EQ(*ParseTimeArg("2d", now), now - 2 * 86400 * kS);
  EXPECT_EQ(*ParseTimeArg("1w", now), now - 7 * 86400 * kS);
  EXPECT_EQ(*ParseTimeArg("2024-11-26T19:40:00Z", now), kSampleBaseNs);
  for (const char* bad : {"", "h", "5", "5x", "1h-", "-2h", "yesterday"}) {
    EXPECT_FALSE(ParseTimeArg(bad, now).ok()) << bad;
  }
}

TEST(AuditQuery, OldestDecisionsGoWhenTheLimitIsReached) {
  TempDir dir;
  AuditLogOptions options;
  options.path = dir.path() + "/audit.jsonl";
  auto writer = AuditLogWriter::Open(options);
  ASSERT_TRUE(writer.ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        (*writer)
            ->AppendDecision(SampleDecisionAudit("id" + std::to_string(i), kSampleBaseNs + i * kS,
                                                 SampleFallbackDecision("a", "b")))
            .ok());
  }
  ASSERT_TRUE((*writer)->Close().ok());
  Result<AuditListing> listing = ListDecisions(options.path, {}, 2);
  ASSERT_TRUE(listing.ok());
  EXPECT_EQ(listing->matched, 5u);
  ASSERT_EQ(listing->decisions.size(), 2u);
  EXPECT_EQ(listing->decisions[0].id, "id4");
  EXPECT_EQ(listing->decisions[1].id, "id3");
}

}  // namespace
}  // namespace tracepager::daemon
