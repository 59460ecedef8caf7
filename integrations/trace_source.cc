#include "integrations/trace_source.h"

namespace tracepager::integrations {

std::optional<std::string> NormalizeTraceId(std::string_view id) {
  // Jaeger v1 and Tempo search drop leading zeros (31-digit ids exist in the fixtures), so
  // shorter ids are padded rather than refused.
  if (id.empty() || id.size() > 32) return std::nullopt;
  std::string out(32 - id.size(), '0');
  out.reserve(32);
  for (char c : id) {
    if (c >= '0' && c <= '9') {
      out.push_back(c);
    } else if (c >= 'a' && c <= 'f') {
      out.push_back(c);
    } else if (c >= 'A' && c <= 'F') {
      out.push_back(static_cast<char>(c - 'A' + 'a'));
    } else {
      return std::nullopt;
    }
  }
  return out;
}

}  // namespace tracepager::integrations
