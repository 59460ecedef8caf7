#include "routing/secret.h"

namespace tracepager::routing {

std::string SecretRef::Describe() const {
  switch (kind) {
    case Kind::kFile:
      return "file \"" + name + "\"";
    case Kind::kEnv:
      return "env " + name;
    case Kind::kInline:
      return name;
  }
  return name;
}

}  // namespace tracepager::routing
