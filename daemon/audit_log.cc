#include "daemon/audit_log.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "daemon/file_util.h"

namespace tracepager::daemon {
namespace {

using Clock = std::chrono::steady_clock;

std::string Errno(int err) { return std::strerror(err); }

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

struct RotatedFile {
  uint64_t seq = 0;
  std::string path;
};

// Rotated files of `path` ("<base>.<digits>"), oldest (lowest sequence) first. Names with other
// suffixes (a logrotate ".gz", the ".lock" file) are not part of the log.
std::vector<RotatedFile> ListRotated(const std::string& path) {
  std::vector<RotatedFile> out;
  const std::string dir = DirName(path);
  const std::string prefix = BaseName(path) + ".";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name.size() <= prefix.size() || name.substr(0, prefix.size()) != prefix) continue;
    std::string_view digits = name.substr(prefix.size());
    if (digits.size() > 18 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    out.push_back({std::stoull(std::string(digits)), dir + "/" + std::string(name)});
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(),
            [](const RotatedFile& a, const RotatedFile& b) { return a.seq < b.seq; });
  return out;
}

std::string RotatedName(const std::string& path, uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, ".%06llu", static_cast<unsigned long long>(seq));
  return path + buf;
}

uint64_t FileSize(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_size);
}

Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Error::Unavailable("write failed: " + Errno(n < 0 ? errno : EIO));
    data.remove_prefix(static_cast<size_t>(n));
  }
  return OkStatus();
}

// Read-write so that Open can look at the last byte (a torn tail); writes always append.
int OpenForAppend(const std::string& path) {
  return ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

}  // namespace

std::string DefaultAuditLogPath(const std::string& state_dir) {
  if (state_dir.empty()) return "audit.jsonl";
  return state_dir + (state_dir.back() == '/' ? "" : "/") + "audit.jsonl";
}

