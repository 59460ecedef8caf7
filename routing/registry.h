// The ownership registry: who owns which service, and which team is paged by default.
//
// YAML shape (etc/registry.yaml is the commented example):
//   default_team: platform
//   teams:
//     payments: {}
//   services:
//     payment: {team: payments}
// Loading is validated: unknown team references, duplicate services or teams, empty names,
// unknown keys and wrong node types are errors that name the source and line, e.g.
//   etc/registry.yaml:12: services.payment.team: unknown team "paymnts" (known: ads, cart, ...)
// Every problem found is reported (one per line of Error::message, up to a cap), not just the
// first. Hostile input is refused, never crashes or hangs: the text is capped at
// kMaxRegistryBytes, YAML nesting is bounded, and the number of nodes visited (which YAML
// aliases can multiply) is capped.
// Pure: the caller reads the file and passes the text. A loaded Registry is immutable and safe
// to share between threads.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "routing/result.h"

namespace tracepager::routing {

inline constexpr size_t kMaxRegistryBytes = 64u << 20;

struct Team {
  std::string name;
  int line = 0;  // 1-based line in the source; 0 when not from a file
};

struct ServiceEntry {
  std::string name;
  std::string team;
  int line = 0;
};

class Registry {
 public:
  Registry() = default;

  // Parses registry YAML. `source` names the input in error messages (usually the path).
  // Fails with kInvalidInput listing every problem found.
  static Result<Registry> FromYaml(std::string_view text, std::string_view source);

  // The team paged when nothing better is known; may be empty. When set, it is a known team.
  const std::string& default_team() const { return default_team_; }

  // The entry owning `service_name`, or nullptr when the registry does not know it.
  const ServiceEntry* FindService(std::string_view service_name) const;
  const Team* FindTeam(std::string_view team_name) const;

  const std::map<std::string, Team, std::less<>>& teams() const { return teams_; }
  const std::map<std::string, ServiceEntry, std::less<>>& services() const { return services_; }

 private:
  friend class RegistryParser;

  std::string default_team_;
  std::map<std::string, Team, std::less<>> teams_;
  std::map<std::string, ServiceEntry, std::less<>> services_;
};

}  // namespace tracepager::routing
