// JobProcessor end to end in one process: webhook bodies -> store -> processor -> delivery ->
// log pager file, with a fake trace source that counts what it is asked.
#include "daemon/job_processor.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sqlite3.h>

#include <atomic>
#include <fstream>
#include <sstream>

#include "daemon/alert.h"
#include "daemon/delivery_setup.h"
#include "integrations/delivery/memory_outbox.h"
#include "integrations/log/log_pager.h"
#include "tests/support/process.h"
#include "tests/support/trace_builder.h"

namespace tracepager::daemon {
namespace {

using integrations::delivery::Delivery;
using integrations::delivery::ManualClock;
using integrations::delivery::MemoryOutbox;
using testing::TraceBuilder;

constexpr int64_t kSecond = 1'000'000'000;
const char* kTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";

constexpr const char* kRegistry = R"(default_team: platform
teams:
  platform: {}
  web: {}
  checkout: {}
  payments: {fallback: platform}
services:
  frontend: {team: web}
  checkout: {team: checkout}
  payment: {team: payments}
)";

// frontend -> checkout -> payment, and payment's call failed: checkout's error alert belongs
// to payments.
routing::Trace CheckoutTrace(const std::string& id = kTraceId) {
  TraceBuilder b(id);
  auto root = b.Root("frontend", "GET /cart/checkout").Server().At(0, 400).Fail("HTTP 500");
  auto call = b.Child(root, "frontend", "POST /checkout").Client().At(5, 390).Fail("HTTP 500");
  auto co = b.Child(call, "checkout", "POST /checkout").Server().At(10, 380).Fail("HTTP 500");
  auto pay = b.Child(co, "checkout", "POST /charge").Client().At(20, 300).Fail("HTTP 503");
  b.Child(pay, "payment", "POST /charge").Server().At(25, 290).Fail("HTTP 503");
  return b.Build();
}

class FakeSource : public integrations::TraceSource {
 public:
  std::string_view kind() const override { return "fake"; }
  void FetchTrace(const std::string& trace_id, Clock::time_point, TracesCallback done) override {
    ++fetches;
    std::lock_guard<std::mutex> lk(mu);
    auto it = traces.find(trace_id);
    if (it == traces.end()) {
      done(Error::NotFound("trace " + trace_id + " not found"));
      return;
    }
    done(std::vector<routing::Trace>{it->second});
  }
  void SearchTraces(const integrations::TraceQuery& q, Clock::time_point,
                    SearchCallback done) override {
    ++searches;
    last_query = q;
    std::vector<integrations::SearchHit> hits;
    std::lock_guard<std::mutex> lk(mu);
    for (const auto& [id, t] : searchable) {
      integrations::SearchHit h;
      h.trace_id = id;
      h.trace = t;
      hits.push_back(std::move(h));
    }
    done(std::move(hits));
  }
  void Add(const routing::Trace& t) {
    std::lock_guard<std::mutex> lk(mu);
    traces[t.trace_id] = t;
  }
  std::mutex mu;
  std::map<std::string, routing::Trace> traces;
  std::map<std::string, routing::Trace> searchable;
  std::atomic<int> fetches{0}, searches{0};
  integrations::TraceQuery last_query;
};

struct PageLine {
  std::string action, team, dedup_key, component, identity;
};

class JobProcessorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<routing::Registry> reg = routing::Registry::FromYaml(kRegistry, "registry.yaml");
    ASSERT_TRUE(reg.ok()) << reg.error().message;
    registry_ = std::make_shared<const routing::Registry>(std::move(*reg));
    config_ = std::make_shared<Config>();
    config_->alerts = DefaultAlertRules();
    config_->pager.type = "log";
    source_ = std::make_shared<FakeSource>();