std::string AuditReadWarning::ToString() const {
  if (line == 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ": " + message;
}

// Writer ------------------------------------------------------------------------------------

class AuditLogWriter::Impl {
 public:
  explicit Impl(AuditLogOptions options) : options_(std::move(options)) {}

  ~Impl() { (void)Close(); }

  Status OpenFiles() {
    lock_fd_ = ::open((options_.path + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (lock_fd_ < 0) {
      return Error::Unavailable("audit log " + options_.path +
                                ": cannot open lock file: " + Errno(errno));
    }
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      return Error::Unavailable(
          "audit log " + options_.path +
          (err == EWOULDBLOCK ? ": in use by another writer (" + options_.path + ".lock is locked)"
                              : ": cannot lock: " + Errno(err)));
    }
    fd_ = OpenForAppend(options_.path);
    if (fd_ < 0) return Error::Unavailable("audit log " + options_.path + ": " + Errno(errno));
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      return Error::Unavailable("audit log " + options_.path + ": " + Errno(errno));
    }
    size_ = static_cast<uint64_t>(st.st_size);
    if (size_ > 0) {
      char last = '\n';
      if (::pread(fd_, &last, 1, static_cast<off_t>(size_ - 1)) == 1 && last != '\n') {
        // A crash cut the last record short. Ending the line keeps the next record whole; the
        // torn bytes stay for the record (the reader reports and skips them).
        spdlog::warn("audit_torn_tail path={} bytes_at_end_without_newline=true", options_.path);
        if (Status s = WriteAll(fd_, "\n"); !s.ok()) return s;
        ++size_;
        ::fdatasync(fd_);
      }
    }
    std::vector<RotatedFile> rotated = ListRotated(options_.path);
    next_seq_ = rotated.empty() ? 1 : rotated.back().seq + 1;
    // Makes the new or renamed file's entry durable; a failure here is not fatal to the log.
    (void)SyncDirectory(DirName(options_.path));
    deleted_files_ += ApplyRetention();
    if (options_.sync == AuditLogOptions::Sync::kBatched) {
      syncer_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "tp-audit-sync");
        SyncLoop();
      });
    }
    return OkStatus();
  }

  Status Append(std::string line) {
    Waiter me;
    me.line = std::move(line);
    me.line.push_back('\n');
    std::unique_lock<std::mutex> lock(mu_);
    if (closed_) return Error::Unavailable("audit log " + options_.path + " is closed");
    pending_.push_back(&me);
    while (!me.done) {
      if (io_busy_) {
        cv_.wait(lock);
        continue;
      }
      // Leader: write everything pending in one go (group commit), then wake the others.
      io_busy_ = true;
      std::vector<Waiter*> batch;
      batch.swap(pending_);
      const uint64_t unsynced_before = unsynced_;
      lock.unlock();
      BatchResult r = WriteBatch(batch, unsynced_before);
      lock.lock();
      FinishIo(r);
      for (Waiter* w : batch) {
        if (w->status.ok()) {
          ++counters_.records;
          counters_.bytes += w->line.size();
        } else {
          ++counters_.errors;
        }
        w->done = true;  // after this the waiter may return and its Waiter is gone
      }
      cv_.notify_all();
    }
    return me.status;
  }

  Status Flush() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !io_busy_; });
    if (fd_ < 0) return Error::Unavailable("audit log " + options_.path + " is closed");
    io_busy_ = true;
    lock.unlock();
    Status s = SyncNow();
    lock.lock();
    io_busy_ = false;
    ++counters_.syncs;
    if (s.ok()) {
      unsynced_ = 0;
    } else {
      ++counters_.errors;
    }
    cv_.notify_all();
    return s;
  }

  Status Close() {
    std::unique_lock<std::mutex> lock(mu_);
    closed_ = true;
    stop_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return !io_busy_ && pending_.empty(); });
    io_busy_ = true;  // nobody else touches the files from here on
    lock.unlock();
    if (syncer_.joinable()) syncer_.join();
    Status s = OkStatus();
    if (fd_ >= 0) {
      s = SyncNow();
      ::close(fd_);
      fd_ = -1;
    }
    if (lock_fd_ >= 0) {
      ::close(lock_fd_);  // releases the flock
      lock_fd_ = -1;
    }
    lock.lock();
    io_busy_ = false;
    return s;
  }

  Counters counters() const {
    std::lock_guard<std::mutex> lock(mu_);
    Counters c = counters_;
    c.deleted_files += deleted_files_;
    return c;
  }

  const AuditLogOptions& options() const { return options_; }

 private:
  struct Waiter {
    std::string line;
    bool done = false;
    Status status = OkStatus();
  };

  struct BatchResult {
    uint64_t unsynced = 0;  // records written but not synced, after the batch
    uint64_t syncs = 0;
    uint64_t rotations = 0;
    uint64_t deleted = 0;
    uint64_t errors = 0;  // sync failures (write failures are counted per record)
  };

  // Runs with io_busy_ held by this thread; touches only the file state and `batch`.
  BatchResult WriteBatch(const std::vector<Waiter*>& batch, uint64_t unsynced) {
    BatchResult r;
    r.unsynced = unsynced;
    std::string buffer;
    std::vector<Waiter*> in_buffer;
    auto flush_buffer = [&]() {
      if (buffer.empty()) return;
      Status s = WriteAll(fd_, buffer);
      if (!s.ok()) {
        // Cut a partial write back so the next record starts on a line of its own.
        if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
          spdlog::error("audit_truncate_failed path={} error=\"{}\"", options_.path, Errno(errno));
        }
        Status err = Error::Unavailable("audit log " + options_.path + ": " + s.error().message);
        for (Waiter* w : in_buffer) w->status = err;
      } else {
        size_ += buffer.size();
        r.unsynced += in_buffer.size();
      }
      buffer.clear();
      in_buffer.clear();
    };
    for (Waiter* w : batch) {
      const uint64_t pending_size = size_ + buffer.size();
      if (options_.max_file_bytes > 0 && pending_size > 0 &&
          pending_size + w->line.size() > options_.max_file_bytes) {
        flush_buffer();
        if (Rotate(&r)) r.unsynced = 0;
      }
      buffer += w->line;
      in_buffer.push_back(w);
    }
    flush_buffer();
    const bool every = options_.sync == AuditLogOptions::Sync::kEveryRecord;
    if (r.unsynced > 0 && (every || r.unsynced >= options_.sync_every_records)) {
      Status s = SyncNow();
      ++r.syncs;
      if (s.ok()) {
        r.unsynced = 0;
      } else {
        ++r.errors;
        // Written but maybe not durable: in kEveryRecord mode the caller was promised durability.
        if (every) {
          for (Waiter* w : batch) {
            if (w->status.ok()) w->status = s;
          }
        }
      }
    }
    return r;
  }

  void FinishIo(const BatchResult& r) {
    if (r.unsynced > 0 && unsynced_ == 0) oldest_unsynced_ = Clock::now();
    unsynced_ = r.unsynced;
    counters_.syncs += r.syncs;
    counters_.rotations += r.rotations;
    counters_.errors += r.errors;
    deleted_files_ += r.deleted;
    io_busy_ = false;
  }

  Status SyncNow() {
    if (::fdatasync(fd_) != 0) {
      return Error::Unavailable("audit log " + options_.path +
                                ": fdatasync failed: " + Errno(errno));
    }
    return OkStatus();
  }

  // Renames the current file to the next sequence number and starts a new one. Returns true if
  // the current file changed. A failure keeps writing to the old file (a log that grows past
  // its size limit is better than a lost record) and is logged.
  bool Rotate(BatchResult* r) {
    if (::fdatasync(fd_) == 0) ++r->syncs;  // rotated files are complete on disk
    const std::string rotated = RotatedName(options_.path, next_seq_);
    if (::rename(options_.path.c_str(), rotated.c_str()) != 0) {
      spdlog::error("audit_rotate_failed path={} error=\"{}\"", options_.path, Errno(errno));
      return false;
    }
    int fd = OpenForAppend(options_.path);
    if (fd < 0) {
      int err = errno;
      // Put the old file back; its descriptor still refers to it.
      ::rename(rotated.c_str(), options_.path.c_str());
      spdlog::error("audit_rotate_failed path={} error=\"{}\"", options_.path, Errno(err));
      return false;
    }
    ::close(fd_);
    fd_ = fd;
    size_ = 0;
    ++next_seq_;
    ++r->rotations;
    // Makes the new or renamed file's entry durable; a failure here is not fatal to the log.
    (void)SyncDirectory(DirName(options_.path));
    r->deleted += ApplyRetention();
    return true;
  }

  // Deletes the oldest rotated files beyond the limits. Returns how many were deleted. The byte
  // limit reserves a whole file's worth for the current file, which grows up to max_file_bytes
  // before the next rotation, so the total stays within max_total_bytes at all times.
  uint64_t ApplyRetention() {
    if (options_.max_files == 0 && options_.max_total_bytes == 0) return 0;
    std::vector<RotatedFile> rotated = ListRotated(options_.path);
    std::vector<uint64_t> sizes;
    uint64_t total = std::max(size_, options_.max_file_bytes);
    for (const RotatedFile& f : rotated) {
      sizes.push_back(FileSize(f.path));
      total += sizes.back();
    }
    uint64_t deleted = 0;
    for (size_t i = 0; i < rotated.size(); ++i) {
      const size_t left = rotated.size() - i;
      const bool too_many = options_.max_files > 0 && left > options_.max_files;
      const bool too_big = options_.max_total_bytes > 0 && total > options_.max_total_bytes;
      if (!too_many && !too_big) break;
      if (::unlink(rotated[i].path.c_str()) == 0) {
        total -= sizes[i];
        ++deleted;
        spdlog::info("audit_retention_deleted file={} bytes={}", rotated[i].path, sizes[i]);
      } else {
        spdlog::error("audit_retention_failed file={} error=\"{}\"", rotated[i].path, Errno(errno));
      }
    }
    return deleted;
  }

  // kBatched: syncs `sync_interval` after the oldest unsynced record.
  void SyncLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      if (unsynced_ == 0 || io_busy_) {
        cv_.wait(lock);
        continue;
      }
      const auto deadline = oldest_unsynced_ + options_.sync_interval;
      if (Clock::now() < deadline) {
        cv_.wait_until(lock, deadline);
        continue;
      }
      io_busy_ = true;
      lock.unlock();
      Status s = SyncNow();
      lock.lock();
      ++counters_.syncs;
      if (s.ok()) {
        unsynced_ = 0;
      } else {
        ++counters_.errors;
        oldest_unsynced_ = Clock::now();  // retry after another interval, not in a busy loop
        spdlog::error("audit_sync_failed path={} error=\"{}\"", options_.path, s.error().message);
      }
      io_busy_ = false;
      cv_.notify_all();
    }
  }

  const AuditLogOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Waiter*> pending_;       // guarded by mu_
  bool io_busy_ = false;               // guarded by mu_: some thread owns the file state below
  bool closed_ = false;                // guarded by mu_
  bool stop_ = false;                  // guarded by mu_
  uint64_t unsynced_ = 0;              // guarded by mu_
  Clock::time_point oldest_unsynced_;  // guarded by mu_
  Counters counters_;                  // guarded by mu_
  uint64_t deleted_files_ = 0;         // guarded by mu_ (after Open)
  std::thread syncer_;

  // File state: touched only by the thread that set io_busy_ (or during Open/Close).
  int fd_ = -1;
  int lock_fd_ = -1;
  uint64_t size_ = 0;
  uint64_t next_seq_ = 1;
};

