// Golden JSON for the pager payload tests: the actual document must equal
// tests/integrations/golden/<name> as JSON (member order and whitespace do not matter).
// TRACEPAGER_UPDATE_GOLDEN=1 rewrites the golden files from the actual output instead (review
// the diff before committing).
#pragma once

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/process.h"

namespace tracepager::testing {

inline std::string PrettyJson(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  if (d.HasParseError()) return "<not JSON> " + text;
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  w.SetIndent(' ', 2);
  d.Accept(w);
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

inline ::testing::AssertionResult MatchesGolden(const std::string& actual,
                                                const std::string& name) {
  const std::string path = SourcePath("tests/integrations/golden/" + name);
  const char* update = std::getenv("TRACEPAGER_UPDATE_GOLDEN");
  if (update != nullptr && std::string(update) == "1") {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << PrettyJson(actual);
    return ::testing::AssertionSuccess() << "updated " << path;
  }
  std::string expected_text;
  try {
    expected_text = ReadFile(path);
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << e.what();
  }
  rapidjson::Document expected, got;
  expected.Parse(expected_text.data(), expected_text.size());
  got.Parse(actual.data(), actual.size());
  if (expected.HasParseError()) return ::testing::AssertionFailure() << path << " is not JSON";
  if (got.HasParseError()) return ::testing::AssertionFailure() << "actual is not JSON: " << actual;
  if (expected == got) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "differs from " << path << "; actual:\n"
                                       << PrettyJson(actual);
}

}  // namespace tracepager::testing
