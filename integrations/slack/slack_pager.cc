#include "integrations/slack/slack_pager.h"

#include <fmt/format.h>

namespace tracepager::integrations::slack {

SlackPager::SlackPager(SlackOptions options, std::shared_ptr<HttpPoster> poster,
                       WallClock wall_clock)
    : HttpPager(std::move(poster), std::move(wall_clock), &ReadReply), options_(options) {}

Result<HttpPost> SlackPager::BuildRequest(const Page& page, const PagerTarget& target) const {
  const std::string& url = target.credential.Reveal();
  if (url.rfind("https://", 0) != 0 && url.rfind("http://", 0) != 0) {
    // The URL is the secret: say what is wrong without quoting it.
    return Error::InvalidInput(fmt::format(
        "slack target of team \"{}\": the webhook URL ({}) is not an http(s) URL", target.team,
        target.credential.origin().empty() ? "no origin" : target.credential.origin()));
  }
  HttpPost post;
  post.url = url;
  post.body = MessageJson(page);
  post.timeout = options_.timeout;
  return post;
}

}  // namespace tracepager::integrations::slack
