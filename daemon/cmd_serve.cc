// Placeholder until the 'serve' subcommand lands; it says so instead of pretending to work.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "daemon/commands.h"

namespace tracepager::daemon {

void AddServeCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("serve", "(not available in this build yet)");
  cmd->allow_extras();
  cmd->callback([exit_code] {
    std::fprintf(stderr, "tracepager serve: not available in this build yet\n");
    *exit_code = 2;
  });
}

}  // namespace tracepager::daemon
