// The Opsgenie / JSM Operations pager: one POST per attempt (opsgenie_alert.h) over the shared
// HttpPoster. The target's credential is the API integration's GenieKey (the pager's configured
// api_key when the target has none), its name the Opsgenie team to page (the registry team's
// name when empty). Thread-safe; Send returns at once.
#pragma once

#include <memory>

#include "integrations/opsgenie/opsgenie_alert.h"
#include "integrations/pager_http.h"

namespace tracepager::integrations::opsgenie {

class OpsgeniePager final : public HttpPager {
 public:
  OpsgeniePager(
      OpsgenieOptions options, std::shared_ptr<HttpPoster> poster,
      WallClock wall_clock = [] { return std::chrono::system_clock::now(); });

  std::string_view kind() const override { return "opsgenie"; }

 protected:
  Result<HttpPost> BuildRequest(const Page& page, const PagerTarget& target) const override;

 private:
  OpsgenieOptions options_;
};

}  // namespace tracepager::integrations::opsgenie
