// Delivery over fake pagers, an in-memory outbox and a manual clock: retries, Retry-After,
// fallback chains, resolves to the triggered targets, rate limits, restart, redaction.
// No sleeps: time moves only when a test advances the ManualClock.
#include "integrations/delivery/delivery.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <deque>
#include <sstream>

#include "integrations/delivery/memory_outbox.h"
#include "integrations/page_builder.h"
#include "tests/integrations/sample_decision.h"

namespace tracepager::integrations::delivery {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A pager that answers from a script per target key (accepted when the script is empty) and
// records every send. With `defer`, outcomes wait until Release().
class FakePager : public Pager {
 public:
  explicit FakePager(std::string kind) : kind_(std::move(kind)) {}
  std::string_view kind() const override { return kind_; }

  void Send(const Page& page, const PagerTarget& target,
            std::function<void(SendOutcome)> done) override {
    sends.push_back({page, target});
    SendOutcome o;
    o.accepted = true;
    o.http_status = 202;
    auto& script = scripts[target.credential.Reveal()];
    if (!script.empty()) {
      o = script.front();
      script.pop_front();
    }
    if (defer) {
      held.emplace_back(std::move(done), o);
    } else {
      done(o);
    }
  }
  void Release() {
    auto h = std::move(held);
    held.clear();
    for (auto& [done, o] : h) done(o);
  }
  // Sends whose credential is `credential`.
  std::vector<Page> SentTo(const std::string& credential) const {
    std::vector<Page> out;
    for (const auto& [p, t] : sends) {
      if (t.credential.Reveal() == credential) out.push_back(p);
    }
    return out;
  }

  std::vector<std::pair<Page, PagerTarget>> sends;
  std::map<std::string, std::deque<SendOutcome>> scripts;  // by credential
  bool defer = false;
  std::vector<std::pair<std::function<void(SendOutcome)>, SendOutcome>> held;

 private:
  std::string kind_;
};

SendOutcome Status(int status, bool permanent, std::string detail = "") {
  SendOutcome o;
  o.http_status = status;
  o.permanent = permanent;
  o.detail = detail.empty() ? "HTTP " + std::to_string(status) : detail;
  return o;
}

SendOutcome TooMany(milliseconds retry_after) {
  SendOutcome o = Status(429, false);
  o.retry_after = retry_after;
  return o;
}

PagerTarget Target(const char* kind, const char* team, const char* credential) {
  PagerTarget t;
  t.kind = kind;
  t.team = team;
  t.credential = Secret(credential, std::string("env TP_KEY_") + team);
  return t;
}

std::shared_ptr<TargetDirectory> Directory() {
  auto d = std::make_shared<TargetDirectory>();
  d->teams["payments-data"] = {
      {Target("pagerduty", "payments-data", "pd-data-key-0001"),
       Target("slack", "payments-data", "https://hooks.slack.example/services/T1/B1/data-secret")},
      "sre"};
  d->teams["payments"] = {{Target("pagerduty", "payments", "pd-pay-key-0002")}, ""};
  d->teams["sre"] = {{Target("pagerduty", "sre", "pd-sre-key-0003")}, ""};
  d->teams["nobody-home"] = {{}, "sre"};
  d->teams["platform"] = {{Target("pagerduty", "platform", "pd-platform-key-0004")}, ""};
  d->default_team = "platform";
  return d;
}

Page MakePage(const std::string& identity, const std::string& team) {
  Page p;
  p.alert_identity = identity;
  p.team = team;
  p.dedup_key = DedupKey(identity, team);
  p.summary = "orders-db: errors behind frontend";
  p.component = "orders-db";
  p.group = "frontend";
  p.severity = "critical";
  p.decision_id = "d-" + identity;
  p.details_json = "{}";
  return p;
}

class DeliveryTest : public ::testing::Test {
 protected:
  DeliveryTest() {
    sink_ = std::make_shared<spdlog::sinks::ostream_sink_mt>(log_text_);
    logger_ = std::make_shared<spdlog::logger>("delivery_test", sink_);
    logger_->set_level(spdlog::level::trace);
    options_.jitter_seed = 42;
    options_.max_age = seconds(600);
    Make();
  }

