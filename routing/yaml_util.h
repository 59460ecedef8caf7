// Helpers shared by the YAML readers in routing/ (registry, Backstage catalog). Internal to
// tracepager_routing; not an API. Includes yaml-cpp, so only .cc files include it.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

namespace tracepager::routing::yaml_util {

// 1-based line of `node`, 0 when yaml-cpp has no mark for it.
inline int Line(const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  return mark.is_null() ? 0 : mark.line + 1;
}

// "a mapping", "a sequence", "a scalar", "null": for "is X, expected Y" messages.
inline const char* NodeTypeName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Undefined:
      return "undefined";
  }
  return "unknown";
}

inline bool IsBlank(const std::string& s) {
  return s.find_first_not_of(" \t\r\n") == std::string::npos;
}

}  // namespace tracepager::routing::yaml_util
