// YamlDoc: a small read-only YAML tree for the registry and Backstage readers, built from
// libyaml's event parser.
//
// Why not yaml-cpp's YAML::Load: it parses about 5 MB/s, so a registry of 10,000 services takes
// most of a second before any checking starts; libyaml's parser is about ten times faster
// (bench/registry_bench.cc measures both). The tree also gives the readers what they need and
// yaml-cpp hides: every mapping key in document order, duplicates included (a duplicate
// service must be an error, not silently one of the two), with its line.
//
// Shape: scalars keep their text; a plain empty scalar, `~` and `null`/`Null`/`NULL` (and the
// !!null tag) are Null; mappings keep (key, value) pairs in order. An alias (`*a`) refers to
// the anchored node itself, so the tree stays linear in the input size; walking code must still
// bound the work a node referenced many times can cause (the readers keep a visit budget).
// Limits: input bytes, nesting depth and node count are capped; exceeding one is an error, as is
// invalid YAML or an alias to an unknown (or not yet complete) anchor.
// Immutable after Parse; safe to share between threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "routing/result.h"

namespace tracepager::routing {

class YamlDoc;

// A node handle: cheap to copy; valid while its YamlDoc lives.
class YamlNode {
 public:
  enum class Type : uint8_t { kNull, kScalar, kSequence, kMap };

  YamlNode(const YamlDoc* doc, uint32_t id) : doc_(doc), id_(id) {}

  Type type() const;
  bool IsNull() const { return type() == Type::kNull; }
  bool IsScalar() const { return type() == Type::kScalar; }
  bool IsSequence() const { return type() == Type::kSequence; }
  bool IsMap() const { return type() == Type::kMap; }
  // The scalar's text; empty for other types.
  const std::string& Scalar() const;
  // 1-based line where the node starts.
  int line() const;
  // Items of a sequence, pairs of a mapping, 0 otherwise.
  size_t size() const;
  // REQUIRES: IsSequence(); i < size().
  YamlNode item(size_t i) const;
  // REQUIRES: IsMap(); i < size().
  YamlNode key(size_t i) const;
  YamlNode value(size_t i) const;
  // The value of the first scalar key equal to `key` in a mapping, or a Null node
  // (found=false) when there is none or this is not a mapping.
  YamlNode Get(std::string_view key, bool* found = nullptr) const;

  const char* TypeName() const;  // "a mapping", "a sequence", "a scalar", "null"

 private:
  const YamlDoc* doc_;
  uint32_t id_;
};

class YamlDoc {
 public:
  struct Limits {
    size_t max_bytes = 64u << 20;
    unsigned max_depth = 64;  // real registries and catalogs need < 10
    size_t max_nodes = 8'000'000;
  };

  // Parses every document of `text` (`---` separated). Errors name `source` and the line:
  // "reg.yaml:3: invalid YAML: did not find expected node content (while parsing a flow node)".
  static Result<YamlDoc> Parse(std::string_view text, std::string_view source,
                               const Limits& limits);
  static Result<YamlDoc> Parse(std::string_view text, std::string_view source) {
    return Parse(text, source, Limits{});
  }

  size_t document_count() const { return documents_.size(); }
  YamlNode document(size_t i) const { return YamlNode(this, documents_[i]); }

 private:
  friend class YamlNode;
  friend class YamlDocBuilder;

  struct Node {
    YamlNode::Type type = YamlNode::Type::kNull;
    int line = 0;
    uint32_t scalar = 0;  // index into scalars_ (kScalar)
    uint32_t first = 0;   // index into children_ (collections)
    uint32_t count = 0;   // children: items, or 2 x pairs
  };

  std::vector<Node> nodes_;
  std::vector<std::string> scalars_;  // scalars_[0] is the empty string
  std::vector<uint32_t> children_;
  std::vector<uint32_t> documents_;
};

}  // namespace tracepager::routing