Result<std::unique_ptr<AuditLogWriter>> AuditLogWriter::Open(const AuditLogOptions& options) {
  if (options.path.empty()) return Error::InvalidInput("audit log: path is empty");
  if (options.max_total_bytes > 0 && options.max_total_bytes < options.max_file_bytes) {
    return Error::InvalidInput(
        "audit log: max_total_bytes (" + std::to_string(options.max_total_bytes) +
        ") must be at least max_file_bytes (" + std::to_string(options.max_file_bytes) + ")");
  }
  if (options.max_total_bytes > 0 && options.max_file_bytes == 0) {
    return Error::InvalidInput("audit log: max_total_bytes needs rotation (max_file_bytes > 0)");
  }
  if (options.sync == AuditLogOptions::Sync::kBatched &&
      (options.sync_every_records == 0 || options.sync_interval.count() <= 0)) {
    return Error::InvalidInput(
        "audit log: batched sync needs sync_every_records > 0 and sync_interval > 0");
  }
  auto impl = std::make_unique<Impl>(options);
  if (Status s = impl->OpenFiles(); !s.ok()) return s.error();
  return std::unique_ptr<AuditLogWriter>(new AuditLogWriter(std::move(impl)));
}

AuditLogWriter::AuditLogWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AuditLogWriter::~AuditLogWriter() = default;

