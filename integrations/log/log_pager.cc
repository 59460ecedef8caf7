// LogPager: see the header.
#include "integrations/log/log_pager.h"

#include <fcntl.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "integrations/json_util.h"
#include "integrations/page_builder.h"

namespace tracepager::integrations {
namespace {

// `s` as a JSON string literal, quotes included.
std::string JsonString(std::string_view s) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  json::WriteString(w, s);
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace

LogPager::LogPager(int fd, std::string path, std::shared_ptr<spdlog::logger> logger,
                   std::function<int64_t()> now_ns)
    : fd_(fd), path_(std::move(path)), log_(std::move(logger)), now_ns_(std::move(now_ns)) {
  if (log_ == nullptr) log_ = spdlog::default_logger();
  if (!now_ns_) {
    now_ns_ = [] {
      return std::chrono::duration_cast<std::chrono::nanoseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
}

LogPager::~LogPager() { ::close(fd_); }

Result<std::unique_ptr<LogPager>> LogPager::Open(const std::string& path,
                                                 std::shared_ptr<spdlog::logger> logger,
                                                 std::function<int64_t()> now_ns) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return Error::Unavailable("log pager: cannot open " + path + ": " + std::strerror(errno));
  }
  return std::unique_ptr<LogPager>(new LogPager(fd, path, std::move(logger), std::move(now_ns)));
}

void LogPager::Send(const Page& page, const PagerTarget& /*target*/,
                    std::function<void(SendOutcome)> done) {
  const char* action = page.action == Page::Action::kTrigger ? "trigger" : "resolve";
  std::string line =
      "{\"time\":" + JsonString(Rfc3339Utc(now_ns_())) + ",\"pager\":\"log\",\"action\":\"" +
      action + "\",\"team\":" + JsonString(page.team) +
      ",\"dedup_key\":" + JsonString(page.dedup_key) + ",\"page\":" + PageToJson(page) + "}\n";
  SendOutcome outcome;
  {
    // One write(2) per line on an O_APPEND descriptor, under the lock, then fsync: lines never
    // interleave and an accepted page is on disk.
    std::lock_guard<std::mutex> lk(mu_);
    off_t before = ::lseek(fd_, 0, SEEK_END);
    size_t done_bytes = 0;
    int err = 0;
    while (done_bytes < line.size()) {
      ssize_t n = ::write(fd_, line.data() + done_bytes, line.size() - done_bytes);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        err = n < 0 ? errno : EIO;
        break;
      }
      done_bytes += static_cast<size_t>(n);
    }
    if (err == 0 && ::fsync(fd_) != 0) err = errno;
    if (err != 0) {
      // Take back a partial line (a full disk mid-write) so the file stays one JSON per line.
      if (done_bytes > 0 && before >= 0) (void)::ftruncate(fd_, before);
      outcome.detail = "log pager: cannot write " + path_ + ": " + std::strerror(err);
    } else {
      outcome.accepted = true;
      outcome.detail = "written to " + path_;
    }
  }
  if (outcome.accepted) {
    log_->info("page_logged action={} team={} dedup_key={} component={} symptom={} summary=\"{}\"",
               action, page.team, page.dedup_key, page.component, page.symptom, page.summary);
  } else {
    log_->error("page_log_failed action={} team={} dedup_key={} error=\"{}\"", action, page.team,
                page.dedup_key, outcome.detail);
  }
  done(std::move(outcome));
}

}  // namespace tracepager::integrations