  void Make() {
    DeliveryHooks hooks;
    hooks.record = [this](const DeliveryRecord& r, const PagerTarget* target) {
      records_.push_back(r);
      // The target comes with every record that concerns one, and only then.
      if (!r.target_key.empty()) {
        EXPECT_NE(target, nullptr) << DeliveryRecordKindName(r.kind);
        if (target != nullptr) {
          EXPECT_EQ(target->Key(), r.target_key);
        }
      }
    };
    hooks.count = [this](std::string_view result, std::string_view kind) {
      counts_[std::string(result) + "/" + std::string(kind)]++;
    };
    hooks.test_point = [this](std::string_view point) {
      if (point == "persisted") sends_at_persist_.push_back(pd_.sends.size() + slack_.sends.size());
    };
    delivery_ = std::make_unique<Delivery>(
        &outbox_,
        std::map<std::string, Pager*, std::less<>>{{"pagerduty", &pd_}, {"slack", &slack_}},
        directory_, options_, &clock_, hooks, logger_);
  }

  // Polls until nothing is due now (fakes answer synchronously unless deferred, and Poll
  // reports their outcomes as due at once). Bounded.
  void Drain() {
    for (int i = 0; i < 1000; ++i) {
      std::optional<int64_t> next = delivery_->Poll();
      if (!next || *next > clock_.NowNs()) return;
    }
    ADD_FAILURE() << "delivery did not settle";
  }

  // Advances the clock in steps of `step` up to `total`, draining at each step.
  void Run(milliseconds total, milliseconds step = milliseconds(100)) {
    for (milliseconds t{0}; t < total; t += step) {
      Drain();
      clock_.Advance(step);
    }
    Drain();
  }

  size_t Count(DeliveryRecord::Kind kind) const {
    size_t n = 0;
    for (const DeliveryRecord& r : records_) n += r.kind == kind;
    return n;
  }

  std::ostringstream log_text_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> logger_;
  ManualClock clock_;
  MemoryOutbox outbox_;
  FakePager pd_{"pagerduty"};
  FakePager slack_{"slack"};
  std::shared_ptr<TargetDirectory> directory_ = Directory();
  DeliveryOptions options_;
  std::unique_ptr<Delivery> delivery_;
  std::vector<DeliveryRecord> records_;
  std::map<std::string, int> counts_;
  std::vector<size_t> sends_at_persist_;
};

constexpr char kDataPd[] = "pd-data-key-0001";
constexpr char kDataSlack[] = "https://hooks.slack.example/services/T1/B1/data-secret";
constexpr char kSrePd[] = "pd-sre-key-0003";
constexpr char kPlatformPd[] = "pd-platform-key-0004";

TEST_F(DeliveryTest, PersistsEveryTargetBeforeSendingAndMarksSentAfterAcceptance) {
  Result<SubmitReport> r = delivery_->Submit("job-1", {MakePage("am:1", "payments-data")});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->entries, 2u);
  ASSERT_EQ(sends_at_persist_, std::vector<size_t>{0});  // persisted, nothing sent yet
  for (const auto& [id, e] : outbox_.entries()) EXPECT_EQ(e.state, EntryState::kPending);
  Drain();
  ASSERT_EQ(pd_.SentTo(kDataPd).size(), 1u);
  ASSERT_EQ(slack_.SentTo(kDataSlack).size(), 1u);
  EXPECT_EQ(pd_.SentTo(kDataPd)[0].dedup_key, DedupKey("am:1", "payments-data"));
  for (const auto& [id, e] : outbox_.entries()) {
    EXPECT_EQ(e.state, EntryState::kSent);
    EXPECT_EQ(e.attempts, 1);
  }
  EXPECT_EQ(Count(DeliveryRecord::Kind::kSent), 2u);
  EXPECT_EQ(counts_["sent/pagerduty"], 1);
  EXPECT_EQ(delivery_->pending(), 0u);
}

