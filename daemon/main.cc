// tracepager: alert routing by trace. One binary, several subcommands (daemon/commands.h).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "daemon/allocator.h"
#include "daemon/build_info.h"
#include "daemon/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"tracepager: pages the team closest to the failure behind a symptom alert"};
  app.set_version_flag("--version", std::string(TRACEPAGER_VERSION) +
                                        " (malloc: " + tracepager::daemon::AllocatorInUse() + ")");
  app.require_subcommand(1);
  int exit_code = 0;
  tracepager::daemon::AddServeCommand(app, &exit_code);
  tracepager::daemon::AddRouteCommand(app, &exit_code);
  tracepager::daemon::AddCheckCommand(app, &exit_code);
  tracepager::daemon::AddRegistryCommand(app, &exit_code);
  tracepager::daemon::AddAuditCommand(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;  // usage errors exit 2, like bad input
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tracepager: internal error: %s\n", e.what());
    return 70;
  }
  return exit_code;
}
