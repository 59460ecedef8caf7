// The audit web page's static files (HTML, CSS, JavaScript), compiled into the binary so the
// page works offline and with no CDN. Served by AuditApi (daemon/audit_api.h).
//
// The page lists recent decisions (GET api/v1/decisions) and shows the selected one (location
// hash "#<id>", else the newest) from GET api/v1/decisions/<id>: who was paged and why, the naive
// answer, each trace's walk path as a tree with its failing spans, those spans on a timeline,
// and the deliveries. It builds the DOM with textContent only (alert labels and span names are
// untrusted) and fetches relative URLs, so it also works behind a path-prefix proxy. When it has
// drawn a decision it sets <body data-state="ready">; tests wait for that.
#pragma once

#include <string_view>
#include <vector>

namespace tracepager::daemon {

struct StaticAsset {
  std::string_view path;          // "/", "/ui/app.js", "/ui/app.css"
  std::string_view content_type;  // with charset
  std::string_view body;
};

// The assets, in a fixed order. Static storage; thread-safe.
const std::vector<StaticAsset>& AuditWebAssets();

}  // namespace tracepager::daemon