    StoreOptions so;
    so.dir = dir_.path() + "/state";
    Result<std::unique_ptr<Store>> s = Store::Open(so);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(*s);
    pages_path_ = dir_.path() + "/pages.jsonl";
    Result<std::unique_ptr<integrations::LogPager>> pager =
        integrations::LogPager::Open(pages_path_, nullptr, [this] { return clock_.NowNs(); });
    ASSERT_TRUE(pager.ok());
    pager_ = std::move(*pager);
    auto directory = std::make_shared<const integrations::delivery::TargetDirectory>(
        BuildTargetDirectory(config_->pager, *registry_, nullptr));
    delivery_ = std::make_unique<Delivery>(
        &outbox_, std::map<std::string, integrations::Pager*, std::less<>>{{"log", pager_.get()}},
        directory, integrations::delivery::DeliveryOptions{}, &clock_);
    ASSERT_TRUE(delivery_->Recover().ok());
    ProcessorHooks hooks;
    hooks.on_decision = [this](const DecisionEvent& e) {
      std::lock_guard<std::mutex> lk(events_mu_);
      kinds_.push_back(e.kind);
    };
    hooks.record = [this](const DecisionEvent& e) -> Status {
      std::lock_guard<std::mutex> lk(events_mu_);
      records_.push_back(e.decision_id + " " + e.kind + " " + e.alert.identity);
      recorded_alerts_.push_back(e.alert);
      return record_status_;
    };
    processor_ = std::make_unique<JobProcessor>(
        store_.get(), delivery_.get(), [this] { return clock_.NowNs(); }, hooks);
  }

  void TearDown() override {
    if (!expect_errors_) {
      EXPECT_TRUE(errors_.empty()) << errors_.front();
    }
  }

  RoutingSnapshot Snapshot() const { return {config_, registry_, source_, {}}; }

  void Post(const std::string& body) {
    Result<std::vector<RoutingJob>> jobs =
        JobsFromWebhook(body, AlertFormat::kAuto, {}, config_->alerts, clock_.NowNs());
    ASSERT_TRUE(jobs.ok()) << jobs.error().message;
    ASSERT_TRUE(store_->Enqueue(std::move(*jobs), clock_.NowNs(), 0).ok());
  }

  // Claims and processes until nothing is ready, then lets delivery send.
  void Drain() {
    for (int guard = 0; guard < 1000; ++guard) {
      Result<std::optional<Claim>> c = store_->ClaimNext(clock_.NowNs(), 1000);
      ASSERT_TRUE(c.ok());
      if (!c->has_value()) break;
      Result<ProcessOutcome> r = processor_->Process(**c, Snapshot());
      if (!r.ok()) errors_.push_back(r.error().message);
    }
    for (int i = 0; i < 5; ++i) delivery_->Poll();
  }

  std::vector<PageLine> Pages() const {
    std::vector<PageLine> out;
    std::ifstream in(pages_path_);
    std::string line;
    while (std::getline(in, line)) {
      rapidjson::Document d;
      d.Parse(line.data(), line.size());
      EXPECT_FALSE(d.HasParseError()) << line;
      if (d.HasParseError()) continue;
      PageLine p;
      p.action = d["action"].GetString();
      p.team = d["team"].GetString();
      p.dedup_key = d["dedup_key"].GetString();
      p.component = d["page"]["component"].GetString();
      p.identity = d["page"]["alert_identity"].GetString();
      out.push_back(p);
    }
    return out;
  }

  std::string GenericAlert(const std::string& id, const std::string& service,
                           const std::string& status = "firing",
                           const std::string& trace = kTraceId) {
    return R"({"id":")" + id + R"(","service":")" + service + R"(","status":")" + status +
           R"(","trace_ids":[")" + trace + R"("]})";
  }

  testing::TempDir dir_;
  ManualClock clock_{1'795'728'000 * kSecond};
  std::shared_ptr<const routing::Registry> registry_;
  std::shared_ptr<Config> config_;
  std::shared_ptr<FakeSource> source_;
  std::unique_ptr<Store> store_;
  std::string pages_path_;
  MemoryOutbox outbox_;
  std::unique_ptr<integrations::LogPager> pager_;
  std::unique_ptr<Delivery> delivery_;
  std::unique_ptr<JobProcessor> processor_;
  std::mutex events_mu_;
  std::vector<std::string> kinds_;
  std::vector<std::string> records_;
  std::vector<RoutingJob> recorded_alerts_;  // each record's alert
  std::vector<std::string> errors_;          // Process failures (the jobs were released)
  bool expect_errors_ = false;
  Status record_status_ = OkStatus();
};

