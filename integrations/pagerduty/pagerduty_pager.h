// The PagerDuty pager: one POST of an Events API v2 event per attempt (pagerduty_event.h), over
// the shared HttpPoster. The target's credential is the integration's routing key.
// Thread-safe; Send returns at once.
#pragma once

#include <memory>

#include "integrations/pager_http.h"
#include "integrations/pagerduty/pagerduty_event.h"

namespace tracepager::integrations::pagerduty {

class PagerDutyPager final : public HttpPager {
 public:
  PagerDutyPager(
      PagerDutyOptions options, std::shared_ptr<HttpPoster> poster,
      WallClock wall_clock = [] { return std::chrono::system_clock::now(); });

  std::string_view kind() const override { return "pagerduty"; }

 protected:
  Result<HttpPost> BuildRequest(const Page& page, const PagerTarget& target) const override;

 private:
  PagerDutyOptions options_;
};

}  // namespace tracepager::integrations::pagerduty
