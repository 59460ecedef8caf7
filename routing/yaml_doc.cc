#include "routing/yaml_doc.h"

#include <yaml.h>

#include <cassert>
#include <cstring>
#include <map>
#include <optional>
#include <utility>

namespace tracepager::routing {

// ---- YamlNode ----

YamlNode::Type YamlNode::type() const { return doc_->nodes_[id_].type; }

const std::string& YamlNode::Scalar() const {
  const auto& n = doc_->nodes_[id_];
  return doc_->scalars_[n.type == Type::kScalar ? n.scalar : 0];
}

int YamlNode::line() const { return doc_->nodes_[id_].line; }

size_t YamlNode::size() const {
  const auto& n = doc_->nodes_[id_];
  if (n.type == Type::kSequence) return n.count;
  if (n.type == Type::kMap) return n.count / 2;
  return 0;
}

YamlNode YamlNode::item(size_t i) const {
  assert(IsSequence() && i < size());
  return YamlNode(doc_, doc_->children_[doc_->nodes_[id_].first + i]);
}

YamlNode YamlNode::key(size_t i) const {
  assert(IsMap() && i < size());
  return YamlNode(doc_, doc_->children_[doc_->nodes_[id_].first + 2 * i]);
}

YamlNode YamlNode::value(size_t i) const {
  assert(IsMap() && i < size());
  return YamlNode(doc_, doc_->children_[doc_->nodes_[id_].first + 2 * i + 1]);
}

YamlNode YamlNode::Get(std::string_view k, bool* found) const {
  if (IsMap()) {
    for (size_t i = 0; i < size(); ++i) {
      const YamlNode kn = key(i);
      if (kn.IsScalar() && kn.Scalar() == k) {
        if (found != nullptr) *found = true;
        return value(i);
      }
    }
  }
  if (found != nullptr) *found = false;
  return YamlNode(doc_, 0);  // node 0 is always a Null node
}

const char* YamlNode::TypeName() const {
  switch (type()) {
    case Type::kNull:
      return "null";
    case Type::kScalar:
      return "a scalar";
    case Type::kSequence:
      return "a sequence";
    case Type::kMap:
      return "a mapping";
  }
  return "unknown";
}

// ---- Parsing ----

class YamlDocBuilder {
 public:
  YamlDocBuilder(std::string_view source, const YamlDoc::Limits& limits)
      : source_(source), limits_(limits) {
    doc_.scalars_.emplace_back();
    doc_.nodes_.push_back({});  // node 0: the shared Null returned by YamlNode::Get
  }

