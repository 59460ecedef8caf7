#include "integrations/log/log_pager.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <sstream>
#include <thread>

#include "integrations/page_builder.h"
#include "tests/support/process.h"

namespace tracepager::integrations {
namespace {

Page MakePage(const std::string& identity, const std::string& team) {
  Page p;
  p.alert_identity = identity;
  p.team = team;
  p.dedup_key = DedupKey(identity, team);
  p.summary = "payment: errors behind checkout";
  p.severity = "critical";
  p.component = "payment";
  p.symptom = "errors";
  p.path = {"checkout", "payment"};
  return p;
}

std::vector<std::string> Lines(const std::string& path) {
  std::istringstream in(testing::ReadFile(path));
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(LogPager, WritesOneJsonLinePerPageAndAcceptsIt) {
  testing::TempDir dir;
  std::string path = dir.path() + "/pages.jsonl";
  Result<std::unique_ptr<LogPager>> pager =
      LogPager::Open(path, nullptr, [] { return int64_t{1'795'728'000'000'000'000}; });
  ASSERT_TRUE(pager.ok()) << pager.error().message;
  EXPECT_EQ((*pager)->kind(), "log");
  PagerTarget target;
  target.kind = "log";
  target.team = "payments";
  std::optional<SendOutcome> outcome;
  (*pager)->Send(MakePage("am:1", "payments"), target, [&](SendOutcome o) { outcome = o; });
  ASSERT_TRUE(outcome.has_value());
  EXPECT_TRUE(outcome->accepted);
  Page resolve = ResolvePage(MakePage("am:1", "payments"));
  (*pager)->Send(resolve, target, [&](SendOutcome o) { outcome = o; });
  std::vector<std::string> lines = Lines(path);
  ASSERT_EQ(lines.size(), 2u);
  rapidjson::Document d;
  d.Parse(lines[0].c_str());
  ASSERT_FALSE(d.HasParseError());
  EXPECT_STREQ(d["time"].GetString(), "2026-11-26T21:20:00.000Z");
  EXPECT_STREQ(d["pager"].GetString(), "log");
  EXPECT_STREQ(d["action"].GetString(), "trigger");
  EXPECT_STREQ(d["team"].GetString(), "payments");
  EXPECT_EQ(d["dedup_key"].GetString(), DedupKey("am:1", "payments"));
  Result<Page> back = PageFromJson(std::string_view(lines[0]).substr(
      lines[0].find("\"page\":") + 7, lines[0].size() - lines[0].find("\"page\":") - 8));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->summary, "payment: errors behind checkout");
  d.Parse(lines[1].c_str());
  EXPECT_STREQ(d["action"].GetString(), "resolve");
}

TEST(LogPager, ConcurrentSendsNeverInterleave) {
  testing::TempDir dir;
  std::string path = dir.path() + "/pages.jsonl";
  Result<std::unique_ptr<LogPager>> pager = LogPager::Open(path);
  ASSERT_TRUE(pager.ok());
  PagerTarget target;
  std::vector<std::thread> threads;
  std::atomic<int> accepted{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        Page p = MakePage("id-" + std::to_string(t) + "-" + std::to_string(i), "team");
        p.summary = std::string(2000, 'x');  // long lines: a torn write would show
        (*pager)->Send(p, target, [&](SendOutcome o) { accepted += o.accepted; });
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(accepted.load(), 100);
  std::vector<std::string> lines = Lines(path);
  ASSERT_EQ(lines.size(), 100u);
  for (const std::string& line : lines) {
    rapidjson::Document d;
    d.Parse(line.c_str());
    EXPECT_FALSE(d.HasParseError());
  }
}

TEST(LogPager, UnwritablePathIsUnavailable) {
  Result<std::unique_ptr<LogPager>> pager = LogPager::Open("/nonexistent/dir/pages.jsonl");
  ASSERT_FALSE(pager.ok());
  EXPECT_EQ(pager.error().code, ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace tracepager::integrations
