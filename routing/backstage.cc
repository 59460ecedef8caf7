// Backstage catalog readers (YAML and the catalog API's JSON). Both forms are reduced to the
// same EntityFields and turned into BackstageEntity by one function, so the two readers cannot
// drift apart. The merge into a Registry is in backstage_merge.cc.
#include "routing/backstage.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "routing/json_util.h"
#include "routing/yaml_doc.h"

namespace tracepager::routing {
namespace {

constexpr size_t kMaxEntities = 200'000;
constexpr size_t kMaxProblems = 200;
// Each document costs at most a few dozen visits; aliases in YAML could multiply that.
constexpr long kVisitBudget = 8'000'000;

constexpr const char* kAnnotationPdKey = "pagerduty.com/integration-key";
constexpr const char* kAnnotationPdService = "pagerduty.com/service-id";
constexpr const char* kAnnotationOpsgenieTeam = "opsgenie.com/team";
// No annotation is standard for a Slack channel; these two are in use: `slack.com/channel`
// (community convention) and `slack.com/bot-notify` (Backstage's Slack notifications module).
constexpr const char* kAnnotationSlack[] = {"slack.com/channel", "slack.com/bot-notify"};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// What either reader extracts from one entity document; absent fields stay empty.
struct EntityFields {
  bool has_kind = false;
  std::string kind;
  std::string api_version;
  std::string name;
  std::string ns;
  std::string type;
  std::string owner;
  std::map<std::string, std::string> annotations;
  std::vector<std::string> owned_by;     // relations of type ownedBy, as refs
  std::vector<std::string> wrong_types;  // "metadata.name is a number" ...
};

class EntityBuilder {
 public:
  explicit EntityBuilder(std::string_view source) : source_(source) {}

  void Add(EntityFields f, int line, int index) {
    const std::string where = line > 0 ? "" : "entity " + std::to_string(index) + ": ";
    if (!f.wrong_types.empty()) {
      for (const std::string& w : f.wrong_types) Problem(line, where + w + "; entity skipped");
      return;
    }
    if (!f.has_kind) {
      Problem(line, where + "no \"kind\": not a Backstage entity; skipped");
      return;
    }
    const std::string kind = Lower(f.kind);
    if (kind != "component" && kind != "resource" && kind != "group" && kind != "user") {
      ++catalog_.skipped;  // System, API, Location, Domain, Template...: legal, not used here
      return;
    }
    if (f.name.empty()) {
      Problem(line, where + f.kind + " without metadata.name; skipped");
      return;
    }
    if (catalog_.entities.size() >= kMaxEntities) {
      if (!too_many_) Problem(line, "more than " + std::to_string(kMaxEntities) + " entities");
      too_many_ = true;
      return;
    }
    BackstageEntity e;
    e.kind = f.kind;
    e.ref = EntityRef{kind, f.ns.empty() ? "default" : Lower(f.ns), f.name};
    e.type = f.type;
    e.source = source_;
    e.line = line;
    const std::string label = e.ref.ToString();
    if (kind == "component" || kind == "resource") {
      // The ownedBy relation is what the catalog resolved spec.owner to; prefer it.
      for (const std::string& r : f.owned_by) {
        if (auto ref = ParseEntityRef(r, "group", e.ref.ns)) {
          e.owner = *ref;
          e.owner_written = r;
          break;
        }
      }
      if (!e.owner && !f.owner.empty()) {
        // Backstage: a bare owner is a Group in the entity's own namespace.
        e.owner = ParseEntityRef(f.owner, "group", e.ref.ns);
        e.owner_written = f.owner;
        if (!e.owner)
          Problem(line, label + ": spec.owner \"" + f.owner + "\" is not an entity ref");
      }
      if (!e.owner && f.owner.empty()) Problem(line, label + ": no spec.owner");
    }
    for (const auto& [key, value] : f.annotations) {
      if (value.empty()) continue;
      if (key == kAnnotationPdKey) {
        // A routing key written into the catalog is still a secret: keep it as an inline
        // Secret that names where it was found, never the value.
        e.pagerduty_integration_key =
            Secret(SecretRef{SecretRef::Kind::kInline,
                             "annotation " + std::string(kAnnotationPdKey) + " of " + label},
                   value);
      } else if (key == kAnnotationPdService) {
        e.pagerduty_service_id = value;
      } else if (key == kAnnotationOpsgenieTeam) {
        e.opsgenie_team = value;
      } else if (std::find(std::begin(kAnnotationSlack), std::end(kAnnotationSlack), key) !=
                 std::end(kAnnotationSlack)) {
        if (e.slack_channel.empty()) e.slack_channel = value;
      }
    }
    catalog_.entities.push_back(std::move(e));
  }