TEST_F(JobProcessorTest, CapturedAlertmanagerWebhookPagesTheCulpritsOwner) {
  source_->Add(CheckoutTrace());
  Post(testing::ReadFile(testing::FixturePath("alertmanager-captured/firing.json")));
  Drain();
  std::vector<PageLine> pages = Pages();
  // CheckoutErrorRateHigh: checkout's errors come from payment. LatencyP99High on frontend
  // routes on the same trace (latency walk).
  ASSERT_GE(pages.size(), 2u);
  EXPECT_EQ(pages[0].action, "trigger");
  EXPECT_EQ(pages[0].team, "payments");
  EXPECT_EQ(pages[0].component, "payment");
  EXPECT_EQ(pages[0].identity, "am:891fd0d54ed75b69");
  EXPECT_EQ(pages[0].dedup_key, integrations::DedupKey("am:891fd0d54ed75b69", "payments"));
  EXPECT_EQ(pages.back().identity, "am:296e4179fd3a5b54");
  EXPECT_EQ(source_->fetches.load(), 2);
  EXPECT_EQ(source_->searches.load(), 0);
  EXPECT_EQ(store_->stats().queued, 0u);
  EXPECT_EQ(kinds_, (std::vector<std::string>{"routed", "routed"}));

  // The resolved webhook resolves both pages.
  Post(testing::ReadFile(testing::FixturePath("alertmanager-captured/resolved.json")));
  Drain();
  pages = Pages();
  size_t resolves = 0;
  for (const PageLine& p : pages) resolves += p.action == "resolve";
  EXPECT_EQ(resolves, 2u);
}

TEST_F(JobProcessorTest, StormSharesOneFetchOneDecisionAndOnePage) {
  source_->Add(CheckoutTrace());
  std::string body = "[";
  for (int i = 0; i < 300; ++i) {
    if (i > 0) body += ",";
    body += GenericAlert("a" + std::to_string(i), "checkout");
  }
  body += "]";
  Post(body);
  Drain();
  EXPECT_EQ(source_->fetches.load(), 1);
  std::vector<PageLine> pages = Pages();
  ASSERT_EQ(pages.size(), 1u);
  EXPECT_EQ(pages[0].team, "payments");
  EXPECT_EQ(kinds_, std::vector<std::string>{"routed"});

  // More alerts of the storm a minute later join the open page: no fetch, no page.
  clock_.Advance(std::chrono::seconds(60));
  Post(GenericAlert("late-1", "checkout") + "");
  Post(GenericAlert("late-2", "checkout"));
  Drain();
  EXPECT_EQ(source_->fetches.load(), 1);
  EXPECT_EQ(Pages().size(), 1u);
  EXPECT_EQ(kinds_.back(), "storm");

  // The page resolves only when every alert on it resolved.
  std::string resolve_all_but_one = "[";
  for (int i = 0; i < 300; ++i) {
    if (i > 0) resolve_all_but_one += ",";
    resolve_all_but_one += GenericAlert("a" + std::to_string(i), "checkout", "resolved");
  }
  resolve_all_but_one += "," + GenericAlert("late-1", "checkout", "resolved") + "]";
  Post(resolve_all_but_one);
  Drain();
  EXPECT_EQ(Pages().size(), 1u);
  Post(GenericAlert("late-2", "checkout", "resolved"));
  Drain();
  pages = Pages();
  ASSERT_EQ(pages.size(), 2u);
  EXPECT_EQ(pages[1].action, "resolve");
  EXPECT_EQ(pages[1].dedup_key, pages[0].dedup_key);
}

