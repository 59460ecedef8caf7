// HttpServer TLS listeners: a test CA and a server certificate for 127.0.0.1 are made with the
// openssl CLI in a temporary directory; the client verifies the chain and the IP address.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "daemon/http_server.h"
#include "tests/daemon/http_test_client.h"

namespace tracepager::daemon {
namespace {

namespace fs = std::filesystem;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tracepager::testing::MakeRequest;
using tracepager::testing::TestClient;
using tracepager::testing::TlsTestClient;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "tracepager-tls-XXXXXX").string();
    char* made = mkdtemp(tmpl.data());
    if (made != nullptr) path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

int RunShell(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str());
}

// Writes ca.crt, server.crt and server.key into `dir`; false if openssl is missing or failed.
bool MakeCertificates(const fs::path& dir) {
  const std::string d = dir.string();
  std::ofstream(dir / "server.ext") << "basicConstraints=CA:FALSE\n"
                                       "keyUsage=digitalSignature\n"
                                       "extendedKeyUsage=serverAuth\n"
                                       "subjectAltName=IP:127.0.0.1\n";
  const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
  return RunShell("openssl req -x509" + ec + "-keyout " + d + "/ca.key -out " + d +
                  "/ca.crt -days 2 -subj /CN=tracepager-test-ca") == 0 &&
         RunShell("openssl req" + ec + "-keyout " + d + "/server.key -out " + d +
                  "/server.csr -subj /CN=127.0.0.1") == 0 &&
         RunShell("openssl x509 -req -in " + d + "/server.csr -CA " + d + "/ca.crt -CAkey " + d +
                  "/ca.key -CAcreateserial -days 2 -extfile " + d + "/server.ext -out " + d +
                  "/server.crt") == 0;
}

class HttpServerTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(RunShell("openssl version"), 0) << "openssl CLI not installed (scripts/setup)";
    ASSERT_FALSE(dir_.path().empty());
    ASSERT_TRUE(MakeCertificates(dir_.path()));
    HttpServerOptions o;
    o.listeners = {{"127.0.0.1", 0, true}, {"127.0.0.1", 0, false}};
    o.tls =
        HttpTlsFiles{(dir_.path() / "server.crt").string(), (dir_.path() / "server.key").string()};
    o.bearer_tokens = {"tls-token"};
    o.on_reject = [this](HttpRejectReason r) {
      std::lock_guard lock(mu_);
      ++rejects_[r];
    };
    server_ = std::make_unique<HttpServer>(std::move(o));
    server_->Handle("POST", "/secure", HttpRouteOptions{},
                    [](const HttpRequest& req, HttpResponder r) {
                      HttpResponse res;
                      res.body = req.tls ? R"({"tls":true})" : R"({"tls":false})";
                      r.Send(res);
                    });
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.error().message;
    tls_port_ = server_->BoundListeners()[0].port;
    plain_port_ = server_->BoundListeners()[1].port;
    EXPECT_TRUE(server_->BoundListeners()[0].tls);
    EXPECT_FALSE(server_->BoundListeners()[1].tls);
  }

  int Rejects(HttpRejectReason r) {
    std::lock_guard lock(mu_);
    return rejects_[r];
  }

  TempDir dir_;
  std::mutex mu_;
  std::map<HttpRejectReason, int> rejects_;
  std::unique_ptr<HttpServer> server_;
  uint16_t tls_port_ = 0;
  uint16_t plain_port_ = 0;
};

TEST_F(HttpServerTlsTest, ServesVerifiedTlsWithKeepAliveBesidesAPlainListener) {
  ssl::context ctx(ssl::context::tls_client);
  ctx.load_verify_file((dir_.path() / "ca.crt").string());
  ctx.set_verify_mode(ssl::verify_peer);
  TlsTestClient c("127.0.0.1", tls_port_, ctx);
  ASSERT_TRUE(c.connected()) << c.connect_error().message();
  for (int i = 0; i < 2; ++i) {
    auto res = c.Send(MakeRequest(http::verb::post, "/secure", "{}", "tls-token"));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 200u);
    EXPECT_EQ(res->body(), R"({"tls":true})");
  }
  auto denied = c.Send(MakeRequest(http::verb::post, "/secure", "{}", "wrong"));
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->result_int(), 401u);

  TestClient plain("127.0.0.1", plain_port_);
  auto res = plain.Send(MakeRequest(http::verb::post, "/secure", "{}", "tls-token"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), R"({"tls":false})");
}

TEST_F(HttpServerTlsTest, ClientThatDoesNotTrustTheCaFailsTheHandshake) {
  ssl::context ctx(ssl::context::tls_client);
  ctx.set_verify_mode(ssl::verify_peer);  // no CA loaded
  TlsTestClient c("127.0.0.1", tls_port_, ctx);
  EXPECT_FALSE(c.connected());
}

TEST_F(HttpServerTlsTest, PlainHttpOnATlsListenerIsClosedAndCounted) {
  TestClient c("127.0.0.1", tls_port_);
  ASSERT_TRUE(c.connected());
  ASSERT_FALSE(c.Write("GET /secure HTTP/1.1\r\nHost: a\r\n\r\n"));
  std::string data;
  EXPECT_TRUE(c.ReadUntilClosed(&data));
  EXPECT_EQ(data.find("HTTP/1.1 200"), std::string::npos);
  // The handshake failure is reported before the connection closes.
  EXPECT_EQ(Rejects(HttpRejectReason::kTlsHandshake), 1);
}

TEST(HttpServerTlsConfig, StartFailsOnMissingOrBadFiles) {
  HttpServerOptions o;
  o.listeners = {{"127.0.0.1", 0, true}};
  {
    HttpServer server(o);  // TLS listener without files
    Status s = server.Start();
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidInput);
  }
  o.tls = HttpTlsFiles{"/nonexistent/server.crt", "/nonexistent/server.key"};
  HttpServer server(o);
  Status s = server.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidInput);
  EXPECT_NE(s.error().message.find("/nonexistent/server.crt"), std::string::npos);
}

}  // namespace
}  // namespace tracepager::daemon