  void Problem(int line, std::string message) {
    if (catalog_.problems.size() >= kMaxProblems) return;
    catalog_.problems.push_back(RegistryProblem{source_, line, "", std::move(message)});
  }

  BackstageCatalog Take() { return std::move(catalog_); }

 private:
  std::string source_;
  BackstageCatalog catalog_;
  bool too_many_ = false;
};

// ---- YAML ----

class YamlEntityReader {
 public:
  // Fills `f` from the document `doc`; false once the visit budget is spent.
  bool Read(const YamlNode& doc, EntityFields* f) {
    if (!doc.IsMap()) {
      f->wrong_types.push_back(std::string("document is ") + doc.TypeName() +
                               ", expected a mapping");
      return true;
    }
    for (size_t i = 0; i < doc.size(); ++i) {
      if (!Visit()) return false;
      if (!doc.key(i).IsScalar()) continue;
      const std::string& key = doc.key(i).Scalar();
      const YamlNode value = doc.value(i);
      if (key == "kind") {
        f->has_kind = Scalar(value, "kind", &f->kind, f);
      } else if (key == "apiVersion") {
        Scalar(value, "apiVersion", &f->api_version, f);
      } else if (key == "metadata") {
        if (!Map(value, "metadata", f)) continue;
        for (size_t m = 0; m < value.size(); ++m) {
          if (!Visit()) return false;
          if (!value.key(m).IsScalar()) continue;
          const std::string& mk = value.key(m).Scalar();
          const YamlNode mv = value.value(m);
          if (mk == "name") {
            Scalar(mv, "metadata.name", &f->name, f);
          } else if (mk == "namespace") {
            Scalar(mv, "metadata.namespace", &f->ns, f);
          } else if (mk == "annotations" && Map(mv, "metadata.annotations", f)) {
            for (size_t a = 0; a < mv.size(); ++a) {
              if (!Visit()) return false;
              // Annotation values are strings in Backstage; other shapes are ignored.
              if (mv.key(a).IsScalar() && mv.value(a).IsScalar()) {
                f->annotations[mv.key(a).Scalar()] = mv.value(a).Scalar();
              }
            }
          }
        }
      } else if (key == "spec") {
        if (!Map(value, "spec", f)) continue;
        for (size_t sp = 0; sp < value.size(); ++sp) {
          if (!Visit()) return false;
          if (!value.key(sp).IsScalar()) continue;
          const std::string& sk = value.key(sp).Scalar();
          if (sk == "owner") Scalar(value.value(sp), "spec.owner", &f->owner, f);
          if (sk == "type" && value.value(sp).IsScalar()) f->type = value.value(sp).Scalar();
        }
      } else if (key == "relations" && value.IsSequence()) {
        for (size_t r = 0; r < value.size(); ++r) {
          if (!Visit()) return false;
          const YamlNode rel = value.item(r);
          const YamlNode type = rel.Get("type");
          const YamlNode target = rel.Get("targetRef");
          if (type.IsScalar() && type.Scalar() == "ownedBy" && target.IsScalar()) {
            f->owned_by.push_back(target.Scalar());
          }
        }
      }
    }
    return true;
  }

  bool exhausted() const { return budget_ < 0; }

 private:
  bool Visit() { return --budget_ >= 0; }

