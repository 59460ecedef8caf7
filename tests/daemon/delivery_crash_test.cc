// kill -9 at each point of a page's life between persisting and being marked sent, with the
// real SQLite outbox and the real PagerDuty pager over HTTPS: after a restart the fake
// PagerDuty has the page exactly once by dedup key.
//
// The parent runs the fake (it must outlive the crashes); the child is this test binary run
// again with TP_CRASH_CHILD set, which submits and delivers a page and SIGKILLs itself at the
// named point (Delivery's test seam), or, with "none", recovers and delivers what is pending.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>

#include "daemon/sqlite_outbox.h"
#include "integrations/delivery/delivery.h"
#include "integrations/http/io_thread.h"
#include "integrations/page_builder.h"
#include "integrations/pager_factory.h"
#include "tests/integrations/fake_pagers.h"
#include "tests/integrations/sample_decision.h"
#include "tests/support/process.h"

namespace tracepager::daemon {
namespace {

using integrations::delivery::Delivery;
using integrations::delivery::DeliveryHooks;
using integrations::delivery::EntryState;
using integrations::delivery::SystemClock;
using integrations::delivery::TargetDirectory;

constexpr char kRoutingKey[] = "0123456789abcdef0123456789abcdef";

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

// The child: one process lifetime of the daemon's delivery. This binary runs it instead of the
// tests when TP_CRASH_CHILD is set (see main below); the exit code says how it went: 0 when
// everything pending was delivered, 2 when it could not start, 3 when pages were left.
int RunChild(const std::string& mode) {
  auto fail = [](const std::string& what) {
    std::fprintf(stderr, "crash child: %s\n", what.c_str());
    return 2;
  };
  Result<std::unique_ptr<SqliteOutbox>> outbox = SqliteOutbox::Open(Env("TP_OUTBOX"));
  if (!outbox.ok()) return fail(outbox.error().message);
  integrations::http::IoThread io;
  integrations::PagerConfigs configs;
  configs.tls.ca_file = Env("TP_CA");
  configs.pagerduty.emplace();
  configs.pagerduty->events_url = Env("TP_PD_URL");
  Result<integrations::PagerSet> pagers = integrations::MakeHttpPagers(io.context(), configs);
  if (!pagers.ok()) return fail(pagers.error().message);
  auto directory = std::make_shared<TargetDirectory>();
  integrations::PagerTarget target;
  target.kind = "pagerduty";
  target.team = "payments-data";
  target.credential = integrations::Secret(kRoutingKey, "env PD_KEY");
  directory->teams["payments-data"].targets = {target};
  DeliveryHooks hooks;
  hooks.test_point = [mode](std::string_view point) {
    if (point == mode) ::kill(::getpid(), SIGKILL);
  };
  SystemClock clock;
  Delivery delivery(outbox->get(), pagers->ByKind(), directory, {}, &clock, hooks);
  if (Status st = delivery.Recover(); !st.ok()) return fail(st.error().message);
  if (Env("TP_SUBMIT") == "1") {
    integrations::AlertInfo alert = testing::SampleAlert();
    std::vector<integrations::Page> pages = integrations::BuildPages(
        testing::SampleDecision(), alert, testing::SampleOptions(), "d-1", 0);
    pages.resize(1);  // payments-data
    if (auto r = delivery.Submit("job-1", pages); !r.ok()) return fail(r.error().message);
  }
  for (int i = 0; i < 100 && delivery.pending() > 0; ++i) {
    delivery.Poll();
    if (delivery.in_flight() > 0) delivery.WaitForWork(std::chrono::seconds(10));
  }
  if (delivery.pending() != 0) {
    std::fprintf(stderr, "crash child: %zu pages left undelivered\n",
                 static_cast<size_t>(delivery.pending()));
    return 3;
  }
  return 0;
}

class DeliveryCrash : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    pki_ = new testing::TestPki(testing::MakeTestPki(dir_->path()));
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete dir_;
  }

  testing::ProcessResult Child(const std::string& mode, bool submit) {
    char self[PATH_MAX] = {};
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    EXPECT_GT(n, 0);
    return testing::RunProcess({self}, "",
                               {{"TP_CRASH_CHILD", mode},
                                {"TP_SUBMIT", submit ? "1" : "0"},
                                {"TP_OUTBOX", state_.path() + "/outbox.db"},
                                {"TP_CA", pki_->ca_cert},
                                {"TP_PD_URL", pd_.Url() + "/v2/enqueue"}},
                               std::chrono::seconds(60));
  }

  static testing::TempDir* dir_;
  static testing::TestPki* pki_;
  testing::TempDir state_;
  testing::FakePagerDuty pd_{pki_->localhost};
};

testing::TempDir* DeliveryCrash::dir_ = nullptr;
testing::TestPki* DeliveryCrash::pki_ = nullptr;

TEST_P(DeliveryCrash, KilledThenRestartedPagesExactlyOnceByDedupKey) {
  testing::ProcessResult crashed = Child(GetParam(), /*submit=*/true);
  ASSERT_EQ(crashed.exit_code, 128 + SIGKILL) << crashed.out << crashed.err;
  const size_t before = pd_.requests();
  // Killed before the request left: nothing arrived. Killed after PagerDuty accepted: it has
  // the page, but the outbox does not know.
  EXPECT_EQ(before, GetParam() == "accepted" ? 1u : 0u);

  testing::ProcessResult restarted = Child("none", /*submit=*/false);
  ASSERT_EQ(restarted.exit_code, 0) << restarted.out << restarted.err;
  const std::string dedup =
      integrations::DedupKey(testing::SampleAlert().identity, "payments-data");
  auto accepted = pd_.Accepted(kRoutingKey);
  ASSERT_FALSE(accepted.empty());
  for (const auto& [action, key] : accepted) {
    EXPECT_EQ(action, "trigger");
    EXPECT_EQ(key, dedup);
  }
  EXPECT_EQ(pd_.Incidents(), 1u);  // once by dedup key, however often it was sent
  // Sent twice only when the crash hid an acceptance; never more.
  EXPECT_EQ(pd_.requests(), GetParam() == "accepted" ? 2u : 1u);

  // And the outbox agrees: one entry, sent.
  Result<std::unique_ptr<SqliteOutbox>> outbox = SqliteOutbox::Open(state_.path() + "/outbox.db");
  ASSERT_TRUE(outbox.ok());
  EXPECT_TRUE((*outbox)->LoadPending()->empty());
  Result<std::vector<integrations::delivery::OutboxEntry>> group =
      (*outbox)->LoadGroup("job-1#0:payments-data");
  ASSERT_TRUE(group.ok());
  ASSERT_EQ(group->size(), 1u);
  EXPECT_EQ((*group)[0].state, EntryState::kSent);
}

INSTANTIATE_TEST_SUITE_P(Points, DeliveryCrash,
                         ::testing::Values("persisted", "attempt_persisted", "accepted"),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace tracepager::daemon

// The tests, or the crash child when the parent test started this binary with TP_CRASH_CHILD.
int main(int argc, char** argv) {
  const std::string mode = tracepager::daemon::Env("TP_CRASH_CHILD");
  if (!mode.empty()) return tracepager::daemon::RunChild(mode);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
