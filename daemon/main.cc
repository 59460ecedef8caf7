// tracepager: alert routing by trace. One binary, several subcommands (daemon/commands.h).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "daemon/allocator.h"
#include "daemon/build_info.h"
#include "daemon/commands.h"

// jemalloc's settings for this binary, read by jemalloc at start-up (MALLOC_CONF in the
// environment still overrides them); unused by other allocators. Freed pages go back to the
// system as they are freed: under a sustained storm the daemon frees megabytes a second (claims,
// moves, SQLite's pages), and pages kept for jemalloc's decay time (10 s by default) held its
// resident memory a sixth above what was in use, in swings the load bench's bound did not
// survive (bench/README.md, "Storm memory, third round"). The one exception is the
// acknowledgement arena of the HTTP threads (daemon/allocator.h), whose pages the next webhooks
// take again.
extern "C" {
// NOLINTNEXTLINE(readability-identifier-naming): the name jemalloc looks up
const char* malloc_conf = "dirty_decay_ms:0,muzzy_decay_ms:0";
}

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
