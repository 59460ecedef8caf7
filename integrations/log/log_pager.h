// LogPager: the `log` pager of the embedded defaults. Each page becomes one JSON line appended
// to a file, and one `page_logged` line in the daemon's log, so the daemon does its whole job
// (and can be tested end to end) without a pager account.
//
// Line format (one JSON object per line, keys in this order):
//   {"time":"2026-11-26T21:23:01.123Z","pager":"log","action":"trigger","team":"payments",
//    "dedup_key":"tracepager-...","page":{...PageToJson(page)...}}
// A page is accepted once its line is written and fsynced: a page the delivery engine saw
// accepted is on disk. A write failure is a retryable failure (accepted=false,
// permanent=false), so delivery retries and eventually falls back.
//
// Send runs `done` on the caller's thread before it returns. Thread-safe: lines from concurrent
// sends never interleave.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "integrations/pager.h"
#include "routing/result.h"

namespace spdlog {
class logger;
}

namespace tracepager::integrations {

class LogPager final : public Pager {
 public:
  // Opens (creating, mode 0640) `path` for appending; its directory must exist. `logger` may be
  // null (spdlog's default). `now_ns` stamps the lines; null means the system clock.
  static Result<std::unique_ptr<LogPager>> Open(const std::string& path,
                                                std::shared_ptr<spdlog::logger> logger = nullptr,
                                                std::function<int64_t()> now_ns = nullptr);
  ~LogPager() override;

  std::string_view kind() const override { return "log"; }
  void Send(const Page& page, const PagerTarget& target,
            std::function<void(SendOutcome)> done) override;

  const std::string& path() const { return path_; }

 private:
  LogPager(int fd, std::string path, std::shared_ptr<spdlog::logger> logger,
           std::function<int64_t()> now_ns);

  int fd_;
  std::string path_;
  std::shared_ptr<spdlog::logger> log_;
  std::function<int64_t()> now_ns_;
  std::mutex mu_;
};

}  // namespace tracepager::integrations
