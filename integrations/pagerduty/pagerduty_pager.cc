#include "integrations/pagerduty/pagerduty_pager.h"

#include <fmt/format.h>

namespace tracepager::integrations::pagerduty {

PagerDutyPager::PagerDutyPager(PagerDutyOptions options, std::shared_ptr<HttpPoster> poster,
                               WallClock wall_clock)
    : HttpPager(std::move(poster), std::move(wall_clock), &ReadReply),
      options_(std::move(options)) {}

Result<HttpPost> PagerDutyPager::BuildRequest(const Page& page, const PagerTarget& target) const {
  if (target.credential.empty()) {
    return Error::InvalidInput(
        fmt::format("pagerduty target of team \"{}\" has no routing key", target.team));
  }
  HttpPost post;
  post.url = options_.events_url;
  post.body = EventJson(page, target.credential.Reveal(), options_);
  post.timeout = options_.timeout;
  return post;
}

}  // namespace tracepager::integrations::pagerduty
