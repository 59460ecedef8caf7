// systemd/tracepager.service: `systemd-analyze security --offline=yes` rates it "OK" or better
// with an exposure of at most 2.0 (the reference's target), and `systemd-analyze verify` finds
// nothing wrong with it. Skipped where systemd-analyze is not installed.
#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace {

namespace fs = std::filesystem;

const fs::path kUnit = fs::path(TRACEPAGER_SOURCE_DIR) / "systemd" / "tracepager.service";

struct Output {
  int exit_code = -1;
  std::string text;  // stdout and stderr
};

Output RunCommand(const std::string& command) {
  Output out;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.text.append(buf.data(), n);
  int status = pclose(p);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

bool HaveSystemdAnalyze() { return RunCommand("systemd-analyze --version").exit_code == 0; }

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(SystemdUnit, SecurityExposureIsOkOrBetter) {
  ASSERT_TRUE(HaveSystemdAnalyze()) << "systemd-analyze not installed (scripts/setup)";
  ASSERT_TRUE(fs::exists(kUnit)) << kUnit;
  Output out =
      RunCommand("systemd-analyze security --offline=yes --no-pager '" + kUnit.string() + "'");
  ASSERT_EQ(out.exit_code, 0) << out.text;
  // "→ Overall exposure level for tracepager.service: 1.1 OK 🙂"
  const std::string marker = "Overall exposure level for tracepager.service: ";
  const auto at = out.text.find(marker);
  ASSERT_NE(at, std::string::npos) << out.text;
  std::istringstream rest(out.text.substr(at + marker.size()));
  double exposure = 99;
  std::string rating;
  rest >> exposure >> rating;
  ASSERT_FALSE(rest.fail()) << out.text;
  EXPECT_TRUE(rating == "OK" || rating == "SAFE" || rating == "PERFECT") << out.text;
  EXPECT_LE(exposure, 2.0) << out.text;
}

TEST(SystemdUnit, UnitFileVerifies) {
  ASSERT_TRUE(HaveSystemdAnalyze()) << "systemd-analyze not installed (scripts/setup)";
  // verify checks that ExecStart binaries exist, so check a copy that runs the built binary.
  std::string unit = ReadFile(kUnit);
  ASSERT_FALSE(unit.empty());
  const std::string installed = "/usr/bin/tracepager";
  for (auto pos = unit.find(installed); pos != std::string::npos; pos = unit.find(installed, pos)) {
    unit.replace(pos, installed.size(), TRACEPAGER_BINARY);
    pos += std::string(TRACEPAGER_BINARY).size();
  }
  std::string tmpl = (fs::temp_directory_path() / "tracepager-unit-XXXXXX").string();
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  const fs::path copy = fs::path(tmpl) / "tracepager.service";
  std::ofstream(copy) << unit;
  Output out = RunCommand("SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no '" +
                          copy.string() + "'");
  std::error_code ec;
  fs::remove_all(tmpl, ec);
  EXPECT_EQ(out.exit_code, 0) << out.text;
  // verify also prints warnings (unknown keys, bad values) without failing.
  EXPECT_EQ(out.text.find("tracepager.service:"), std::string::npos) << out.text;
}

TEST(SystemdUnit, DeclaresTheProtocolTheDaemonSpeaks) {
  const std::string unit = ReadFile(kUnit);
  for (const char* line :
       {"\nType=notify\n", "\nNotifyAccess=main\n", "\nDynamicUser=yes\n",
        "\nStateDirectory=tracepager\n", "\nConfigurationDirectory=tracepager\n",
        "\nRestart=on-failure\n", "\nExecReload=/bin/kill -HUP $MAINPID\n",
        "\nExecStartPre=/usr/bin/tracepager check --config /etc/tracepager/tracepager.yaml\n",
        "\nExecStart=/usr/bin/tracepager serve --config /etc/tracepager/tracepager.yaml\n"}) {
    EXPECT_NE(unit.find(line), std::string::npos) << line;
  }
  EXPECT_NE(unit.find("\nWatchdogSec="), std::string::npos);
  EXPECT_NE(unit.find("\nTimeoutStopSec="), std::string::npos);
}

}  // namespace
