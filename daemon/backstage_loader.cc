#include "daemon/backstage_loader.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <vector>

#include "daemon/file_util.h"

namespace tracepager::daemon {
namespace {

namespace fs = std::filesystem;

bool IsCatalogFile(const fs::path& p) {
  const std::string ext = p.extension().string();
  return ext == ".yaml" || ext == ".yml" || ext == ".json";
}

Result<routing::BackstageCatalog> ParseFile(const std::string& path, const std::string& text) {
  return fs::path(path).extension() == ".json" ? routing::ParseBackstageJson(text, path)
                                               : routing::ParseBackstageYaml(text, path);
}

// A parse error reads "FILE:LINE: what"; as a problem of FILE it keeps the line, not the name
// twice.
routing::RegistryProblem ParseProblem(const std::string& file, const std::string& message) {
  routing::RegistryProblem p{file, 0, "", message};
  if (message.rfind(file + ":", 0) == 0) {
    std::string rest = message.substr(file.size() + 1);
    size_t digits = 0;
    while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') ++digits;
    if (digits > 0 && digits < 9 && rest.compare(digits, 2, ": ") == 0) {
      p.line = std::stoi(rest.substr(0, digits));
      rest = rest.substr(digits + 2);
    } else if (rest.rfind(" ", 0) == 0) {
      rest = rest.substr(1);
    }
    p.message = rest;
  }
  return p;
}

void Append(routing::BackstageCatalog& into, routing::BackstageCatalog&& from) {
  for (auto& e : from.entities) into.entities.push_back(std::move(e));
  for (auto& p : from.problems) into.problems.push_back(std::move(p));
  into.skipped += from.skipped;
}

}  // namespace

Result<routing::BackstageCatalog> LoadBackstageCatalog(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) {
    return Error::InvalidInput(path + ": cannot read the Backstage catalog: " +
                               (ec ? ec.message() : std::string("no such file or directory")));
  }
  if (!fs::is_directory(st)) {
    Result<std::string> text = ReadFileCapped(path, routing::kMaxCatalogBytes);
    if (!text.ok()) return text.error();
    return ParseFile(path, *text);
  }

  std::vector<std::string> files;
  fs::recursive_directory_iterator it(path, fs::directory_options::skip_permission_denied, ec);
  if (ec) return Error::InvalidInput(path + ": cannot list the directory: " + ec.message());
  routing::BackstageCatalog catalog;
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) {
      catalog.problems.push_back({path, 0, "", "listing stopped early: " + ec.message()});
      break;
    }
    const fs::directory_entry& entry = *it;
    const std::string name = entry.path().filename().string();
    if (!name.empty() && name[0] == '.') {
      if (entry.is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (entry.is_directory(ec)) {
      if (it.depth() + 1 >= kMaxCatalogDepth) it.disable_recursion_pending();
      continue;
    }
    if (!entry.is_regular_file(ec) || !IsCatalogFile(entry.path())) continue;
    if (files.size() >= kMaxCatalogFiles) {
      return Error::InvalidInput(path + ": more than " + std::to_string(kMaxCatalogFiles) +
                                 " catalog files");
    }
    files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());

  size_t total = 0;
  for (const std::string& file : files) {
    Result<std::string> text = ReadFileCapped(file, routing::kMaxCatalogBytes);
    if (!text.ok()) {
      catalog.problems.push_back({file, 0, "", text.error().message});
      continue;
    }
    total += text->size();
    if (total > kMaxCatalogTotalBytes) {
      return Error::InvalidInput(path + ": catalog files add up to more than " +
                                 std::to_string(kMaxCatalogTotalBytes) + " bytes");
    }
    Result<routing::BackstageCatalog> one = ParseFile(file, *text);
    if (!one.ok()) {
      catalog.problems.push_back(ParseProblem(file, one.error().message));
      continue;
    }
    Append(catalog, std::move(*one));
  }
  return catalog;
}

}  // namespace tracepager::daemon
