#include "integrations/webhook/webhook_pager.h"

#include <fmt/format.h>

namespace tracepager::integrations::webhook {

WebhookPager::WebhookPager(WebhookOptions options, std::shared_ptr<HttpPoster> poster,
                           WallClock wall_clock)
    : HttpPager(std::move(poster), std::move(wall_clock), nullptr), options_(std::move(options)) {
  own_secrets_.push_back(options_.signing_key);
}

Result<HttpPost> WebhookPager::BuildRequest(const Page& page, const PagerTarget& target) const {
  const std::string& url = target.credential.Reveal();
  if (url.rfind("https://", 0) != 0 && url.rfind("http://", 0) != 0) {
    return Error::InvalidInput(fmt::format(
        "webhook target of team \"{}\": the URL ({}) is not an http(s) URL", target.team,
        target.credential.origin().empty() ? "no origin" : target.credential.origin()));
  }
  HttpPost post;
  post.url = url;
  post.body = BodyJson(page);
  post.timeout = options_.timeout;
  const Secret& key = target.signing_key.empty() ? options_.signing_key : target.signing_key;
  if (!key.empty()) {
    int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(WallNow().time_since_epoch()).count();
    post.headers = SignatureHeaders(post.body, key.Reveal(), options_.signature_header,
                                    options_.timestamp_header, now);
  }
  return post;
}

}  // namespace tracepager::integrations::webhook
