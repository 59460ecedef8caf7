// The generic webhook pager: one POST of webhook_body.h's document per attempt to the target's
// URL (a credential: URLs often carry tokens), signed with the target's signing key, else the
// pager's configured one.
// Any 2xx is delivered. Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "integrations/pager_http.h"
#include "integrations/webhook/webhook_body.h"

namespace tracepager::integrations::webhook {

struct WebhookOptions {
  std::string signature_header = "X-Tracepager-Signature";
  std::string timestamp_header;  // empty: sign the body alone
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};
  // Signs bodies for targets that carry no signing key of their own; empty: unsigned.
  Secret signing_key;
};

class WebhookPager final : public HttpPager {
 public:
  WebhookPager(
      WebhookOptions options, std::shared_ptr<HttpPoster> poster,
      WallClock wall_clock = [] { return std::chrono::system_clock::now(); });

  std::string_view kind() const override { return "webhook"; }

 protected:
  Result<HttpPost> BuildRequest(const Page& page, const PagerTarget& target) const override;

 private:
  WebhookOptions options_;
};

}  // namespace tracepager::integrations::webhook