TEST_F(JobProcessorTest, StormWindowEndsAndANewIncidentPagesAgain) {
  source_->Add(CheckoutTrace());
  Post(GenericAlert("a1", "checkout"));
  Drain();
  clock_.Advance(std::chrono::minutes(6));  // past the 5m storm window
  Post(GenericAlert("a2", "checkout"));
  Drain();
  EXPECT_EQ(source_->fetches.load(), 2);
  EXPECT_EQ(Pages().size(), 2u);
}

// A claim read back from the queue carries the details of its first job only: the audit record
// of a new incident whose first alert is a repeat still has the new alert's details.
TEST_F(JobProcessorTest, ANewIncidentsRecordHasItsAlertsDetails) {
  source_->Add(CheckoutTrace());
  Post(GenericAlert("a1", "checkout"));
  Drain();
  clock_.Advance(std::chrono::minutes(6));  // past the 5m storm window; a1's page is open
  Post(GenericAlert("a1", "checkout"));
  Post(R"({"id":"a2","service":"checkout","summary":"checkout is failing","severity":"page",)"
       R"("labels":{"env":"prod"},"trace_ids":[")" +
       std::string(kTraceId) + R"("]})");
  Drain();
  EXPECT_EQ(kinds_, (std::vector<std::string>{"routed", "routed"}));
  ASSERT_EQ(recorded_alerts_.size(), 2u);
  const RoutingJob& alert = recorded_alerts_[1];
  EXPECT_EQ(alert.identity, "generic:a2");
  EXPECT_EQ(alert.summary, "checkout is failing");
  EXPECT_EQ(alert.severity, "page");
  EXPECT_EQ(alert.labels.at("env"), "prod");
}

// A failed read of an alert's details puts the run back for a retry: nothing stays claimed.
TEST_F(JobProcessorTest, AnAlertWhoseDetailsCannotBeReadIsRetried) {
  source_->Add(CheckoutTrace());
  Post(GenericAlert("a1", "checkout"));
  Drain();
  clock_.Advance(std::chrono::minutes(6));  // past the storm window; a1's page is open
  Post(GenericAlert("a1", "checkout"));     // a repeat, first in the next claim
  Post(GenericAlert("a2", "checkout"));     // new: its details are read back for the record
  Result<std::optional<Claim>> c = store_->ClaimNext(clock_.NowNs(), 1000);
  ASSERT_TRUE(c.ok() && c->has_value());
  ASSERT_EQ((*c)->jobs.size(), 2u);
  ASSERT_FALSE((*c)->jobs[1].detailed);
  {
    // a2's stored payload is gone (as a damaged database could make it).
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(store_->path().c_str(), &db), SQLITE_OK);
    std::string sql = "DELETE FROM job_payloads WHERE job_id=" + std::to_string((*c)->jobs[1].id);
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_changes(db), 1);
    sqlite3_close(db);
  }
  Result<ProcessOutcome> r = processor_->Process(**c, Snapshot());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "routing: store: job " + std::to_string((*c)->jobs[1].id) + " has no stored payload");
  EXPECT_EQ(store_->stats().queued, 2u);
  EXPECT_EQ(store_->stats().claimed, 0u) << "released for a retry, not left claimed";
  EXPECT_EQ(kinds_, std::vector<std::string>{"routed"});
}

TEST_F(JobProcessorTest, RepeatOfAPagedAlertPagesNobody) {
  source_->Add(CheckoutTrace());
  Post(GenericAlert("a1", "checkout"));
  Drain();
  clock_.Advance(std::chrono::hours(4));  // Alertmanager's repeat_interval
  Post(GenericAlert("a1", "checkout"));
  Drain();
  EXPECT_EQ(Pages().size(), 1u);
  EXPECT_EQ(kinds_, (std::vector<std::string>{"routed", "repeat"}));
  EXPECT_EQ(source_->fetches.load(), 1);
}