TEST_F(DeliveryTest, ARepeatedSubmissionOrAnOpenPageIsNotPagedAgain) {
  ASSERT_TRUE(delivery_->Submit("job-1", {MakePage("am:1", "payments-data")}).ok());
  Drain();
  Result<SubmitReport> again = delivery_->Submit("job-1", {MakePage("am:1", "payments-data")});
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->duplicate_submission);
  Result<SubmitReport> repeat = delivery_->Submit("job-2", {MakePage("am:1", "payments-data")});
  ASSERT_TRUE(repeat.ok());
  EXPECT_EQ(repeat->entries, 0u);
  EXPECT_EQ(repeat->already_open, 2u);
  Drain();
  EXPECT_EQ(pd_.sends.size(), 1u);
  EXPECT_EQ(slack_.sends.size(), 1u);
}

TEST_F(DeliveryTest, RetriesServerErrorsWithGrowingJitteredBackoff) {
  pd_.scripts[kDataPd] = {Status(500, false), Status(502, false), Status(0, false, "timeout"),
                          Status(0, false, "connection reset")};
  ASSERT_TRUE(delivery_->Submit("job-1", {MakePage("am:1", "payments-data")}).ok());
  Drain();
  std::vector<int64_t> delays;
  for (int attempt = 1; attempt <= 4; ++attempt) {
    ASSERT_EQ(pd_.SentTo(kDataPd).size(), static_cast<size_t>(attempt));
    const OutboxEntry* e = nullptr;
    for (const auto& [id, entry] : outbox_.entries()) {
      if (entry.target.kind == "pagerduty") e = &entry;
    }
    ASSERT_NE(e, nullptr);
    ASSERT_EQ(e->state, EntryState::kPending);
    int64_t delay = e->next_attempt_ns - clock_.NowNs();
    delays.push_back(delay);
    // Not before its time...
    clock_.Advance(std::chrono::nanoseconds(delay - 1));
    Drain();
    EXPECT_EQ(pd_.SentTo(kDataPd).size(), static_cast<size_t>(attempt));
    // ...and right when it is due.
    clock_.Advance(std::chrono::nanoseconds(1));
    Drain();
  }
  EXPECT_EQ(pd_.SentTo(kDataPd).size(), 5u);
  // Equal jitter: attempt n waits within [d/2, d] for d = 1s * 2^(n-1).
  for (size_t i = 0; i < delays.size(); ++i) {
    int64_t d = int64_t{1'000'000'000} << i;
    EXPECT_GE(delays[i], d / 2) << i;
    EXPECT_LE(delays[i], d) << i;
  }
  EXPECT_EQ(Count(DeliveryRecord::Kind::kRetry), 4u);
  EXPECT_EQ(Count(DeliveryRecord::Kind::kSent), 2u);  // pagerduty at last, slack at once
  for (const DeliveryRecord& r : records_) {
    if (r.kind != DeliveryRecord::Kind::kSent || r.pager_kind != "pagerduty") continue;
    ASSERT_EQ(r.attempt_log.size(), 5u);
    EXPECT_EQ(r.attempt_log[0].http_status, 500);
    EXPECT_EQ(r.attempt_log[2].error, "timeout");
    EXPECT_EQ(r.attempt_log[4].error, "");
    EXPECT_LT(r.attempt_log[0].time_ns, r.attempt_log[4].time_ns);
  }
}

TEST_F(DeliveryTest, HonoursRetryAfterForTheWholeTarget) {
  pd_.scripts[kDataPd] = {TooMany(seconds(30))};
  ASSERT_TRUE(delivery_->Submit("job-1", {MakePage("am:1", "payments-data")}).ok());
  Drain();
  ASSERT_TRUE(delivery_->Submit("job-2", {MakePage("am:2", "payments-data")}).ok());
  Run(seconds(29) + milliseconds(900));
  // One attempt (the 429); the second page to the same integration waits too.
  EXPECT_EQ(pd_.SentTo(kDataPd).size(), 1u);
  Run(seconds(1));
  EXPECT_EQ(pd_.SentTo(kDataPd).size(), 3u);
  EXPECT_EQ(slack_.SentTo(kDataSlack).size(), 2u);
}

TEST_F(DeliveryTest, PermanentRefusalEverywhereFallsBackToTheFallbackTeam) {
  pd_.scripts[kDataPd] = {Status(400, true, "HTTP 400: invalid event")};
  slack_.scripts[kDataSlack] = {Status(404, true, "HTTP 404: no_service")};
  ASSERT_TRUE(delivery_->Submit("job-1", {MakePage("am:1", "payments-data")}).ok());
  Drain();
  Drain();
  ASSERT_EQ(pd_.SentTo(kSrePd).size(), 1u);
  Page fb = pd_.SentTo(kSrePd)[0];
  EXPECT_EQ(fb.team, "sre");
  EXPECT_EQ(fb.dedup_key, DedupKey("am:1", "sre"));
  EXPECT_EQ(fb.summary.rfind("[fallback for payments-data]", 0), 0u) << fb.summary;
  EXPECT_NE(fb.fallback_reason.find("invalid event"), std::string::npos) << fb.fallback_reason;
  EXPECT_EQ(Count(DeliveryRecord::Kind::kFailed), 2u);
  ASSERT_EQ(Count(DeliveryRecord::Kind::kFallback), 1u);
  // The failure that left the team unreached names where the page went instead, and the
  // fallback page's own record names whom it stands in for.
  size_t rerouted = 0;
  for (const DeliveryRecord& r : records_) {
    if (r.kind == DeliveryRecord::Kind::kFailed && r.rerouted_to == "sre") ++rerouted;
    if (r.kind == DeliveryRecord::Kind::kSent && r.team == "sre") {
      EXPECT_EQ(r.fallback_for, "payments-data");
      ASSERT_EQ(r.attempt_log.size(), 1u);
      EXPECT_EQ(r.attempt_log[0].http_status, 202);
    }
  }
  EXPECT_EQ(rerouted, 1u);
  for (const DeliveryRecord& r : records_) {
    if (r.kind == DeliveryRecord::Kind::kFallback) {
      EXPECT_EQ(r.fallback_team, "sre");
    }
  }
}

TEST_F(DeliveryTest, OneTargetAcceptingMeansTheTeamWasReached) {
  pd_.scripts[kDataPd] = {Status(400, true)};
  ASSERT_TRUE(delivery_->Submit("job-1", {MakePage("am:1", "payments-data")}).ok());
  Drain();
  EXPECT_EQ(slack_.SentTo(kDataSlack).size(), 1u);
  EXPECT_EQ(pd_.SentTo(kSrePd).size(), 0u);
  EXPECT_EQ(Count(DeliveryRecord::Kind::kFailed), 1u);
  EXPECT_EQ(Count(DeliveryRecord::Kind::kFallback), 0u);
}

TEST_F(DeliveryTest, StillFailingAtMaxAgeFallsBack) {
  pd_.scripts[kDataPd] = std::deque<SendOutcome>(1000, Status(503, false));
  slack_.scripts[kDataSlack] = std::deque<SendOutcome>(1000, Status(0, false, "timeout"));
  ASSERT_TRUE(delivery_->Submit("job-1", {MakePage("am:1", "payments-data")}).ok());
  Run(seconds(599), seconds(1));
  EXPECT_EQ(pd_.SentTo(kSrePd).size(), 0u);
  Run(seconds(2), seconds(1));
  EXPECT_EQ(pd_.SentTo(kSrePd).size(), 1u);
  EXPECT_EQ(Count(DeliveryRecord::Kind::kFallback), 1u);
  EXPECT_EQ(Count(DeliveryRecord::Kind::kExpired), 2u);
  EXPECT_EQ(Count(DeliveryRecord::Kind::kFailed), 0u);
  // Backoff capped at max_backoff (2 min): a handful of attempts in 10 minutes, not hundreds.
  EXPECT_LE(pd_.SentTo(kDataPd).size(), 20u);
  EXPECT_GE(pd_.SentTo(kDataPd).size(), 6u);
}

TEST_F(DeliveryTest, TeamWithoutTargetGoesStraightToItsFallbackOrTheDefaultTeam) {
  ASSERT_TRUE(delivery_->Submit("job-1", {MakePage("am:1", "nobody-home")}).ok());
  ASSERT_TRUE(delivery_->Submit("job-2", {MakePage("am:2", "")}).ok());
  Drain();
  ASSERT_EQ(pd_.SentTo(kSrePd).size(), 1u);
  EXPECT_EQ(pd_.SentTo(kSrePd)[0].alert_identity, "am:1");
  ASSERT_EQ(pd_.SentTo(kPlatformPd).size(), 1u);
  EXPECT_EQ(pd_.SentTo(kPlatformPd)[0].summary.rfind("[no owner found]", 0), 0u);
  EXPECT_EQ(Count(DeliveryRecord::Kind::kNoTarget), 2u);
}

TEST_F(DeliveryTest, AFallbackPastATeamWithoutTargetsSaysWhy) {
  // edge refuses for good -> its fallback nobody-home has no target -> nobody-home's fallback
  // sre is paged; that last hop's record and page carry nobody-home's reason.
  directory_->teams["edge"] = {{Target("pagerduty", "edge", "pd-edge-key-0005")}, "nobody-home"};
  Make();
  pd_.scripts["pd-edge-key-0005"] = {Status(401, true)};
  ASSERT_TRUE(delivery_->Submit("job-1", {MakePage("am:1", "edge")}).ok());
  Drain();
  ASSERT_EQ(pd_.SentTo(kSrePd).size(), 1u);
  std::vector<std::string> fallbacks;
  for (const DeliveryRecord& r : records_) {
    if (r.kind == DeliveryRecord::Kind::kFallback) fallbacks.push_back(r.fallback_team);
    if (r.kind == DeliveryRecord::Kind::kFallback && r.fallback_team == "sre") {
      EXPECT_EQ(r.detail, "team nobody-home has no pager target");
    }
  }
  EXPECT_EQ(fallbacks, (std::vector<std::string>{"nobody-home", "sre"}));
  EXPECT_EQ(pd_.SentTo(kSrePd)[0].fallback_reason, "team nobody-home has no pager target");
}

TEST_F(DeliveryTest, NobodyPagedIsARecordAMetricAndAnErrorLine) {
  directory_->default_team = "";
  Make();
  pd_.scripts["pd-pay-key-0002"] = {Status(401, true)};
  ASSERT_TRUE(delivery_->Submit("job-1", {MakePage("am:1", "payments")}).ok());
  Drain();
  ASSERT_EQ(Count(DeliveryRecord::Kind::kNobodyPaged), 1u);
  EXPECT_EQ(counts_["nobody_paged/"], 1);
  EXPECT_NE(log_text_.str().find("[error] nobody_paged alert=am:1"), std::string::npos)
      << log_text_.str();
  // And at submit time, when no team on the chain has a target.
  directory_->teams["nobody-home"].fallback = "";
  Make();
  Result<SubmitReport> r = delivery_->Submit("job-2", {MakePage("am:2", "nobody-home")});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->nobody_paged);
  EXPECT_EQ(Count(DeliveryRecord::Kind::kNobodyPaged), 2u);
}

