// The rules behind `tracepager registry check`: what makes a registry untrustworthy.
//
// Findings, each with where it is (file:line when known):
//   invalid-registry    the local registry has a problem that makes it fail to load (a bad URL,
//                       an alias collision, a future date, an unresolvable secret...)
//   dangling-reference  a team, fallback or Backstage owner reference that names nothing
//   unowned-service     a service (or uninstrumented peer) seen in traces that no entry or alias
//                       owns; for a peer, pages fall back to its caller's owner
//   no-pager-target     a team with no pager target that can page and no fallback, or whose
//                       fallback chain reaches no team that can page. Backstage Groups count only
//                       when they own something.
//   not-reviewed        with a maximum age: a local service never reviewed or reviewed longer
//                       ago than allowed; a team whose `reviewed` date is too old. Backstage
//                       entries carry no review date and are not checked.
//   backstage-conflict  local YAML and Backstage disagree (local wins; see MergeBackstage)
//   backstage-invalid   a catalog entity that could not be used
// Pure: no clock (today comes in), no I/O.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "routing/backstage.h"
#include "routing/civil_date.h"
#include "routing/registry.h"

namespace tracepager::routing {

struct Finding {
  enum class Kind {
    kInvalidRegistry,
    kDanglingReference,
    kUnownedService,
    kNoPagerTarget,
    kNotReviewed,
    kBackstageConflict,
    kBackstageInvalid,
  };
  Kind kind = Kind::kInvalidRegistry;
  std::string subject;  // "service payment", "team ads", "peer postgresql/orders"
  std::string where;    // "etc/registry.yaml:12"; empty when not from a file
  std::string message;
  std::string ToString() const;  // "where: kind: subject: message"
};
const char* FindingKindName(Finding::Kind kind);  // "invalid-registry", ...

// A service name seen in traces.
struct ObservedService {
  std::string name;
  bool is_virtual = false;           // an uninstrumented peer named by client spans
  std::vector<std::string> callers;  // for virtual peers: the services that call it
};

struct CheckInputs {
  const Registry* registry = nullptr;             // the merged registry. REQUIRES: non-null
  std::vector<RegistryProblem> load_problems;     // Registry::Lint's problems for the local file
  std::vector<MergeConflict> conflicts;           // from MergeBackstage
  std::vector<RegistryProblem> dangling;          // from MergeBackstage
  std::vector<RegistryProblem> catalog_problems;  // from the Backstage readers
  std::vector<ObservedService> observed;          // from the traces (routing/deps.h)
};

struct CheckOptions {
  CivilDate today;
  std::optional<int> max_age_days;  // unset: review dates are not checked
};

// Every finding, grouped by kind in the order above, each group sorted by subject.
std::vector<Finding> CheckRegistry(const CheckInputs& inputs, const CheckOptions& options);

}  // namespace tracepager::routing
