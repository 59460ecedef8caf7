// libFuzzer targets backstage_yaml_fuzz and backstage_json_fuzz (tests/fuzz/CMakeLists.txt builds
// this file twice, with TRACEPAGER_FUZZ_BACKSTAGE_JSON 0 or 1): catalog-info YAML
// (routing/backstage.h ParseBackstageYaml) or catalog API JSON (ParseBackstageJson), then
// MergeBackstage of what parses into a small local registry, as the daemon does at load.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "routing/backstage.h"

namespace {

const tracepager::routing::Registry& Local() {
  static const tracepager::routing::Registry local = [] {
    auto loaded = tracepager::routing::Registry::FromYaml(
        "default_team: platform\n"
        "teams:\n"
        "  platform: {slack: {webhook_url: {env: SLACK_PLATFORM}}}\n"
        "  payments: {fallback: platform}\n"
        "services:\n"
        "  payment: {team: payments, aliases: [paymentservice]}\n",
        "local.yaml");
    return loaded.ok() ? loaded.value() : tracepager::routing::Registry();
  }();
  return local;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
#if TRACEPAGER_FUZZ_BACKSTAGE_JSON
  auto catalog = tracepager::routing::ParseBackstageJson(text, "catalog-api");
#else
  auto catalog = tracepager::routing::ParseBackstageYaml(text, "catalog-info.yaml");
#endif
  if (catalog.ok()) (void)tracepager::routing::MergeBackstage(Local(), catalog.value());
  return 0;
}
