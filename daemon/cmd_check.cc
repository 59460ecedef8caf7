// `tracepager check --config FILE`: the checks `serve` runs at start and on reload, without
// starting anything, for CI pipelines and systemd's ExecStartPre. Exit 0 with one OK line on
// stdout; exit 1 with every problem on stderr, one per line (`FILE:LINE: ...`).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "daemon/commands.h"
#include "daemon/config.h"
#include "daemon/delivery_setup.h"
#include "daemon/registry_loader.h"

namespace tracepager::daemon {
namespace {

int RunCheck(const std::string& config_path) {
  ConfigLoad load = LoadConfigFile(config_path, ConfigEnvironment::Process());
  if (!load.config) {
    for (const ConfigProblem& p : load.problems) std::fprintf(stderr, "%s\n", p.ToString().c_str());
    std::fprintf(stderr, "tracepager check: %zu problem%s in %s\n", load.problems.size(),
                 load.problems.size() == 1 ? "" : "s", config_path.c_str());
    return 1;
  }
  const Config& config = *load.config;
  Result<LoadedRegistry> registry = LoadRegistry(config.registry, PagerNeedsSecrets(config.pager));
  if (!registry.ok()) {
    std::fprintf(stderr, "%s\n", registry.error().message.c_str());
    std::fprintf(stderr, "tracepager check: the registry %s has problems\n",
                 config.registry.path.c_str());
    return 1;
  }
  // Backstage findings do not fail the check (local entries win), but a person should see them.
  for (const std::string& note : registry->notes) std::fprintf(stderr, "note: %s\n", note.c_str());
  // Registry targets that the configured pagers cannot use. `serve` runs with them (their pages
  // fall back, which beats refusing to start a pager), but a check is where they are fixed.
  std::vector<std::string> unusable;
  (void)BuildTargetDirectory(config, *registry->registry, &unusable);
  if (!unusable.empty()) {
    for (const std::string& p : unusable) {
      std::fprintf(stderr, "%s: pager target problem: %s\n", config.registry.path.c_str(),
                   p.c_str());
    }
    std::fprintf(stderr,
                 "tracepager check: %zu registry target%s cannot page with the pagers of %s\n",
                 unusable.size(), unusable.size() == 1 ? "" : "s", config_path.c_str());
    return 1;
  }
  std::printf("tracepager check: OK: %s (registry %s: %zu teams, %zu services)\n",
              config_path.c_str(), config.registry.path.c_str(), registry->registry->teams().size(),
              registry->registry->services().size());
  return 0;
}

}  // namespace

void AddCheckCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "check", "Validate the daemon's config and the registry it names; exit 1 on problems");
  auto config_path = std::make_shared<std::string>();
  cmd->add_option("--config", *config_path, "The daemon config (YAML)")->required();
  cmd->callback([exit_code, config_path] { *exit_code = RunCheck(*config_path); });
}

}  // namespace tracepager::daemon
