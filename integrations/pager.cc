#include "integrations/pager.h"

#include <fmt/format.h>

#include "integrations/crypto.h"

namespace tracepager::integrations {

std::string PagerTarget::Key() const {
  // Length-prefixed fields, so ("ab","c") and ("a","bc") cannot hash alike. 16 hex digits
  // (64 bits) name a target uniquely in any real registry and reveal nothing usable about a
  // high-entropy credential.
  std::string material = fmt::format("{}:{}|{}:{}|{}:{}", kind.size(), kind, name.size(), name,
                                     credential.Reveal().size(), credential.Reveal());
  return kind + ":" + Sha256Hex(material).substr(0, 16);
}

std::string PagerTarget::Describe() const {
  std::string out = fmt::format("{} team={}", kind, team.empty() ? "\"\"" : team);
  if (!name.empty()) out += fmt::format(" name={}", name);
  if (!credential.empty()) {
    out += fmt::format(" credential={}", credential);
    if (!credential.origin().empty()) out += fmt::format(" ({})", credential.origin());
  }
  if (!signing_key.empty()) out += fmt::format(" signing_key={}", signing_key);
  return out;
}

}  // namespace tracepager::integrations
