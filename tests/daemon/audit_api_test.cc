// The audit HTTP handlers (daemon/audit_api.h), called directly.
#include "daemon/audit_api.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <filesystem>

#include "daemon/audit_log.h"
#include "tests/support/audit_samples.h"
#include "tests/support/process.h"

namespace tracepager::daemon {
namespace {

using testing::kSampleBaseNs;
using testing::SampleDecisionAudit;
using testing::SampleDelivery;
using testing::SampleFallbackDecision;
using testing::SampleRoutedDecision;
using testing::TempDir;

using Headers = std::vector<std::pair<std::string, std::string>>;

std::string Header(const AuditHttpResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

rapidjson::Document Json(const std::string& body) {
  rapidjson::Document doc;
  doc.Parse(body.c_str());
  EXPECT_FALSE(doc.HasParseError()) << body;
  return doc;
}

class AuditApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AuditLogOptions options;
    options.path = dir_.path() + "/audit.jsonl";
    auto writer = AuditLogWriter::Open(options);
    ASSERT_TRUE(writer.ok()) << writer.error().message;
    routed_ =
        SampleDecisionAudit("20241126T194000.000000Z-abcd", kSampleBaseNs, SampleRoutedDecision());
    fallback_ = SampleDecisionAudit("20241126T194500.000000Z-abcd", kSampleBaseNs + 300 * kS,
                                    SampleFallbackDecision("frontend", "web"));
    ASSERT_TRUE((*writer)->AppendDecision(routed_).ok());
    ASSERT_TRUE((*writer)
                    ->AppendDelivery(SampleDelivery(routed_, "payments-data", kSampleBaseNs + kS))
                    .ok());
    ASSERT_TRUE((*writer)->AppendDecision(fallback_).ok());
    ASSERT_TRUE((*writer)->Close().ok());
    AuditApiOptions api;
    api.log_path = options.path;
    api.now = [] { return kSampleBaseNs + 3600 * kS; };  // an hour after the first decision
    api_ = std::make_unique<AuditApi>(api);
  }

  AuditHttpResponse Get(const std::string& target, const Headers& headers = {}) {
    return api_->Handle("GET", target, headers);
  }

  std::vector<std::string> ListIds(const std::string& query) {
    AuditHttpResponse r = Get("/api/v1/decisions" + query);
    EXPECT_EQ(r.status, 200) << r.body;
    std::vector<std::string> ids;
    rapidjson::Document doc = Json(r.body);
    if (!doc.IsObject()) return ids;
    for (const auto& d : doc["decisions"].GetArray()) ids.push_back(d["id"].GetString());
    return ids;
  }

