#include "daemon/audit_delivery.h"

#include <gtest/gtest.h>

namespace tracepager::daemon {
namespace {

using integrations::delivery::DeliveryRecord;

DeliveryRecord Sent() {
  DeliveryRecord r;
  r.kind = DeliveryRecord::Kind::kSent;
  r.decision_id = "20241126T194000.000000Z-aaaa";
  r.alert_identity = "am:1234";
  r.dedup_key = "tp-am:1234-platform";
  r.team = "platform";
  r.target_key = "webhook:0123456789abcdef";
  r.pager_kind = "webhook";
  r.attempts = 2;
  r.http_status = 200;
  r.at_ns = 1'732'650'001'000'000'000;
  r.attempt_log = {{1'732'650'000'500'000'000, 503, "503 from [redacted]", ""},
                   {1'732'650'001'000'000'000, 200, "", "req-7"}};
  return r;
}

TEST(AuditDelivery, SentPageBecomesAnAcceptedDelivery) {
  integrations::PagerTarget target;
  target.kind = "webhook";
  target.team = "platform";
  target.credential = integrations::Secret("https://hooks.example/page/pl4tf0rm-t0k3n", "env X");
  target.signing_key = integrations::Secret("s1gn1ngk3y", "env Y");
  DeliveryRecord r = Sent();
  r.detail = "ok from https://hooks.example/page/pl4tf0rm-t0k3n signed with s1gn1ngk3y";
  std::optional<DeliveryAudit> a = DeliveryAuditFromRecord(r, &target);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->outcome, DeliveryOutcome::kAccepted);
  EXPECT_EQ(a->accepted_ns, r.at_ns);
  EXPECT_EQ(a->action, "trigger");
  EXPECT_EQ(a->team, "platform");
  EXPECT_EQ(a->target.kind, "webhook");
  EXPECT_EQ(a->target.name, "webhook:0123456789abcdef");
  ASSERT_EQ(a->attempts.size(), 2u);
  EXPECT_EQ(a->attempts[0].http_status, 503);
  EXPECT_EQ(a->attempts[1].request_id, "req-7");

  const std::string line = DeliveryRecordJson(*a);
  EXPECT_EQ(line.find("pl4tf0rm-t0k3n"), std::string::npos) << line;
  EXPECT_EQ(line.find("s1gn1ngk3y"), std::string::npos) << line;
  EXPECT_NE(line.find("\"redacted\":\"https://hooks.example/[redacted]\""), std::string::npos)
      << line;
}

TEST(AuditDelivery, KeyIsFingerprintedNotWritten) {
  integrations::PagerTarget target;
  target.kind = "pagerduty";
  target.credential = integrations::Secret("R0UT1NGK3Y0123456789abcdefABCDEF", "env PD");
  DeliveryRecord r = Sent();
  r.kind = DeliveryRecord::Kind::kFailed;
  r.pager_kind = "pagerduty";
  r.rerouted_to = "web";
  std::optional<DeliveryAudit> a = DeliveryAuditFromRecord(r, &target);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->outcome, DeliveryOutcome::kRejected);
  EXPECT_EQ(a->accepted_ns, 0);
  EXPECT_EQ(a->rerouted_to, "web");
  const std::string line = DeliveryRecordJson(*a);
  EXPECT_EQ(line.find("R0UT1NGK3Y"), std::string::npos);
  EXPECT_NE(line.find("key " + SecretFingerprint("R0UT1NGK3Y0123456789abcdefABCDEF")),
            std::string::npos);
}

TEST(AuditDelivery, EveryKindButRetryIsRecorded) {
  using K = DeliveryRecord::Kind;
  const std::vector<std::pair<K, const char*>> kinds = {
      {K::kSent, "accepted"},       {K::kFailed, "rejected"},
      {K::kExpired, "expired"},     {K::kNoTarget, "no_target"},
      {K::kFallback, "fallback"},   {K::kNobodyPaged, "nobody_paged"},
      {K::kCancelled, "cancelled"}, {K::kNothingToResolve, "nothing_to_resolve"}};
  for (const auto& [kind, name] : kinds) {
    DeliveryRecord r = Sent();
    r.kind = kind;
    r.action = integrations::Page::Action::kResolve;
    r.fallback_team = "web";
    std::optional<DeliveryAudit> a = DeliveryAuditFromRecord(r, nullptr);
    ASSERT_TRUE(a.has_value()) << name;
    EXPECT_STREQ(DeliveryOutcomeName(a->outcome), name);
    EXPECT_EQ(a->action, "resolve");
    EXPECT_EQ(a->target.kind, "webhook");  // from the record when no target is given
    if (kind == K::kFallback) {
      EXPECT_EQ(a->rerouted_to, "web");
    }
    Result<AuditRecord> back = ParseAuditRecord(DeliveryRecordJson(*a));
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(std::get<DeliveryAudit>(*back).outcome, a->outcome);
  }
  DeliveryRecord retry = Sent();
  retry.kind = K::kRetry;
  EXPECT_FALSE(DeliveryAuditFromRecord(retry, nullptr).has_value());

  DeliveryRecord no_log = Sent();
  no_log.kind = K::kExpired;
  no_log.attempt_log.clear();
  no_log.attempts = 9;
  no_log.http_status = 500;
  no_log.detail = "max age 10m0s reached";
  std::optional<DeliveryAudit> a = DeliveryAuditFromRecord(no_log, nullptr);
  ASSERT_EQ(a->attempts.size(), 1u);
  EXPECT_EQ(a->attempts[0].http_status, 500);
  EXPECT_EQ(a->attempts[0].error, "max age 10m0s reached");
}

}  // namespace
}  // namespace tracepager::daemon
