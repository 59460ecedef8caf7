// Running the tracepager binary (or any program) from tests, with output captured.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace tracepager::testing {

struct ProcessResult {
  int exit_code = -1;      // the exit status, or 128 + signal number when killed by a signal
  bool timed_out = false;  // killed because it ran past the timeout
  std::string out;
  std::string err;
};

// Runs argv[0] (a path) with argv, `stdin_data` on its standard input, and `env` added to the
// current environment. Waits for it to exit, killing it with SIGKILL after `timeout`.
ProcessResult RunProcess(const std::vector<std::string>& argv, const std::string& stdin_data = "",
                         const std::map<std::string, std::string>& env = {},
                         std::chrono::milliseconds timeout = std::chrono::seconds(60));

// RunProcess on the built tracepager binary with `args`.
ProcessResult RunTracepager(const std::vector<std::string>& args,
                            const std::map<std::string, std::string>& env = {});

// A fresh directory under TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes `content` to path()/name (creating subdirectories) and returns the full path.
  std::string Write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

// The path of `relative` under the shared fixtures directory.
std::string FixturePath(const std::string& relative);
// The path of `relative` under the source tree (etc/, tests/data/, ...).
std::string SourcePath(const std::string& relative);
// `path` read whole; throws std::runtime_error when it cannot be read.
std::string ReadFile(const std::string& path);

}  // namespace tracepager::testing
