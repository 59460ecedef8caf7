// Helpers shared by the YAML readers in routing/ (registry, Backstage catalog). Internal to
// tracepager_routing; not an API.
#pragma once

#include <string>

#include "routing/yaml_doc.h"

namespace tracepager::routing::yaml_util {

// 1-based line of `node`.
inline int Line(const YamlNode& node) { return node.line(); }

// "a mapping", "a sequence", "a scalar", "null": for "is X, expected Y" messages.
inline const char* NodeTypeName(const YamlNode& node) { return node.TypeName(); }

inline bool IsBlank(const std::string& s) {
  return s.find_first_not_of(" \t\r\n") == std::string::npos;
}

}  // namespace tracepager::routing::yaml_util