  Result<YamlDoc> Run(std::string_view text) {
    if (text.size() > limits_.max_bytes) {
      return Error::InvalidInput(source_ + ": " + std::to_string(text.size()) +
                                 " bytes, more than the limit of " +
                                 std::to_string(limits_.max_bytes));
    }
    yaml_parser_t parser;
    if (yaml_parser_initialize(&parser) == 0) {
      return Error::Internal(source_ + ": cannot initialize the YAML parser");
    }
    yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()),
                                 text.size());
    std::optional<Error> error;
    for (bool done = false; !done && !error;) {
      yaml_event_t event;
      if (yaml_parser_parse(&parser, &event) == 0) {
        error = ParserError(parser);
        break;
      }
      done = event.type == YAML_STREAM_END_EVENT;
      error = Handle(event);
      yaml_event_delete(&event);
    }
    yaml_parser_delete(&parser);
    if (error) return *error;
    return std::move(doc_);
  }

 private:
  struct Frame {
    uint32_t node;
    std::string anchor;
    std::vector<uint32_t> kids;
  };

  Error ParserError(const yaml_parser_t& p) const {
    const size_t line = p.problem_mark.line + 1;
    std::string what = p.problem != nullptr ? p.problem : "malformed input";
    if (p.context != nullptr) what += std::string(" (") + p.context + ")";
    if (p.error == YAML_MEMORY_ERROR) what = "out of memory";
    return Error::InvalidInput(source_ + ":" + std::to_string(line) + ": invalid YAML: " + what);
  }

  Error Fail(const yaml_event_t& e, const std::string& what) const {
    return Error::InvalidInput(source_ + ":" + std::to_string(e.start_mark.line + 1) + ": " + what);
  }

  std::optional<Error> NewNode(const yaml_event_t& e, YamlNode::Type type, uint32_t* id) {
    if (doc_.nodes_.size() + aliases_ >= limits_.max_nodes) {
      return Fail(e, "more than " + std::to_string(limits_.max_nodes) + " YAML nodes");
    }
    *id = static_cast<uint32_t>(doc_.nodes_.size());
    doc_.nodes_.push_back({type, static_cast<int>(e.start_mark.line + 1), 0, 0, 0});
    return std::nullopt;
  }

  // Attaches a finished node to the open collection, or makes it the document's root.
  void Attach(uint32_t id) {
    if (stack_.empty()) {
      doc_.documents_.push_back(id);
    } else {
      stack_.back().kids.push_back(id);
    }
  }

  static std::string Anchor(const yaml_char_t* a) {
    return a == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(a));
  }

  static bool IsNullScalar(const yaml_event_t& e) {
    const auto& s = e.data.scalar;
    if (s.tag != nullptr &&
        std::strcmp(reinterpret_cast<const char*>(s.tag), "tag:yaml.org,2002:null") == 0) {
      return true;
    }
    if (s.style != YAML_PLAIN_SCALAR_STYLE || s.tag != nullptr) return false;
    const std::string_view v(reinterpret_cast<const char*>(s.value), s.length);
    return v.empty() || v == "~" || v == "null" || v == "Null" || v == "NULL";
  }

  std::optional<Error> Handle(const yaml_event_t& e) {
    switch (e.type) {
      case YAML_SCALAR_EVENT: {
        uint32_t id = 0;
        const bool is_null = IsNullScalar(e);
        if (auto err = NewNode(e, is_null ? YamlNode::Type::kNull : YamlNode::Type::kScalar, &id)) {
          return err;
        }
        if (!is_null) {
          doc_.nodes_[id].scalar = static_cast<uint32_t>(doc_.scalars_.size());
          doc_.scalars_.emplace_back(reinterpret_cast<const char*>(e.data.scalar.value),
                                     e.data.scalar.length);
        }
        if (e.data.scalar.anchor != nullptr) anchors_[Anchor(e.data.scalar.anchor)] = id;
        Attach(id);
        return std::nullopt;
      }
      case YAML_SEQUENCE_START_EVENT:
      case YAML_MAPPING_START_EVENT: {
        if (stack_.size() >= limits_.max_depth) {
          return Fail(e,
                      "YAML nested deeper than " + std::to_string(limits_.max_depth) + " levels");
        }
        const bool map = e.type == YAML_MAPPING_START_EVENT;
        uint32_t id = 0;
        if (auto err = NewNode(e, map ? YamlNode::Type::kMap : YamlNode::Type::kSequence, &id)) {
          return err;
        }
        stack_.push_back(Frame{
            id, Anchor(map ? e.data.mapping_start.anchor : e.data.sequence_start.anchor), {}});
        return std::nullopt;
      }
      case YAML_SEQUENCE_END_EVENT:
      case YAML_MAPPING_END_EVENT: {
        if (stack_.empty()) return Fail(e, "unbalanced YAML collection end");
        Frame f = std::move(stack_.back());
        stack_.pop_back();
        auto& n = doc_.nodes_[f.node];
        n.first = static_cast<uint32_t>(doc_.children_.size());
        n.count = static_cast<uint32_t>(f.kids.size());
        doc_.children_.insert(doc_.children_.end(), f.kids.begin(), f.kids.end());
        // Registered only now: an alias inside its own anchor's node would be a cycle.
        if (!f.anchor.empty()) anchors_[f.anchor] = f.node;
        Attach(f.node);
        return std::nullopt;
      }
      case YAML_ALIAS_EVENT: {
        auto it = anchors_.find(Anchor(e.data.alias.anchor));
        if (it == anchors_.end()) {
          return Fail(
              e, "alias *" + Anchor(e.data.alias.anchor) + " names no complete anchor before it");
        }
        if (++aliases_ + doc_.nodes_.size() >= limits_.max_nodes) {
          return Fail(e, "more than " + std::to_string(limits_.max_nodes) + " YAML nodes");
        }
        Attach(it->second);
        return std::nullopt;
      }
      case YAML_DOCUMENT_START_EVENT:
        anchors_.clear();  // anchors do not cross documents
        return std::nullopt;
      default:
        return std::nullopt;
    }
  }

  std::string source_;
  YamlDoc::Limits limits_;
  YamlDoc doc_;
  std::vector<Frame> stack_;
  std::map<std::string, uint32_t> anchors_;
  size_t aliases_ = 0;
};

Result<YamlDoc> YamlDoc::Parse(std::string_view text, std::string_view source,
                               const Limits& limits) {
  return YamlDocBuilder(source, limits).Run(text);
}

}  // namespace tracepager::routing
