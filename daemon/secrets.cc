#include "daemon/secrets.h"

#include <cstdlib>

#include "daemon/file_util.h"

namespace tracepager::daemon {

Result<std::string> ResolveSecret(const routing::SecretRef& ref) {
  switch (ref.kind) {
    case routing::SecretRef::Kind::kEnv: {
      const char* value = std::getenv(ref.name.c_str());
      if (value == nullptr) return Error::NotFound(ref.Describe() + " is not set");
      if (*value == '\0') return Error::NotFound(ref.Describe() + " is set but empty");
      return std::string(value);
    }
    case routing::SecretRef::Kind::kFile: {
      // ReadFileCapped's messages start with the path and never include file contents.
      Result<std::string> data = ReadFileCapped(ref.name, kMaxSecretFileBytes);
      if (!data.ok()) return Error::NotFound("secret file " + data.error().message);
      return std::move(data).value();
    }
    case routing::SecretRef::Kind::kInline:
      break;
  }
  return Error::Internal(ref.Describe() + ": an inline secret has no reference to resolve");
}

routing::SecretResolver SystemSecretResolver() { return &ResolveSecret; }

}  // namespace tracepager::daemon
