#include "daemon/audit_record.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <set>

#include "routing/decision_format.h"
#include "tests/support/audit_samples.h"

namespace tracepager::daemon {
namespace {

using testing::kSampleBaseNs;
using testing::SampleDecisionAudit;
using testing::SampleDelivery;
using testing::SampleFallbackDecision;
using testing::SampleRoutedDecision;

TEST(AuditRecord, DecisionRoundTrip) {
  DecisionAudit a =
      SampleDecisionAudit("20241126T194000.000000Z-0001", kSampleBaseNs, SampleRoutedDecision());
  a.alert.grouped_identities = {"am:1111", "am:2222"};
  AuditTraceSearch search;
  search.backend = "jaeger";
  search.service = "frontend";
  search.start_ns = kSampleBaseNs - 600'000'000'000;
  search.end_ns = kSampleBaseNs;
  search.limit = 20;
  search.found = 3;
  a.fetch.search = search;
  const std::string line = DecisionRecordJson(a);
  EXPECT_EQ(line.find('\n'), std::string::npos);

  Result<AuditRecord> parsed = ParseAuditRecord(line);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const auto* d = std::get_if<DecisionAudit>(&*parsed);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->id, a.id);
  EXPECT_EQ(d->time_ns, a.time_ns);
  EXPECT_EQ(d->alert.identity, a.alert.identity);
  EXPECT_EQ(d->alert.labels, a.alert.labels);
  EXPECT_EQ(d->alert.received_ns, a.alert.received_ns);
  EXPECT_EQ(d->alert.starts_at_ns, a.alert.starts_at_ns);
  EXPECT_EQ(d->alert.grouped_identities, a.alert.grouped_identities);
  EXPECT_EQ(d->symptom_reason, a.symptom_reason);
  ASSERT_EQ(d->fetch.traces.size(), 1u);
  EXPECT_EQ(d->fetch.traces[0].trace_id, testing::kExampleTraceId);
  EXPECT_TRUE(d->fetch.traces[0].used);
  ASSERT_TRUE(d->fetch.search.has_value());
  EXPECT_EQ(d->fetch.search->found, 3u);
  EXPECT_EQ(d->fetch.search->start_ns, search.start_ns);
  EXPECT_EQ(routing::DecisionToText(d->decision), routing::DecisionToText(a.decision));
  ASSERT_EQ(d->pages.size(), 1u);
  EXPECT_EQ(d->pages[0].team, "payments-data");
  EXPECT_EQ(d->pages[0].dedup_key, a.pages[0].dedup_key);
  EXPECT_EQ(d->timings.queue_wait, a.timings.queue_wait);
  EXPECT_EQ(d->timings.fetch, a.timings.fetch);
  EXPECT_EQ(d->timings.route, a.timings.route);
  EXPECT_EQ(d->timings.total, a.timings.total);

  rapidjson::Document doc;
  doc.Parse(line.c_str());
  ASSERT_TRUE(doc.IsObject());
  EXPECT_EQ(doc["schema"].GetInt(), 1);
  EXPECT_STREQ(doc["type"].GetString(), "decision");
  EXPECT_STREQ(doc["time"].GetString(), "2024-11-26T19:40:00.000000Z");
  EXPECT_TRUE(doc["disagreement"].GetBool());
  EXPECT_STREQ(doc["route"]["decision"].GetString(), "routed");
}

TEST(AuditRecord, DeliveryRoundTripKeepsOnlyRedactedTarget) {
  DecisionAudit a = SampleDecisionAudit("id-1", kSampleBaseNs, SampleRoutedDecision());
  DeliveryAudit p = SampleDelivery(a, "payments-data", kSampleBaseNs + 1'500'000'000);
  const std::string line = DeliveryRecordJson(p);
  Result<AuditRecord> parsed = ParseAuditRecord(line);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const auto* d = std::get_if<DeliveryAudit>(&*parsed);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->decision_id, "id-1");
  EXPECT_EQ(d->team, "payments-data");
  EXPECT_EQ(d->target.kind, "pagerduty");
  EXPECT_EQ(d->target.name, "pd-payments-data");
  EXPECT_EQ(d->target.endpoint, "");
  EXPECT_EQ(d->target.secret, "");
  EXPECT_EQ(d->target.redacted,
            "https://events.pagerduty.com/[redacted] key " + SecretFingerprint(p.target.secret));
  ASSERT_EQ(d->attempts.size(), 2u);
  EXPECT_EQ(d->attempts[0].http_status, 500);
  EXPECT_EQ(d->attempts[1].request_id, "5fc1a2b3");
  EXPECT_EQ(d->outcome, DeliveryOutcome::kAccepted);
  EXPECT_EQ(d->accepted_ns, p.accepted_ns);
  EXPECT_EQ(line.find(p.target.secret), std::string::npos);
}

TEST(AuditRecord, SecretsNeverWritten) {
  const std::string key = "R0UT1NGK3Y0123456789abcdefABCDEF";
  const std::string slack = "https://hooks.slack.com/services/T0000/B0000/XXXXSECRETXXXX";
  DecisionAudit a = SampleDecisionAudit("id-2", kSampleBaseNs, SampleRoutedDecision());
  DeliveryAudit p = SampleDelivery(a, "payments-data", kSampleBaseNs);
  p.target.kind = "slack";
  p.target.endpoint = slack;
  p.target.secret = key;
  p.attempts[0].error = "POST " + slack + ": 404 no_service; key " + key;
  p.attempts[1].error = "proxy said: Authorization: Bearer sk-live-abcdef123456";
  p.detail = "path /services/T0000/B0000/XXXXSECRETXXXX rejected";
  p.dedup_key = "dedup-" + key;
  const std::string line = DeliveryRecordJson(p);
  EXPECT_EQ(line.find(key), std::string::npos) << line;
  EXPECT_EQ(line.find("XXXXSECRETXXXX"), std::string::npos) << line;
  EXPECT_EQ(line.find("sk-live-abcdef123456"), std::string::npos) << line;
  EXPECT_NE(line.find("hooks.slack.com"), std::string::npos) << line;  // the host stays

  // Decision records: credentials in URLs inside labels, summaries, errors and span names.
  a.alert.labels["runbook"] = "https://user:hunter2@wiki.example/run?token=abc123&x=1";
  a.alert.summary = "see https://grafana.example/d/x?api_key=K3Y999 for details";
  a.fetch.traces[0].error = "GET http://jaeger:16686/api/traces/1?access_token=T0K3N: 503";
  a.decision.traces[0].culprits[0].path[0].operation = "GET https://api.example/v1?sig=S1GN";
  const std::string dline = DecisionRecordJson(a);
  for (const char* secret : {"hunter2", "abc123", "K3Y999", "T0K3N", "S1GN"}) {
    EXPECT_EQ(dline.find(secret), std::string::npos) << secret << " in " << dline;
  }
  EXPECT_NE(dline.find("x=1"), std::string::npos);
  EXPECT_TRUE(ParseAuditRecord(dline).ok());
}

TEST(AuditRecord, RejectsWhatIsNotARecord) {
  EXPECT_FALSE(ParseAuditRecord("{\"schema\":1,\"type\":\"decision\"").ok());
  EXPECT_FALSE(ParseAuditRecord("[1,2]").ok());
  EXPECT_FALSE(ParseAuditRecord("{\"type\":\"decision\"}").ok());
  Result<AuditRecord> newer = ParseAuditRecord("{\"schema\":2,\"type\":\"decision\"}");
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.error().message, "schema 2 is newer than this tracepager reads (1)");
  EXPECT_FALSE(ParseAuditRecord("{\"schema\":1,\"type\":\"weather\"}").ok());
  EXPECT_FALSE(ParseAuditRecord("{\"schema\":1,\"type\":\"decision\",\"id\":\"x\"}").ok());
  // Deep nesting is refused without recursion.
  std::string deep(100000, '[');
  EXPECT_FALSE(ParseAuditRecord(deep).ok());
}