TEST_F(JobProcessorTest, LateTraceIsWaitedForThenRoutedOn) {
  config_->workers.retry_delay = std::chrono::seconds(10);
  config_->workers.max_attempts = 3;
  Post(GenericAlert("a1", "checkout"));
  Drain();
  EXPECT_TRUE(Pages().empty());
  EXPECT_EQ(store_->stats().queued, 1u);  // released for later
  clock_.Advance(std::chrono::seconds(10));
  source_->Add(CheckoutTrace());  // the trace arrives
  Drain();
  std::vector<PageLine> pages = Pages();
  ASSERT_EQ(pages.size(), 1u);
  EXPECT_EQ(pages[0].team, "payments");
}

TEST_F(JobProcessorTest, NoTraceAfterMaxAttemptsFallsBackToTheAlertingServicesOwner) {
  config_->workers.retry_delay = std::chrono::seconds(10);
  config_->workers.max_attempts = 2;
  Post(GenericAlert("a1", "checkout"));
  Drain();
  clock_.Advance(std::chrono::seconds(10));
  Drain();
  std::vector<PageLine> pages = Pages();
  ASSERT_EQ(pages.size(), 1u);
  EXPECT_EQ(pages[0].team, "checkout");
  EXPECT_EQ(kinds_, std::vector<std::string>{"fallback"});
  EXPECT_EQ(source_->searches.load(), 2);  // no carried trace came back: searched each time
}

TEST_F(JobProcessorTest, AlertWithoutTraceIdsSearchesTheWindow) {
  routing::Trace t = CheckoutTrace("00000000000000000000000000000abc");
  source_->searchable[t.trace_id] = t;
  Post(R"({"service":"checkout","symptom":"latency","starts_at":"2026-11-26T21:00:00Z"})");
  Drain();
  EXPECT_EQ(source_->searches.load(), 1);
  EXPECT_EQ(source_->last_query.service, "checkout");
  EXPECT_EQ(source_->last_query.order, integrations::TraceQuery::Order::kSlowestFirst);
  EXPECT_EQ(source_->last_query.start_ns, *ParseAlertTime("2026-11-26T20:45:00Z"));
  EXPECT_EQ(source_->last_query.end_ns, clock_.NowNs());
  EXPECT_EQ(Pages().size(), 1u);
}

TEST_F(JobProcessorTest, DecisionsAreRecordedBeforeTheyCompleteAndRetriedWhenRecordingFails) {
  source_->Add(CheckoutTrace());
  record_status_ = Error::Unavailable("audit disk full");
  expect_errors_ = true;
  Post(GenericAlert("a1", "checkout"));
  Drain();
  // Pages went to delivery (persisted), but the decision could not be recorded: the job waits.
  EXPECT_EQ(errors_, std::vector<std::string>{"audit disk full"});
  EXPECT_EQ(store_->stats().queued, 1u);
  EXPECT_TRUE(kinds_.empty());
  record_status_ = OkStatus();
  clock_.Advance(config_->workers.retry_delay);
  Drain();
  EXPECT_EQ(store_->stats().queued, 0u);
  EXPECT_EQ(kinds_, std::vector<std::string>{"routed"});
  ASSERT_EQ(records_.size(), 2u);
  EXPECT_EQ(records_[1], "d-1 routed generic:a1");
  // The re-run was a duplicate submission: one page, not two.
  EXPECT_EQ(Pages().size(), 1u);
}

TEST_F(JobProcessorTest, ResolveBeforeAnyPageResolvesNothing) {
  Post(GenericAlert("never-paged", "checkout", "resolved"));
  Drain();
  EXPECT_TRUE(Pages().empty());
  EXPECT_EQ(kinds_, std::vector<std::string>{"resolve"});
  EXPECT_EQ(store_->stats().queued, 0u);
}

}  // namespace
}  // namespace tracepager::daemon