Status AuditLogWriter::AppendDecision(const DecisionAudit& record) {
  return impl_->Append(DecisionRecordJson(record));
}
Status AuditLogWriter::AppendDelivery(const DeliveryAudit& record) {
  return impl_->Append(DeliveryRecordJson(record));
}
Status AuditLogWriter::AppendLine(std::string json_object) {
  return impl_->Append(std::move(json_object));
}
Status AuditLogWriter::Flush() { return impl_->Flush(); }
Status AuditLogWriter::Close() { return impl_->Close(); }
AuditLogWriter::Counters AuditLogWriter::counters() const { return impl_->counters(); }
const AuditLogOptions& AuditLogWriter::options() const { return impl_->options(); }

// Reader ------------------------------------------------------------------------------------

namespace {

struct OpenFile {
  std::string path;
  int fd = -1;
  ino_t inode = 0;
  dev_t device = 0;
};

bool OpenForRead(const std::string& path, OpenFile* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return false;
  }
  *out = {path, fd, st.st_ino, st.st_dev};
  return true;
}

// Reads one file line by line. Returns false when `visit` asked to stop.
bool ReadOneFile(const OpenFile& file, const AuditReadOptions& options,
                 const std::function<bool(const AuditLogEntry&)>& visit,
                 std::vector<AuditReadWarning>* warnings) {
  std::string line;
  uint64_t line_no = 0;
  bool overlong = false;
  char buf[1 << 16];
  auto finish_line = [&]() -> bool {
    ++line_no;
    if (overlong) {
      overlong = false;
      warnings->push_back(
          {file.path, line_no,
           "line longer than " + std::to_string(options.max_line_bytes) + " bytes skipped"});
      return true;
    }
    if (line.empty()) return true;
    Result<AuditRecord> record = ParseAuditRecord(line);
    if (!record.ok()) {
      warnings->push_back({file.path, line_no, "record skipped: " + record.error().message});
      line.clear();
      return true;
    }
    AuditLogEntry entry{file.path, line_no, line, std::move(*record)};
    bool go_on = visit(entry);
    line.clear();
    return go_on;
  };
  while (true) {
    ssize_t n = ::read(file.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      warnings->push_back({file.path, line_no, "read failed: " + Errno(errno)});
      return true;
    }
    if (n == 0) break;
    std::string_view chunk(buf, static_cast<size_t>(n));
    while (!chunk.empty()) {
      size_t nl = chunk.find('\n');
      std::string_view piece = chunk.substr(0, nl);
      if (!overlong) {
        if (line.size() + piece.size() > options.max_line_bytes) {
          overlong = true;
          line.clear();
        } else {
          line.append(piece);
        }
      }
      if (nl == std::string_view::npos) break;
      if (!finish_line()) return false;
      chunk.remove_prefix(nl + 1);
    }
  }
  if (overlong || !line.empty()) {
    ++line_no;
    warnings->push_back(
        {file.path, line_no,
         "torn last line skipped (" +
             (overlong ? std::string("overlong") : std::to_string(line.size()) + " bytes") +
             " without a newline: an interrupted write, or one in progress)"});
  }
  return true;
}

}  // namespace

