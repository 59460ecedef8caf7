// libFuzzer target: the daemon config YAML (daemon/config.h ParseConfig) with a hermetic
// ConfigEnvironment: no process environment, no file system. Variables and files exist or not
// by a fixed rule on their names, so both outcomes are reachable and runs are reproducible.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/config.h"

namespace {

using tracepager::Error;
using tracepager::Result;
using tracepager::daemon::ConfigEnvironment;

ConfigEnvironment HermeticEnvironment() {
  ConfigEnvironment env;
  env.get_env = [](const std::string& name) -> std::optional<std::string> {
    if (name.size() % 2 == 1) return std::nullopt;
    return "fuzz-value-" + name;
  };
  env.read_file = [](const std::string& path) -> Result<std::string> {
    if (path.size() % 3 == 0) return Error::NotFound(path + ": No such file or directory");
    return std::string("fuzz-file-contents\n");
  };
  env.is_directory = [](const std::string& path) { return path.size() % 2 == 0; };
  return env;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ConfigEnvironment env = HermeticEnvironment();
  std::string_view yaml(reinterpret_cast<const char*>(data), size);
  auto load = tracepager::daemon::ParseConfig(yaml, "/etc/tracepager/tracepager.yaml", env);
  // A config, or problems: never both, never neither (daemon/config.h).
  if (load.config.has_value() == !load.problems.empty()) std::abort();
  for (const auto& problem : load.problems) (void)problem.ToString();
  return 0;
}
