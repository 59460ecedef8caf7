// The `pagers:` and `delivery:` sections of the daemon config: how tracepager talks to PagerDuty,
// Opsgenie / JSM, Slack and generic webhooks, and how hard it tries. Which team is paged through
// which of them comes from the registry (its teams' pager targets); a kind without a section
// here cannot page, and a page to it falls back like any other undeliverable page.
//
//   pagers:
//     pagerduty:
//       region: us                    # us | eu, or events_url: https://... (a proxy, a test)
//       client_url: https://tracepager.example.com   # optional link back in PagerDuty
//       timeout: 10s
//     opsgenie:
//       api: us                       # us | eu | jsm | an http(s) base URL
//       api_key: {file: /etc/tracepager/opsgenie.key}  # GenieKey for teams without their own
//       timeout: 10s
//     slack: {timeout: 10s}
//     webhook:
//       signing_key: {env: TRACEPAGER_WEBHOOK_KEY}     # for targets without their own
//       signature_header: X-Tracepager-Signature
//       timestamp_header: X-Tracepager-Timestamp       # optional: sign "<unix s>:<body>"
//       timeout: 10s
//     tls: {ca_file: /etc/ssl/certs/internal-ca.pem}   # default: the system CA store
//     trace_url_template: https://jaeger.example.com/trace/{trace_id}
//   delivery:
//     max_age: 10m              # a page not delivered to its team by then goes to the fallback
//     resolve_max_age: 24h
//     initial_backoff: 1s
//     max_backoff: 2m
//     max_retry_after: 10m
//     max_in_flight: 64
//     max_in_flight_per_target: 4
//     rate_limits: {slack: {per_second: 1, burst: 1}}  # merged over the defaults
//     retention: 7d
//
// Parsing is strict like the rest of the config: unknown keys, wrong types, bad durations and
// URLs are problems with file and line; secrets only by {file:} / {env:} reference, resolved now,
// never printed.
#pragma once

#include <string>
#include <vector>

#include "daemon/config.h"
#include "daemon/paging_config.h"

namespace YAML {
class Node;
}

namespace tracepager::daemon {

// Parses the two sections (either may be undefined: defaults, no HTTP pager). `file` names the
// config in problems; `env` resolves secret references and relative paths' files.
std::vector<ConfigProblem> ParsePagingConfig(const YAML::Node& pagers, const YAML::Node& delivery,
                                             const std::string& file, const ConfigEnvironment& env,
                                             PagingConfig* out);

}  // namespace tracepager::daemon