  static constexpr int64_t kS = 1'000'000'000;
  TempDir dir_;
  DecisionAudit routed_, fallback_;
  std::unique_ptr<AuditApi> api_;
};

TEST_F(AuditApiTest, ListsNewestFirstWithFilters) {
  AuditHttpResponse r = Get("/api/v1/decisions");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(Header(r, "Cache-Control"), "no-store");
  rapidjson::Document doc = Json(r.body);
  ASSERT_EQ(doc["decisions"].Size(), 2u);
  EXPECT_STREQ(doc["decisions"][0]["id"].GetString(), fallback_.id.c_str());
  EXPECT_STREQ(doc["decisions"][1]["deliveries"][0]["outcome"].GetString(), "accepted");
  EXPECT_EQ(doc["warnings"].Size(), 0u);

  using V = std::vector<std::string>;
  EXPECT_EQ(ListIds("?limit=1"), V{fallback_.id});
  EXPECT_EQ(ListIds("?decision=routed"), V{routed_.id});
  EXPECT_EQ(ListIds("?disagreement=true"), V{routed_.id});
  EXPECT_EQ(ListIds("?team=web"), V{fallback_.id});
  EXPECT_EQ(ListIds("?service=postgresql%2Fpayments"), V{routed_.id});
  EXPECT_EQ(ListIds("?alert=CheckoutErrors&decision=fallback"), V{fallback_.id});
  EXPECT_EQ(ListIds("?since=58m"), V{fallback_.id});  // relative to the injected clock
  EXPECT_EQ(ListIds("?since=2024-11-26T19%3A44%3A00Z"), V{fallback_.id});
  EXPECT_EQ(ListIds("?until=2024-11-26T19:44:00Z&since="), V{routed_.id});
  EXPECT_EQ(ListIds("?since=1h&disagreement=false&decision="), (V{fallback_.id, routed_.id}));
}

TEST_F(AuditApiTest, BadParametersAre400) {
  for (const char* query : {"?limit=0", "?limit=x", "?since=tomorrow", "?decision=maybe",
                            "?disagreement=perhaps", "?colour=red"}) {
    AuditHttpResponse r = Get(std::string("/api/v1/decisions") + query);
    EXPECT_EQ(r.status, 400) << query;
    rapidjson::Document doc = Json(r.body);
    EXPECT_STREQ(doc["error"].GetString(), "bad_request") << query;
  }
}

TEST_F(AuditApiTest, ShowsOneDecisionWithDeliveries) {
  AuditHttpResponse r = Get("/api/v1/decisions/" + routed_.id);
  ASSERT_EQ(r.status, 200) << r.body;
  rapidjson::Document doc = Json(r.body);
  EXPECT_STREQ(doc["decision"]["id"].GetString(), routed_.id.c_str());
  EXPECT_STREQ(doc["decision"]["route"]["teams"][0].GetString(), "payments-data");
  ASSERT_EQ(doc["deliveries"].Size(), 1u);
  EXPECT_STREQ(doc["deliveries"][0]["team"].GetString(), "payments-data");

  EXPECT_EQ(Get("/api/v1/decisions/20241126T1945").status, 200);  // unique prefix
  r = Get("/api/v1/decisions/20241126T19");
  EXPECT_EQ(r.status, 400);
  r = Get("/api/v1/decisions/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_STREQ(Json(r.body)["reason"].GetString(), "no decision nope");
  EXPECT_EQ(r.body.find(dir_.path()), std::string::npos);  // no server paths in answers
}

TEST_F(AuditApiTest, ServesThePageAndItsAssets) {
  AuditHttpResponse page = Get("/");
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("<script src=\"ui/app.js\"></script>"), std::string::npos);
  EXPECT_NE(Header(page, "Content-Security-Policy").find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(Header(page, "X-Content-Type-Options"), "nosniff");
  // Nothing on the page or in its assets is loaded from elsewhere.
  for (const char* path : {"/", "/ui/app.js", "/ui/app.css"}) {
    AuditHttpResponse r = Get(path);
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_EQ(r.body.find("http://"), std::string::npos) << path;
    EXPECT_EQ(r.body.find("https://"), std::string::npos) << path;
    EXPECT_EQ(r.body.find("//cdn"), std::string::npos) << path;
    const std::string etag = Header(r, "ETag");
    ASSERT_FALSE(etag.empty()) << path;
    AuditHttpResponse again = Get(path, {{"if-none-match", etag}});
    EXPECT_EQ(again.status, 304) << path;
    EXPECT_EQ(again.body, "");
  }
  EXPECT_EQ(Get("/ui/app.js").content_type, "text/javascript; charset=utf-8");
  EXPECT_NE(Get("/ui/app.js").body.find("textContent"), std::string::npos);
  EXPECT_EQ(Get("/ui/app.js").body.find("innerHTML"), std::string::npos);
}

TEST_F(AuditApiTest, MethodsAndUnknownPaths) {
  AuditHttpResponse r = api_->Handle("POST", "/api/v1/decisions", {});
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(Header(r, "Allow"), "GET, HEAD");
  r = api_->Handle("HEAD", "/api/v1/decisions", {});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(Get("/ui/missing.js").status, 404);
  EXPECT_EQ(Get("/api/v1/decisions/").status, 404);

  std::vector<std::string> paths;
  for (const AuditApi::Route& route : AuditApi::Routes()) {
    paths.push_back(route.path + (route.prefix ? "*" : ""));
  }
  EXPECT_EQ(paths, (std::vector<std::string>{"/", "/ui/app.js", "/ui/app.css", "/api/v1/decisions",
                                             "/api/v1/decisions/*"}));
}

TEST_F(AuditApiTest, NoLogYetIsAnEmptyList) {
  AuditApiOptions options;
  options.log_path = dir_.path() + "/fresh/audit.jsonl";
  AuditApi fresh(options);
  AuditHttpResponse r = fresh.Handle("GET", "/api/v1/decisions", {});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Json(r.body)["decisions"].Size(), 0u);
  EXPECT_EQ(fresh.Handle("GET", "/api/v1/decisions/x", {}).status, 404);
}

TEST(AuditQueryString, DecodesComponents) {
  EXPECT_EQ(UrlDecode("a%2Fb+c%zz%4"), "a/b c%zz%4");
  auto q = ParseQuery("a=1&&b=x%20y&flag&=v");
  ASSERT_EQ(q.size(), 4u);
  EXPECT_EQ(q[1], std::make_pair(std::string("b"), std::string("x y")));
  EXPECT_EQ(q[2], std::make_pair(std::string("flag"), std::string("")));
}

}  // namespace
}  // namespace tracepager::daemon