TEST(AuditRecord, NaiveDisagreesComparesTeamsAndPrimaries) {
  EXPECT_TRUE(NaiveDisagrees(SampleRoutedDecision()));
  EXPECT_FALSE(NaiveDisagrees(SampleFallbackDecision("frontend", "web")));
  routing::Decision same_teams = SampleRoutedDecision();
  same_teams.naive_teams = same_teams.teams;  // same team, different culprit service
  EXPECT_TRUE(NaiveDisagrees(same_teams));
}

TEST(AuditTime, FormatsAndParsesRfc3339) {
  EXPECT_EQ(FormatAuditTime(kSampleBaseNs + 123'456'789), "2024-11-26T19:40:00.123456Z");
  EXPECT_EQ(*ParseAuditTime("2024-11-26T19:40:00.123456Z"), kSampleBaseNs + 123'456'000);
  EXPECT_EQ(*ParseAuditTime("2024-11-26T20:40:00+01:00"), kSampleBaseNs);
  EXPECT_EQ(*ParseAuditTime("2024-11-26 19:40:00z"), kSampleBaseNs);
  EXPECT_EQ(*ParseAuditTime("2024-11-26"), kSampleBaseNs - (19 * 3600 + 40 * 60) * 1'000'000'000LL);
  EXPECT_FALSE(ParseAuditTime("2024-11-26T19:40:00").ok());  // no zone
  EXPECT_FALSE(ParseAuditTime("2024-02-30T00:00:00Z").ok());
  EXPECT_FALSE(ParseAuditTime("yesterday").ok());
  EXPECT_FALSE(ParseAuditTime("2024-11-26T19:40:00.Z").ok());
}

TEST(AuditRedact, UrlsAndFingerprints) {
  EXPECT_EQ(RedactUrl("https://hooks.slack.com/services/T/B/X"),
            "https://hooks.slack.com/[redacted]");
  EXPECT_EQ(RedactUrl("https://u:p@api.opsgenie.com:443/v2/alerts?x=1"),
            "https://api.opsgenie.com:443/[redacted]");
  EXPECT_EQ(RedactUrl("https://example.com/"), "https://example.com");
  EXPECT_EQ(RedactUrl("not a url"), "[redacted]");
  EXPECT_EQ(RedactUrl(""), "");
  EXPECT_EQ(SecretFingerprint(""), "");
  EXPECT_EQ(SecretFingerprint("abc"), "sha256:ba7816bf");  // SHA-256("abc") = ba7816bf...
  EXPECT_EQ(ScrubText("ok https://h/p?a=1&token=xyz#f and more"),
            "ok https://h/p?a=1&token=[redacted]#f and more");
  EXPECT_EQ(ScrubText("no url here: 5 ://x"), "no url here: 5 ://x");
  EXPECT_EQ(ScrubText("key s3cr3t and s3cr3t", {"s3cr3t"}), "key [redacted] and [redacted]");
}

TEST(DecisionIds, UniqueAndIncreasingWhenTheClockStandsStill) {
  DecisionIdGenerator gen(0x3fa9);
  std::string prev;
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = gen.Next(kSampleBaseNs);  // the same instant every time
    EXPECT_GT(id, prev);
    seen.insert(id);
    prev = id;
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_EQ(*seen.begin(), "20241126T194000.000000Z-3fa9");
  // A clock that steps back does not make an id sort before an earlier one.
  EXPECT_GT(gen.Next(kSampleBaseNs - 1'000'000'000), prev);
}

}  // namespace
}  // namespace tracepager::daemon
