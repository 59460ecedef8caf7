// The HTTP pagers as configured, on the project's HTTP client (integrations/http/): one
// HttpClient per pager kind (its own concurrency limit, TLS settings and metrics label), all on
// the io_context the daemon lends. HttpClientPoster adapts a client to the pagers' HttpPoster.
//
// Pager POSTs are not retried inside the client: Delivery owns redelivery (with the outbox,
// backoff and fallback), and a hidden retry would only hide a slow pager from it. The one
// exception is the client's resend on a pooled connection the peer had closed (http_client.h),
// which is not an answer from the pager at all and is not recorded as an attempt.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "integrations/http/http_client.h"
#include "integrations/opsgenie/opsgenie_alert.h"
#include "integrations/pager.h"
#include "integrations/pager_http.h"
#include "integrations/pagerduty/pagerduty_event.h"
#include "integrations/slack/slack_pager.h"
#include "integrations/webhook/webhook_pager.h"
#include "routing/result.h"

namespace boost::asio {
class io_context;
}

namespace tracepager::integrations {

class HttpClientPoster final : public HttpPoster {
 public:
  explicit HttpClientPoster(std::shared_ptr<http::HttpClient> client)
      : client_(std::move(client)) {}
  // POSTs as application/json, deadline = now + request.timeout, no client-side retry, and
  // errors that name only the URL's origin (a Slack or webhook URL's path is a secret).
  void Post(HttpPost request, std::function<void(Result<HttpReply>)> done) override;

 private:
  std::shared_ptr<http::HttpClient> client_;
};

struct PagerConfigs {
  std::optional<pagerduty::PagerDutyOptions> pagerduty;
  std::optional<opsgenie::OpsgenieOptions> opsgenie;
  std::optional<slack::SlackOptions> slack;
  std::optional<webhook::WebhookOptions> webhook;
  http::TlsOptions tls;        // for every pager: verification on, system CAs by default
  size_t max_concurrency = 8;  // requests in progress per pager kind
  uint64_t max_response_bytes = 1u << 20;  // pager answers are small
};

struct PagerSet {
  // Declared first, destroyed last: pagers hold posters that hold the clients.
  std::vector<std::shared_ptr<http::HttpClient>> clients;
  std::map<std::string, std::unique_ptr<Pager>, std::less<>> pagers;  // by kind

  // The pagers by kind, as Delivery takes them. Valid while the set lives.
  std::map<std::string, Pager*, std::less<>> ByKind() const;
};

// Builds every configured pager. kInvalidInput when a client cannot be built (an unreadable CA
// file). REQUIRES: `io` outlives the set and runs until the set is destroyed and every send's
// completion has run.
Result<PagerSet> MakeHttpPagers(boost::asio::io_context& io, const PagerConfigs& configs);

}  // namespace tracepager::integrations
