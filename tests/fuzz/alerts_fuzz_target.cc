// libFuzzer targets alertmanager_fuzz, grafana_fuzz and generic_alert_fuzz (tests/fuzz/
// CMakeLists.txt builds this file once per form, naming it in TRACEPAGER_FUZZ_ALERT_FORMAT):
// daemon::ParseAlertBatch on that webhook form, forced and auto-detected, then DeriveJobs with the
// default rules (trace-id and link scanning, alert-name regexes) on what parses. These are the
// bytes any client that reaches the webhook port controls.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "daemon/alert.h"

namespace {

using tracepager::daemon::AlertFormat;
using tracepager::daemon::AlertRules;

const AlertRules& Rules() {
  static const AlertRules rules = tracepager::daemon::DefaultAlertRules();
  return rules;
}

void Derive(const tracepager::daemon::AlertBatch& batch) {
  constexpr int64_t kNowNs = 1'790'000'000'000'000'000;  // fixed: runs are reproducible
  auto jobs = tracepager::daemon::DeriveJobs(batch, Rules(), kNowNs);
  // Never drops a firing alert: one job per alert (daemon/alert.h).
  if (jobs.size() != batch.alerts.size()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto forced =
      tracepager::daemon::ParseAlertBatch(body, AlertFormat::TRACEPAGER_FUZZ_ALERT_FORMAT);
  if (forced.ok()) Derive(forced.value());
  auto detected = tracepager::daemon::ParseAlertBatch(body, AlertFormat::kAuto);
  if (detected.ok()) Derive(detected.value());
  return 0;
}