std::vector<std::string> AuditLogFiles(const std::string& path) {
  std::vector<std::string> out;
  for (const RotatedFile& f : ListRotated(path)) out.push_back(f.path);
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) out.push_back(path);
  return out;
}

Status ReadAuditLog(const std::string& path, const AuditReadOptions& options,
                    const std::function<bool(const AuditLogEntry&)>& visit,
                    std::vector<AuditReadWarning>* warnings) {
  // Open rotated files, then the current one, then look for files rotated in between: those hold
  // records older than what the current file holds now. Open descriptors survive renames and
  // deletions, so what was opened is read whole.
  std::vector<std::pair<uint64_t, OpenFile>> rotated;
  for (const RotatedFile& f : ListRotated(path)) {
    OpenFile of;
    if (OpenForRead(f.path, &of)) rotated.emplace_back(f.seq, of);
  }
  OpenFile current;
  const bool have_current = OpenForRead(path, &current);
  for (const RotatedFile& f : ListRotated(path)) {
    bool known = std::any_of(rotated.begin(), rotated.end(),
                             [&](const auto& r) { return r.first == f.seq; });
    if (known) continue;
    OpenFile of;
    if (!OpenForRead(f.path, &of)) continue;
    if (have_current && of.inode == current.inode && of.device == current.device) {
      ::close(of.fd);  // the file we opened as current was rotated since: read it once, last
      continue;
    }
    rotated.emplace_back(f.seq, of);
  }
  std::sort(rotated.begin(), rotated.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<OpenFile> files;
  for (auto& [seq, f] : rotated) files.push_back(f);
  if (have_current) files.push_back(current);
  if (files.empty()) return Error::NotFound("no audit log at " + path);

  bool go_on = true;
  for (const OpenFile& f : files) {
    if (go_on) go_on = ReadOneFile(f, options, visit, warnings);
    ::close(f.fd);
  }
  return OkStatus();
}

}  // namespace tracepager::daemon
