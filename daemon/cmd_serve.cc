// `tracepager serve --config FILE`: the webhook daemon (daemon/server_app.h). Logs go to
// stderr, one event per line with key=value pairs; under systemd (JOURNAL_STREAM set) without a
// timestamp, which the journal adds.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "daemon/commands.h"
#include "daemon/server_app.h"

namespace tracepager::daemon {

void AddServeCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("serve", "Run the webhook daemon");
  auto config_path = std::make_shared<std::string>();
  cmd->add_option("--config", *config_path, "The daemon config (YAML)")->required();
  cmd->callback([exit_code, config_path] {
    auto logger = spdlog::stderr_logger_mt("tracepager");
    logger->set_pattern(
        std::getenv("JOURNAL_STREAM") != nullptr ? "%l %v" : "%Y-%m-%dT%H:%M:%S.%eZ %l %v",
        spdlog::pattern_time_type::utc);
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
    Result<std::unique_ptr<ServerApp>> server = ServerApp::Start(*config_path);
    if (!server.ok()) {
      std::fprintf(stderr, "tracepager serve: cannot start:\n%s\n", server.error().message.c_str());
      *exit_code = 1;
      return;
    }
    *exit_code = (*server)->Run();
  });
}

}  // namespace tracepager::daemon
