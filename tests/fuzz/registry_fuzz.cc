// libFuzzer target: the registry YAML loader (routing/registry.h), both the strict FromYaml and
// the lenient Lint that `registry check` uses, with a secret resolver that answers every
// reference, and lookups on what loads.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "routing/registry.h"

namespace {

using tracepager::Result;
using tracepager::routing::CivilDate;
using tracepager::routing::Registry;
using tracepager::routing::RegistryLoadOptions;
using tracepager::routing::SecretRef;

RegistryLoadOptions Options() {
  RegistryLoadOptions options;
  // Deterministic and hermetic: env references resolve, file references with an odd-length path
  // do not, so both outcomes are reachable.
  options.resolve_secret = [](const SecretRef& ref) -> Result<std::string> {
    if (ref.kind == SecretRef::Kind::kFile && ref.name.size() % 2 == 1) {
      return tracepager::Error::NotFound(ref.Describe() + ": missing");
    }
    return std::string("fuzz-secret-") + ref.name;
  };
  options.today = CivilDate::Parse("2026-11-27");
  return options;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const RegistryLoadOptions options = Options();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto strict = Registry::FromYaml(text, "fuzz.yaml", options);
  auto lint = Registry::Lint(text, "fuzz.yaml", options);
  // Strict and lenient agree on what is clean.
  if (strict.ok() && !lint.problems.empty()) std::abort();
  if (strict.ok()) {
    const Registry& registry = strict.value();
    // The default team, when set, is a known team (routing/registry.h).
    if (!registry.default_team().empty() && registry.FindTeam(registry.default_team()) == nullptr) {
      std::abort();
    }
    (void)registry.PageableTeam(registry.default_team());
  }
  return 0;
}
