// The Slack pager: one POST per attempt to the target's incoming-webhook URL (the URL is the
// credential; it never appears in a log, an audit record or an error). Thread-safe.
#pragma once

#include <chrono>
#include <memory>

#include "integrations/pager_http.h"
#include "integrations/slack/slack_message.h"

namespace tracepager::integrations::slack {

struct SlackOptions {
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};
};

class SlackPager final : public HttpPager {
 public:
  SlackPager(
      SlackOptions options, std::shared_ptr<HttpPoster> poster,
      WallClock wall_clock = [] { return std::chrono::system_clock::now(); });

  std::string_view kind() const override { return "slack"; }

 protected:
  Result<HttpPost> BuildRequest(const Page& page, const PagerTarget& target) const override;

 private:
  SlackOptions options_;
};

}  // namespace tracepager::integrations::slack
