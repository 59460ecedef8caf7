#include "routing/yaml_doc.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace tracepager::routing {
namespace {

using ::testing::HasSubstr;

YamlDoc Parse(const std::string& text) {
  auto d = YamlDoc::Parse(text, "t.yaml");
  EXPECT_TRUE(d.ok()) << d.error().message;
  return d.ok() ? std::move(*d) : *YamlDoc::Parse("", "t.yaml");
}

TEST(YamlDoc, MappingsKeepEveryKeyInOrderWithLines) {
  const YamlDoc d = Parse("a: 1\nb:\n  - x\n  - 'y'\na: {c: d}\n");
  ASSERT_EQ(d.document_count(), 1u);
  const YamlNode root = d.document(0);
  ASSERT_TRUE(root.IsMap());
  ASSERT_EQ(root.size(), 3u);  // the duplicate `a` is kept
  EXPECT_EQ(root.key(0).Scalar(), "a");
  EXPECT_EQ(root.key(2).Scalar(), "a");
  EXPECT_EQ(root.key(2).line(), 5);
  EXPECT_TRUE(root.value(2).IsMap());
  EXPECT_EQ(root.value(2).Get("c").Scalar(), "d");
  const YamlNode b = root.value(1);
  ASSERT_TRUE(b.IsSequence());
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b.item(1).Scalar(), "y");
  EXPECT_EQ(b.item(1).line(), 4);
  bool found = true;
  EXPECT_TRUE(root.Get("zz", &found).IsNull());
  EXPECT_FALSE(found);
  EXPECT_EQ(root.Get("a", &found).Scalar(), "1");  // the first one
  EXPECT_TRUE(found);
}

TEST(YamlDoc, NullsAndEmptyStrings) {
  const YamlDoc d = Parse("a:\nb: ~\nc: null\nd: NULL\ne: !!null x\nf: ''\ng: \"null\"\nh: 0\n");
  const YamlNode r = d.document(0);
  for (const char* k : {"a", "b", "c", "d", "e"}) EXPECT_TRUE(r.Get(k).IsNull()) << k;
  EXPECT_TRUE(r.Get("f").IsScalar());
  EXPECT_EQ(r.Get("f").Scalar(), "");
  EXPECT_EQ(r.Get("g").Scalar(), "null");
  EXPECT_EQ(r.Get("h").Scalar(), "0");
  EXPECT_EQ(r.Get("a").Scalar(), "");
  EXPECT_EQ(r.Get("a").TypeName(), std::string("null"));
}

TEST(YamlDoc, MultipleDocumentsAndEmptyInput) {
  const YamlDoc d = Parse("a: 1\n---\n---\n- x\n");
  ASSERT_EQ(d.document_count(), 3u);
  EXPECT_TRUE(d.document(1).IsNull());
  EXPECT_TRUE(d.document(2).IsSequence());
  EXPECT_EQ(d.document(2).line(), 4);
  EXPECT_EQ(Parse("").document_count(), 0u);
  EXPECT_EQ(Parse("# only a comment\n").document_count(), 0u);
}

TEST(YamlDoc, AliasesShareTheAnchoredNode) {
  const YamlDoc d = Parse("base: &b {team: a}\nx: *b\ny: *b\ns: &s str\nt: *s\n");
  const YamlNode r = d.document(0);
  EXPECT_EQ(r.Get("x").Get("team").Scalar(), "a");
  EXPECT_EQ(r.Get("y").line(), 1);  // the anchored node itself
  EXPECT_EQ(r.Get("t").Scalar(), "str");
}

TEST(YamlDoc, ErrorsNameSourceAndLine) {
  auto bad = YamlDoc::Parse("a: 1\nb: [unclosed\n", "t.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message, HasSubstr("t.yaml:3: invalid YAML: did not find expected"));

  auto self = YamlDoc::Parse("a: &a [1, *a]\n", "t.yaml");
  ASSERT_FALSE(self.ok());
  EXPECT_EQ(self.error().message, "t.yaml:1: alias *a names no complete anchor before it");

  auto unknown = YamlDoc::Parse("a: *nope\n", "t.yaml");
  ASSERT_FALSE(unknown.ok());

  auto cross = YamlDoc::Parse("a: &a 1\n---\nb: *a\n", "t.yaml");
  ASSERT_FALSE(cross.ok());  // anchors do not cross documents

  auto utf = YamlDoc::Parse(std::string("a: \xff\xfe\n"), "t.yaml");
  ASSERT_FALSE(utf.ok());
  EXPECT_THAT(utf.error().message, HasSubstr("t.yaml:"));
}

TEST(YamlDoc, LimitsAreErrorsNotCrashes) {
  auto deep = YamlDoc::Parse(std::string(1'000'000, '[') + std::string(1'000'000, ']'), "t.yaml");
  ASSERT_FALSE(deep.ok());
  EXPECT_THAT(deep.error().message, HasSubstr("t.yaml:1: YAML nested deeper than 64 levels"));

  std::string block = "a:\n";
  for (int i = 0; i < 100; ++i) block += std::string(static_cast<size_t>(2 * i + 2), ' ') + "b:\n";
  EXPECT_THAT(YamlDoc::Parse(block, "t.yaml").error().message, HasSubstr("nested deeper"));

  YamlDoc::Limits small;
  small.max_bytes = 10;
  EXPECT_THAT(YamlDoc::Parse("a: 0123456789", "t.yaml", small).error().message,
              HasSubstr("t.yaml: 13 bytes, more than the limit of 10"));
  small = {};
  small.max_nodes = 100;
  std::string many = "[";
  for (int i = 0; i < 200; ++i) many += "x,";
  many += "]";
  EXPECT_THAT(YamlDoc::Parse(many, "t.yaml", small).error().message,
              HasSubstr("more than 100 YAML nodes"));
  std::string aliases = "a: &a x\nb: [";
  for (int i = 0; i < 200; ++i) aliases += "*a,";
  aliases += "]";
  EXPECT_THAT(YamlDoc::Parse(aliases, "t.yaml", small).error().message,
              HasSubstr("more than 100 YAML nodes"));
}

}  // namespace
}  // namespace tracepager::routing
