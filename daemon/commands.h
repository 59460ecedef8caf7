// The `tracepager` subcommands. Each Add*Command registers one subcommand on `app`; when it runs,
// its callback stores the process exit code in *exit_code (0 success, 2 bad input or usage,
// 1 a check that found problems, where the command documents it).
#pragma once

namespace CLI {
class App;
}

namespace tracepager::daemon {

void AddRouteCommand(CLI::App& app, int* exit_code);
void AddRegistryCommand(CLI::App& app, int* exit_code);
void AddServeCommand(CLI::App& app, int* exit_code);
void AddCheckCommand(CLI::App& app, int* exit_code);
void AddAuditCommand(CLI::App& app, int* exit_code);

}  // namespace tracepager::daemon