TEST_F(DeliveryTest, ResolveReachesExactlyTheTriggeredTargetsAfterARegistryChange) {
  ASSERT_TRUE(delivery_->Submit("job-1", {MakePage("am:1", "payments-data")}).ok());
  Drain();
  // The team moves to new keys; the open incident lives under the old ones.
  auto changed = Directory();
  changed->teams["payments-data"].targets = {Target("pagerduty", "payments-data", "pd-new-key")};
  delivery_->SetDirectory(changed);
  Result<SubmitReport> r = delivery_->SubmitResolve("job-2", "am:1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->entries, 2u);
  Run(seconds(2));  // Slack's rate limit spaces the follow-up a second after the page
  ASSERT_EQ(pd_.SentTo(kDataPd).size(), 2u);
  EXPECT_EQ(pd_.SentTo(kDataPd)[1].action, Page::Action::kResolve);
  EXPECT_EQ(pd_.SentTo(kDataPd)[1].dedup_key, pd_.SentTo(kDataPd)[0].dedup_key);
  ASSERT_EQ(slack_.SentTo(kDataSlack).size(), 2u);
  EXPECT_EQ(slack_.SentTo(kDataSlack)[1].action, Page::Action::kResolve);
  EXPECT_TRUE(pd_.SentTo("pd-new-key").empty());
  // A second resolve finds nothing left to resolve.
  ASSERT_TRUE(delivery_->SubmitResolve("job-3", "am:1").ok());
  EXPECT_EQ(Count(DeliveryRecord::Kind::kNothingToResolve), 1u);
}

TEST_F(DeliveryTest, ResolveAfterARestartUsesTheStoredTargets) {
  ASSERT_TRUE(delivery_->Submit("job-1", {MakePage("am:1", "payments-data")}).ok());
  Drain();
  directory_ = std::make_shared<TargetDirectory>();  // the new process knows no targets at all
  Make();
  ASSERT_TRUE(delivery_->Recover().ok());
  ASSERT_TRUE(delivery_->SubmitResolve("job-2", "am:1").ok());
  Run(seconds(2));
  EXPECT_EQ(pd_.SentTo(kDataPd).size(), 2u);
  EXPECT_EQ(slack_.SentTo(kDataSlack).size(), 2u);
}

TEST_F(DeliveryTest, ResolveOfFallbackPagesGoesToTheFallbackTeam) {
  pd_.scripts[kDataPd] = {Status(400, true)};
  slack_.scripts[kDataSlack] = {Status(400, true)};
  ASSERT_TRUE(delivery_->Submit("job-1", {MakePage("am:1", "payments-data")}).ok());
  Drain();
  ASSERT_EQ(pd_.SentTo(kSrePd).size(), 1u);
  ASSERT_TRUE(delivery_->SubmitResolve("job-2", "am:1").ok());
  Drain();
  ASSERT_EQ(pd_.SentTo(kSrePd).size(), 2u);
  EXPECT_EQ(pd_.SentTo(kSrePd)[1].action, Page::Action::kResolve);
  // Refused triggers reached nobody: no resolve to them.
  EXPECT_EQ(pd_.SentTo(kDataPd).size(), 1u);
  EXPECT_EQ(slack_.SentTo(kDataSlack).size(), 1u);
}

TEST_F(DeliveryTest, ResolveBeforeTheFirstAttemptCancelsTheTrigger) {
  ASSERT_TRUE(delivery_->Submit("job-1", {MakePage("am:1", "payments-data")}).ok());
  ASSERT_TRUE(delivery_->SubmitResolve("job-2", "am:1").ok());
  Drain();
  EXPECT_TRUE(pd_.sends.empty());
  EXPECT_TRUE(slack_.sends.empty());
  EXPECT_EQ(Count(DeliveryRecord::Kind::kCancelled), 2u);
  EXPECT_EQ(delivery_->pending(), 0u);
}

TEST_F(DeliveryTest, ResolveWaitsForItsTriggerInFlight) {
  pd_.defer = true;
  ASSERT_TRUE(delivery_->Submit("job-1", {MakePage("am:1", "payments-data")}).ok());
  delivery_->Poll();
  ASSERT_EQ(pd_.sends.size(), 1u);
  ASSERT_TRUE(delivery_->SubmitResolve("job-2", "am:1").ok());
  delivery_->Poll();
  delivery_->Poll();
  EXPECT_EQ(pd_.sends.size(), 1u);  // the resolve must not overtake the trigger
  pd_.Release();
  ASSERT_TRUE(delivery_->WaitForWork(milliseconds(1000)));
  delivery_->Poll();  // applies the trigger's outcome, starts the resolve
  pd_.Release();
  ASSERT_TRUE(delivery_->WaitForWork(milliseconds(1000)));
  delivery_->Poll();
  ASSERT_EQ(pd_.sends.size(), 2u);
  EXPECT_EQ(pd_.sends[0].first.action, Page::Action::kTrigger);
  EXPECT_EQ(pd_.sends[1].first.action, Page::Action::kResolve);
  pd_.defer = false;
  Run(seconds(2));  // Slack's follow-up, a second later (rate limit)
  EXPECT_EQ(slack_.sends.size(), 2u);
  EXPECT_EQ(delivery_->pending(), 0u);
}

TEST_F(DeliveryTest, RateLimitQueuesRatherThanDrops) {
  for (int i = 0; i < 5; ++i) {
    std::string id = "am:" + std::to_string(i);
    ASSERT_TRUE(delivery_->Submit("job-" + id, {MakePage(id, "payments-data")}).ok());
  }
  Drain();
  EXPECT_EQ(slack_.SentTo(kDataSlack).size(), 1u);  // Slack: one a second
  EXPECT_EQ(pd_.SentTo(kDataPd).size(), 5u);        // PagerDuty: burst of 10
  Run(milliseconds(2500));
  EXPECT_EQ(slack_.SentTo(kDataSlack).size(), 3u);
  Run(seconds(3));
  EXPECT_EQ(slack_.SentTo(kDataSlack).size(), 5u);
  EXPECT_EQ(delivery_->pending(), 0u);
}

TEST_F(DeliveryTest, PendingPagesAreSentAfterARestart) {
  ASSERT_TRUE(delivery_->Submit("job-1", {MakePage("am:1", "payments-data")}).ok());
  // The process dies before any Poll: a new Delivery over the same store finds the pages.
  Make();
  ASSERT_TRUE(delivery_->Recover().ok());
  EXPECT_EQ(delivery_->pending(), 2u);
  Drain();
  EXPECT_EQ(pd_.SentTo(kDataPd).size(), 1u);
  EXPECT_EQ(slack_.SentTo(kDataSlack).size(), 1u);
}

TEST_F(DeliveryTest, APagerDownForAWhileReceivesEverythingWhenItRecovers) {
  pd_.scripts[kDataPd] = std::deque<SendOutcome>(40, Status(0, false, "connection refused"));
  for (int i = 0; i < 20; ++i) {
    std::string id = "am:" + std::to_string(i);
    ASSERT_TRUE(delivery_->Submit("job-" + id, {MakePage(id, "payments-data")}).ok());
  }
  Run(seconds(300), seconds(1));
  std::set<std::string> delivered;
  for (const auto& [p, t] : pd_.sends) delivered.insert(p.dedup_key);
  EXPECT_EQ(delivered.size(), 20u);
  size_t sent = 0;
  for (const auto& [id, e] : outbox_.entries()) sent += e.state == EntryState::kSent;
  EXPECT_EQ(sent, 40u);
  EXPECT_EQ(Count(DeliveryRecord::Kind::kFallback), 0u);
}

TEST_F(DeliveryTest, AStoreThatCannotWriteFailsTheSubmission) {
  outbox_.FailNextCommit();
  Result<SubmitReport> r = delivery_->Submit("job-1", {MakePage("am:1", "payments-data")});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  Drain();
  EXPECT_TRUE(pd_.sends.empty());
  // The daemon retries the job: the same submission key goes through then.
  ASSERT_TRUE(delivery_->Submit("job-1", {MakePage("am:1", "payments-data")}).ok());
  Drain();
  EXPECT_EQ(pd_.sends.size(), 1u);
}

TEST_F(DeliveryTest, AKindWithoutAPagerFallsBack) {
  directory_->teams["payments"].targets = {Target("opsgenie", "payments", "genie-key")};
  directory_->teams["payments"].fallback = "sre";
  Make();
  ASSERT_TRUE(delivery_->Submit("job-1", {MakePage("am:1", "payments")}).ok());
  Drain();
  EXPECT_EQ(pd_.SentTo(kSrePd).size(), 1u);
}

TEST_F(DeliveryTest, SecretsNeverReachRecordsOrLogs) {
  // A careless pager echoes its credential; delivery must still keep it out.
  pd_.scripts[kDataPd] = {Status(400, true, std::string("bad routing key ") + kDataPd)};
  slack_.scripts[kDataSlack] = {Status(0, false, std::string("connect ") + kDataSlack + " reset"),
                                Status(410, true, std::string("gone: ") + kDataSlack)};
  ASSERT_TRUE(delivery_->Submit("job-1", {MakePage("am:1", "payments-data")}).ok());
  Run(seconds(5));
  ASSERT_TRUE(delivery_->SubmitResolve("job-2", "am:1").ok());
  Run(seconds(1));
  ASSERT_GT(records_.size(), 3u);
  const std::vector<std::string> secrets = {kDataPd, kDataSlack, "data-secret", kSrePd};
  for (const DeliveryRecord& r : records_) {
    for (const std::string& field : {r.target, r.detail, r.request_id, r.team, r.dedup_key}) {
      for (const std::string& s : secrets) {
        EXPECT_EQ(field.find(s), std::string::npos)
            << DeliveryRecordKindName(r.kind) << ": " << field;
      }
    }
  }
  const std::string log = log_text_.str();
  ASSERT_NE(log.find("page_failed"), std::string::npos);
  ASSERT_NE(log.find("page_retry"), std::string::npos);
  for (const std::string& s : secrets) EXPECT_EQ(log.find(s), std::string::npos) << log;
  EXPECT_NE(log.find("[redacted]"), std::string::npos);
  // The outbox itself keeps the fallback's details redacted too.
  for (const auto& [id, e] : outbox_.entries()) {
    for (const std::string& s : secrets) {
      EXPECT_EQ(e.last_error.find(s), std::string::npos) << e.last_error;
      EXPECT_EQ(e.page.fallback_reason.find(s), std::string::npos) << e.page.fallback_reason;
      EXPECT_EQ(e.page.details_json.find(s), std::string::npos);
    }
  }
}

TEST(OutboxEntryJson, RoundTripsEveryField) {
  OutboxEntry e;
  e.id = 7;
  e.submission = "job-1";
  e.group = "job-1#1:sre";
  e.hop = 1;
  e.tried_teams = {"payments-data", "sre"};
  e.page = BuildPages(testing::SampleDecision(), testing::SampleAlert(), testing::SampleOptions(),
                      "d-1", testing::kSampleNowNs)[0];
  e.target = Target("pagerduty", "sre", kSrePd);
  e.target.signing_key = Secret("k", "file /k");
  e.target_key = e.target.Key();
  e.state = EntryState::kFailed;
  e.attempts = 3;
  e.permanent = true;
  e.resolved = true;
  e.created_ns = 1;
  e.deadline_ns = 2;
  e.next_attempt_ns = 3;
  e.finished_ns = 4;
  e.last_http_status = 400;
  e.last_error = "HTTP 400";
  e.request_id = "r";
  e.history = {{10, 500, "HTTP 500", ""}, {20, 400, "HTTP 400", "r"}};
  Result<OutboxEntry> back = EntryFromJson(EntryToJson(e));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(EntryToJson(*back), EntryToJson(e));
  ASSERT_EQ(back->history.size(), 2u);
  EXPECT_EQ(back->history[1].request_id, "r");
  EXPECT_EQ(back->target.credential.Reveal(), kSrePd);
  EXPECT_EQ(back->target.credential.origin(), "env TP_KEY_sre");
  EXPECT_FALSE(EntryFromJson(R"({"state":"lost"})").ok());
  EXPECT_FALSE(EntryFromJson(R"({"state":"pending"})").ok());  // no page
}

TEST(TargetDirectory, ServiceTargetsOverrideAndChainsEndAtTheDefaultTeam) {
  auto d = Directory();
  d->services["orders-db"] = {Target("slack", "payments-data", "https://svc")};
  EXPECT_EQ(d->TargetsFor("payments-data", "orders-db").size(), 1u);
  EXPECT_EQ(d->TargetsFor("payments-data", "other").size(), 2u);
  EXPECT_TRUE(d->TargetsFor("unknown", "").empty());
  EXPECT_EQ(d->NextTeam({"payments-data"}), "sre");
  EXPECT_EQ(d->NextTeam({"payments-data", "sre"}), "platform");
  EXPECT_EQ(d->NextTeam({"payments-data", "sre", "platform"}), "");
  EXPECT_EQ(d->NextTeam({""}), "platform");
}

}  // namespace
}  // namespace tracepager::integrations::delivery
