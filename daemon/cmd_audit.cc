// Placeholder until the 'audit' subcommand lands; it says so instead of pretending to work.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "daemon/commands.h"

namespace tracepager::daemon {

void AddAuditCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("audit", "(not available in this build yet)");
  cmd->allow_extras();
  cmd->callback([exit_code] {
    std::fprintf(stderr, "tracepager audit: not available in this build yet\n");
    *exit_code = 2;
  });
}

}  // namespace tracepager::daemon