  static bool Scalar(const YamlNode& n, const char* what, std::string* out, EntityFields* f) {
    if (n.IsScalar()) {
      *out = n.Scalar();
      return true;
    }
    f->wrong_types.push_back(std::string(what) + " is " + n.TypeName() + ", expected a string");
    return false;
  }
  static bool Map(const YamlNode& n, const char* what, EntityFields* f) {
    if (n.IsMap()) return true;
    if (n.IsNull()) return false;
    f->wrong_types.push_back(std::string(what) + " is " + n.TypeName() + ", expected a mapping");
    return false;
  }

  long budget_ = kVisitBudget;
};

// ---- JSON ----

using internal::JsonTypeName;

void JsonString(const rapidjson::Value& obj, const char* key, const char* what, std::string* out,
                EntityFields* f, bool* present = nullptr) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) return;
  if (!it->value.IsString()) {
    f->wrong_types.push_back(std::string(what) + " is " + JsonTypeName(it->value) +
                             ", expected a string");
    return;
  }
  *out = std::string(it->value.GetString(), it->value.GetStringLength());
  if (present != nullptr) *present = true;
}

EntityFields ReadJsonEntity(const rapidjson::Value& v) {
  EntityFields f;
  if (!v.IsObject()) {
    f.wrong_types.push_back(std::string("is ") + JsonTypeName(v) + ", expected an object");
    return f;
  }
  JsonString(v, "kind", "kind", &f.kind, &f, &f.has_kind);
  JsonString(v, "apiVersion", "apiVersion", &f.api_version, &f);
  if (auto m = v.FindMember("metadata"); m != v.MemberEnd()) {
    if (!m->value.IsObject()) {
      f.wrong_types.push_back(std::string("metadata is ") + JsonTypeName(m->value) +
                              ", expected an object");
    } else {
      const rapidjson::Value& md = m->value;
      JsonString(md, "name", "metadata.name", &f.name, &f);
      JsonString(md, "namespace", "metadata.namespace", &f.ns, &f);
      if (auto a = md.FindMember("annotations"); a != md.MemberEnd() && a->value.IsObject()) {
        for (const auto& kv : a->value.GetObject()) {
          if (kv.value.IsString()) {
            f.annotations[std::string(kv.name.GetString(), kv.name.GetStringLength())] =
                std::string(kv.value.GetString(), kv.value.GetStringLength());
          }
        }
      }
    }
  }
  if (auto s = v.FindMember("spec"); s != v.MemberEnd() && s->value.IsObject()) {
    JsonString(s->value, "owner", "spec.owner", &f.owner, &f);
    if (auto t = s->value.FindMember("type"); t != s->value.MemberEnd() && t->value.IsString()) {
      f.type = t->value.GetString();
    }
  }
  if (auto r = v.FindMember("relations"); r != v.MemberEnd() && r->value.IsArray()) {
    for (const rapidjson::Value& rel : r->value.GetArray()) {
      if (!rel.IsObject()) continue;
      auto type = rel.FindMember("type");
      if (type == rel.MemberEnd() || !type->value.IsString() ||
          std::string_view(type->value.GetString()) != "ownedBy") {
        continue;
      }
      if (auto tr = rel.FindMember("targetRef"); tr != rel.MemberEnd() && tr->value.IsString()) {
        f.owned_by.emplace_back(tr->value.GetString(), tr->value.GetStringLength());
        continue;
      }
      // Older Backstage emitted only `target: {kind, namespace, name}`.
      auto t = rel.FindMember("target");
      if (t == rel.MemberEnd() || !t->value.IsObject()) continue;
      const rapidjson::Value& o = t->value;
      auto k = o.FindMember("kind");
      auto n = o.FindMember("namespace");
      auto nm = o.FindMember("name");
      if (k != o.MemberEnd() && k->value.IsString() && nm != o.MemberEnd() &&
          nm->value.IsString()) {
        std::string ns =
            n != o.MemberEnd() && n->value.IsString() ? n->value.GetString() : "default";
        f.owned_by.push_back(std::string(k->value.GetString()) + ":" + ns + "/" +
                             nm->value.GetString());
      }
    }
  }
  return f;
}

}  // namespace

std::string EntityRef::ToString() const { return kind + ":" + ns + "/" + name; }

