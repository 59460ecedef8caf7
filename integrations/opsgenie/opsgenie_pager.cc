#include "integrations/opsgenie/opsgenie_pager.h"

#include <fmt/format.h>

namespace tracepager::integrations::opsgenie {

OpsgeniePager::OpsgeniePager(OpsgenieOptions options, std::shared_ptr<HttpPoster> poster,
                             WallClock wall_clock)
    : HttpPager(std::move(poster), std::move(wall_clock), &ReadReply),
      options_(std::move(options)) {
  own_secrets_.push_back(options_.api_key);
}

Result<HttpPost> OpsgeniePager::BuildRequest(const Page& page, const PagerTarget& target) const {
  const Secret& key = target.credential.empty() ? options_.api_key : target.credential;
  if (key.empty()) {
    return Error::InvalidInput(fmt::format(
        "opsgenie target of team \"{}\" has no API key, and no default api_key is configured",
        target.team));
  }
  HttpPost post;
  post.url = RequestUrl(page, options_);
  post.headers.emplace_back("Authorization", "GenieKey " + key.Reveal());
  post.body = page.action == Page::Action::kTrigger
                  ? CreateAlertJson(page, target.name.empty() ? target.team : target.name, options_)
                  : CloseAlertJson(page, options_);
  post.timeout = options_.timeout;
  return post;
}

}  // namespace tracepager::integrations::opsgenie
