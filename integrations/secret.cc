#include "integrations/secret.h"

namespace tracepager::integrations {

std::string Redact(std::string_view text, const std::vector<const Secret*>& secrets) {
  std::string out(text);
  for (const Secret* secret : secrets) {
    if (secret == nullptr || secret->empty()) continue;
    const std::string& value = secret->Reveal();
    size_t pos = 0;
    while ((pos = out.find(value, pos)) != std::string::npos) {
      out.replace(pos, value.size(), kRedacted);
      pos += kRedacted.size();
    }
  }
  return out;
}

}  // namespace tracepager::integrations