std::optional<EntityRef> ParseEntityRef(std::string_view ref, std::string_view default_kind,
                                        std::string_view default_ns) {
  EntityRef out;
  out.kind = Lower(default_kind);
  out.ns = Lower(default_ns);
  std::string_view rest = ref;
  if (const size_t colon = rest.find(':'); colon != std::string_view::npos) {
    out.kind = Lower(rest.substr(0, colon));
    rest = rest.substr(colon + 1);
    if (out.kind.empty()) return std::nullopt;
  }
  if (const size_t slash = rest.find('/'); slash != std::string_view::npos) {
    out.ns = Lower(rest.substr(0, slash));
    rest = rest.substr(slash + 1);
    if (out.ns.empty()) return std::nullopt;
  }
  if (rest.empty() || rest.find_first_of(":/ \t\r\n") != std::string_view::npos) {
    return std::nullopt;
  }
  out.name = std::string(rest);
  return out;
}

std::string TeamNameFor(const EntityRef& owner) {
  const std::string ns_name = owner.ns == "default" ? owner.name : owner.ns + "/" + owner.name;
  if (owner.kind == "group") return ns_name;
  if (owner.kind == "user") return "user:" + ns_name;
  return owner.kind + ":" + owner.ns + "/" + owner.name;
}

Result<BackstageCatalog> ParseBackstageYaml(std::string_view text, std::string_view source) {
  if (text.size() > kMaxCatalogBytes) {
    return Error::InvalidInput(std::string(source) + ": catalog is " + std::to_string(text.size()) +
                               " bytes, more than the limit of " +
                               std::to_string(kMaxCatalogBytes));
  }
  Result<YamlDoc> docs = YamlDoc::Parse(text, source, YamlDoc::Limits{kMaxCatalogBytes});
  if (!docs.ok()) return docs.error();
  EntityBuilder builder(source);
  YamlEntityReader reader;
  for (size_t i = 0; i < docs->document_count(); ++i) {
    const YamlNode doc = docs->document(i);
    if (doc.IsNull()) continue;  // an empty document between `---` separators
    EntityFields f;
    if (!reader.Read(doc, &f)) break;
    builder.Add(std::move(f), doc.line(), static_cast<int>(i + 1));
  }
  if (reader.exhausted()) {
    return Error::InvalidInput(std::string(source) +
                               ": catalog expands to too many nodes (YAML aliases?); refusing it");
  }
  return builder.Take();
}

Result<BackstageCatalog> ParseBackstageJson(std::string_view text, std::string_view source) {
  if (text.size() > kMaxCatalogBytes) {
    return Error::InvalidInput(std::string(source) + ": catalog is " + std::to_string(text.size()) +
                               " bytes, more than the limit of " +
                               std::to_string(kMaxCatalogBytes));
  }
  rapidjson::Document doc;
  // Iterative parsing: nesting depth cannot overflow the stack.
  doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  if (doc.HasParseError()) {
    return Error::InvalidInput(std::string(source) + ": invalid JSON at byte " +
                               std::to_string(doc.GetErrorOffset()) + ": " +
                               rapidjson::GetParseError_En(doc.GetParseError()));
  }
  const rapidjson::Value* items = nullptr;
  if (doc.IsArray()) {
    items = &doc;  // GET /api/catalog/entities
  } else if (doc.IsObject()) {
    auto it = doc.FindMember("items");  // GET /api/catalog/entities/by-query
    if (it == doc.MemberEnd() || !it->value.IsArray()) {
      return Error::InvalidInput(std::string(source) +
                                 ": a catalog API answer is an array of entities or an object "
                                 "with an \"items\" array");
    }
    items = &it->value;
  } else {
    return Error::InvalidInput(std::string(source) + ": catalog JSON is " + JsonTypeName(doc) +
                               ", expected an array or an object with \"items\"");
  }
  EntityBuilder builder(source);
  int index = 0;
  for (const rapidjson::Value& v : items->GetArray()) {
    builder.Add(ReadJsonEntity(v), 0, index++);
  }
  return builder.Take();
}

}  // namespace tracepager::routing
