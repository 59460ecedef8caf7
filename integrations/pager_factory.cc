#include "integrations/pager_factory.h"

#include "integrations/opsgenie/opsgenie_pager.h"
#include "integrations/pagerduty/pagerduty_pager.h"

namespace tracepager::integrations {

void HttpClientPoster::Post(HttpPost request, std::function<void(Result<HttpReply>)> done) {
  http::Request r;
  r.method = http::Method::kPost;
  r.url = std::move(request.url);
  r.headers = std::move(request.headers);
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = std::move(request.body);
  r.deadline = http::Clock::now() + request.timeout;
  r.retry = false;
  r.redact_path = true;
  client_->Send(std::move(r), [done = std::move(done)](Result<http::Response> response) {
    if (!response.ok()) {
      done(response.error());
      return;
    }
    HttpReply reply;
    reply.status = response->status;
    reply.headers = std::move(response->headers);
    reply.body = std::move(response->body);
    done(std::move(reply));
  });
}

std::map<std::string, Pager*, std::less<>> PagerSet::ByKind() const {
  std::map<std::string, Pager*, std::less<>> out;
  for (const auto& [kind, pager] : pagers) out[kind] = pager.get();
  return out;
}

Result<PagerSet> MakeHttpPagers(boost::asio::io_context& io, const PagerConfigs& configs) {
  PagerSet set;
  auto poster = [&](const std::string& kind,
                    std::chrono::milliseconds timeout) -> Result<std::shared_ptr<HttpPoster>> {
    http::ClientOptions options;
    options.name = kind;
    options.max_concurrency = configs.max_concurrency;
    options.attempt_timeout = timeout;
    options.max_response_bytes = configs.max_response_bytes;
    options.tls = configs.tls;
    Result<std::unique_ptr<http::HttpClient>> client = http::HttpClient::Create(io, options);
    if (!client.ok()) return client.error();
    std::shared_ptr<http::HttpClient> shared = std::move(client).value();
    set.clients.push_back(shared);
    return std::shared_ptr<HttpPoster>(std::make_shared<HttpClientPoster>(shared));
  };
  if (configs.pagerduty) {
    auto p = poster("pagerduty", configs.pagerduty->timeout);
    if (!p.ok()) return p.error();
    set.pagers["pagerduty"] =
        std::make_unique<pagerduty::PagerDutyPager>(*configs.pagerduty, std::move(p).value());
  }
  if (configs.opsgenie) {
    auto p = poster("opsgenie", configs.opsgenie->timeout);
    if (!p.ok()) return p.error();
    set.pagers["opsgenie"] =
        std::make_unique<opsgenie::OpsgeniePager>(*configs.opsgenie, std::move(p).value());
  }
  if (configs.slack) {
    auto p = poster("slack", configs.slack->timeout);
    if (!p.ok()) return p.error();
    set.pagers["slack"] = std::make_unique<slack::SlackPager>(*configs.slack, std::move(p).value());
  }
  if (configs.webhook) {
    auto p = poster("webhook", configs.webhook->timeout);
    if (!p.ok()) return p.error();
    set.pagers["webhook"] =
        std::make_unique<webhook::WebhookPager>(*configs.webhook, std::move(p).value());
  }
  return set;
}

}  // namespace tracepager::integrations
