// The intake log. See intake.h for the contract.
//
// Appenders encode their record (and its body's CRC) on their own thread and queue it. Syncer
// threads (IntakeOptions::sync_threads) write and sync: an idle syncer takes everything
// queued, numbers it and writes it with one pwritev (one syncer at a time), then fdatasyncs
// everything written so far and acknowledges it, so whatever is queued while the sync in
// flight runs is written and covered by the next one (group commit without a timer). Another
// syncer joins in (a second sync in flight) only when the sync in flight has run for
// sync_overlap_after: a stalled flush then holds up only what it covers. The
// intake thread hands acknowledged records to the store in batches, one move in flight at a
// time, and retires segments (for reuse) once their records have all been moved and the store
// synced.
#include "daemon/intake.h"

#include <fcntl.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <boost/endian/conversion.hpp>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "daemon/file_util.h"

namespace tracepager::daemon {

namespace {

constexpr uint32_t kMagic = 0x31495054;  // "TPI1" read as little-endian bytes
constexpr size_t kHeaderBytes = 24;      // magic, length, body CRC, sequence, header CRC
// A record's body holds one webhook's jobs; the HTTP body limit is far below this. A length
// beyond it is damage, not data.
constexpr uint32_t kMaxBodyBytes = 1u << 30;
// A segment holds segment_bytes plus the group that crossed it; a file in the directory far
// larger than any of that is not one the intake wrote, and is not read into memory.
constexpr size_t kMaxSegmentFileBytes = size_t{4} << 30;
constexpr const char* kPrefix = "intake-";
constexpr const char* kSuffix = ".log";
// A spare made at Open, before any segment was retired; named like a segment (so a restart
// finds it), after a sequence number no log reaches.
constexpr const char* kFirstSpareName = "intake-99999999999999999999.log";

// CRC-32 (ISO-HDLC, as zlib and Boost.CRC compute it). zlib's runs several bytes per step;
// Boost's byte-at-a-time table cost 6% of an HTTP thread's time.
uint32_t Crc32(const void* data, size_t n) {
  return static_cast<uint32_t>(
      crc32_z(crc32_z(0L, Z_NULL, 0), static_cast<const Bytef*>(data), static_cast<z_size_t>(n)));
}

// Little-endian fields, through Boost.Endian.
unsigned char* Bytes(char* at) { return reinterpret_cast<unsigned char*>(at); }
const unsigned char* Bytes(const char* at) { return reinterpret_cast<const unsigned char*>(at); }
void SetU32(char* at, uint32_t v) { boost::endian::store_little_u32(Bytes(at), v); }
void SetU64(char* at, uint64_t v) { boost::endian::store_little_u64(Bytes(at), v); }
uint32_t GetU32(const char* at) { return boost::endian::load_little_u32(Bytes(at)); }
uint64_t GetU64(const char* at) { return boost::endian::load_little_u64(Bytes(at)); }
void PutU32(std::string& out, uint32_t v) {
  out.resize(out.size() + 4);
  SetU32(out.data() + out.size() - 4, v);
}
void PutU64(std::string& out, uint64_t v) {
  out.resize(out.size() + 8);
  SetU64(out.data() + out.size() - 8, v);
}
void PutString(std::string& out, const std::string& s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

// A bounds-checked reader over one record's body.
class BodyReader {
 public:
  explicit BodyReader(std::string_view in) : in_(in) {}
  bool U32(uint32_t& v) {
    if (in_.size() - at_ < 4) return false;
    v = GetU32(in_.data() + at_);
    at_ += 4;
    return true;
  }
  bool U64(uint64_t& v) {
    if (in_.size() - at_ < 8) return false;
    v = GetU64(in_.data() + at_);
    at_ += 8;
    return true;
  }
  bool String(std::string& s) {
    uint32_t n;
    if (!U32(n) || in_.size() - at_ < n) return false;
    s.assign(in_.data() + at_, n);
    at_ += n;
    return true;
  }
  size_t left() const { return in_.size() - at_; }

 private:
  std::string_view in_;
  size_t at_ = 0;
};

// The body: received time, dedup window, then each job's five strings.
std::string EncodeBody(const IntakeBatch& b) {
  std::string out;
  size_t n = 20;
  for (const JobRow& j : b.jobs) {
    n += 20 + j.kind.size() + j.identity.size() + j.storm_key.size() + j.dedup_key.size() +
         j.payload.size();
  }
  out.reserve(n);
  PutU64(out, static_cast<uint64_t>(b.now_ns));
  PutU64(out, static_cast<uint64_t>(b.dedup_window_ns));
  PutU32(out, static_cast<uint32_t>(b.jobs.size()));
  for (const JobRow& j : b.jobs) {
    PutString(out, j.kind);
    PutString(out, j.identity);
    PutString(out, j.storm_key);
    PutString(out, j.dedup_key);
    PutString(out, j.payload);
  }
  return out;
}

bool DecodeBody(std::string_view body, IntakeBatch& b) {
  BodyReader r(body);
  uint64_t now, window;
  uint32_t count;
  if (!r.U64(now) || !r.U64(window) || !r.U32(count)) return false;
  // Each job takes at least 20 bytes: a count beyond what the body can hold is damage (and
  // must not size an allocation).
  if (count > r.left() / 20) return false;
  b.now_ns = static_cast<int64_t>(now);
  b.dedup_window_ns = static_cast<int64_t>(window);
  b.jobs.resize(count);
  for (JobRow& j : b.jobs) {
    if (!r.String(j.kind) || !r.String(j.identity) || !r.String(j.storm_key) ||
        !r.String(j.dedup_key) || !r.String(j.payload)) {
      return false;
    }
  }
  return r.left() == 0;
}

// A record's header for `body`, its sequence number and header CRC not filled in yet (the
// syncer that writes them numbers them: SealHeader).
std::string UnsealedHeader(std::string_view body) {
  std::string h;
  h.reserve(kHeaderBytes);
  PutU32(h, kMagic);
  PutU32(h, static_cast<uint32_t>(body.size()));
  PutU32(h, Crc32(body.data(), body.size()));
  PutU64(h, 0);  // sequence
  PutU32(h, 0);  // header CRC
  return h;
}

// Fills in the header's sequence number and header CRC.
void SealHeader(char* header, uint64_t seq) {
  SetU64(header + 12, seq);
  SetU32(header + 20, Crc32(header, 20));
}

std::string SegmentName(uint64_t first_seq) {
  std::string digits = std::to_string(first_seq);
  return kPrefix + std::string(20 - std::min<size_t>(20, digits.size()), '0') + digits + kSuffix;
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// Zeros the record header at `offset` (best effort), so that a later read of the segment stops
// there: the records from it on were not acknowledged.
void EraseHeader(int fd, size_t offset) {
  static const char kZeroHeader[kHeaderBytes] = {};
  (void)::pwrite(fd, kZeroHeader, kHeaderBytes, static_cast<off_t>(offset));
}

// The record that starts at `offset` of the open segment `fd`, when it is record `seq` (its
// batch, with log_seq and log_offset set); nullopt when the bytes there are not that record's
// header (another record, or none); kNotFound when they are but the record does not check.
// `bytes`, when known, is the record's size (one read instead of two). kUnavailable on a read
// error.
Result<std::optional<IntakeBatch>> ReadRecordAt(int fd, uint64_t offset, uint64_t seq,
                                                size_t bytes = 0) {
  std::string in(bytes > 0 ? bytes : kHeaderBytes, '\0');
  ssize_t n = ::pread(fd, in.data(), in.size(), static_cast<off_t>(offset));
  if (n < 0) return Error::Unavailable(std::string("read: ") + std::strerror(errno));
  if (bytes == 0) {
    const bool header_is_it =
        n == static_cast<ssize_t>(kHeaderBytes) && GetU32(in.data()) == kMagic &&
        GetU32(in.data() + 20) == Crc32(in.data(), 20) && GetU64(in.data() + 12) == seq &&
        GetU32(in.data() + 4) <= kMaxBodyBytes;
    if (!header_is_it) return std::optional<IntakeBatch>();
    size_t length = GetU32(in.data() + 4);
    in.resize(kHeaderBytes + length);
    n = ::pread(fd, in.data() + kHeaderBytes, length, static_cast<off_t>(offset + kHeaderBytes));
    if (n < 0) return Error::Unavailable(std::string("read: ") + std::strerror(errno));
    n += static_cast<ssize_t>(kHeaderBytes);
  }
  IntakeSegmentContents c;
  if (n == static_cast<ssize_t>(in.size())) c = DecodeIntakeSegment(in);
  if (c.records.size() != 1 || c.records.front().seq != seq) {
    return Error::NotFound("record " + std::to_string(seq) + " at byte " + std::to_string(offset) +
                           " does not check (" +
                           (!c.stop_reason.empty()                 ? c.stop_reason
                            : n != static_cast<ssize_t>(in.size()) ? "short read"
                                                                   : "another record there") +
                           ")");
  }
  IntakeBatch batch = std::move(c.records.front().batch);
  batch.log_seq = seq;
  batch.log_offset = offset;
  return std::optional<IntakeBatch>(std::move(batch));
}

}  // namespace

std::string EncodeIntakeRecord(uint64_t seq, const IntakeBatch& batch) {
  std::string body = EncodeBody(batch);
  std::string out = UnsealedHeader(body);
  SealHeader(out.data(), seq);
  out.append(body);
  return out;
}

IntakeSegmentContents DecodeIntakeSegment(std::string_view bytes) {
  IntakeSegmentContents c;
  size_t at = 0;
  uint64_t last_seq = 0;
  c.clean_end = true;  // until a stop says otherwise
  while (at < bytes.size()) {
    c.clean_end = false;
    const char* h = bytes.data() + at;
    size_t left = bytes.size() - at;
    if (left < kHeaderBytes) {
      c.stop_reason = "incomplete record header at byte " + std::to_string(at);
      break;
    }
    if (GetU32(h) != kMagic) {
      // Not the start of a record: zeros (the preallocated rest of the segment) or what a
      // reused file held before. Only a record that was being written can be torn.
      c.clean_end = true;
      c.stop_reason = "no record at byte " + std::to_string(at);
      break;
    }
    if (GetU32(h + 20) != Crc32(h, 20)) {
      c.stop_reason = "record header checksum mismatch at byte " + std::to_string(at);
      break;
    }
    uint32_t length = GetU32(h + 4);
    uint64_t seq = GetU64(h + 12);
    if (length > kMaxBodyBytes || left - kHeaderBytes < length) {
      c.stop_reason = "incomplete record at byte " + std::to_string(at);
      break;
    }
    if (seq <= last_seq) {
      // A record from the segment file's previous use (files are recycled).
      c.clean_end = true;
      c.stop_reason = "record out of sequence at byte " + std::to_string(at);
      break;
    }
    std::string_view body(h + kHeaderBytes, length);
    if (GetU32(h + 8) != Crc32(body.data(), body.size())) {
      c.stop_reason = "record checksum mismatch at byte " + std::to_string(at);
      break;
    }
    IntakeRecord record;
    record.seq = seq;
    record.offset = at;
    record.bytes = kHeaderBytes + length;
    if (!DecodeBody(body, record.batch)) {
      c.stop_reason = "malformed record at byte " + std::to_string(at);
      break;
    }
    c.records.push_back(std::move(record));
    last_seq = seq;
    at += kHeaderBytes + length;
    c.valid_bytes = at;
    c.clean_end = true;
  }
  return c;
}

Result<std::string> ReadIntakeJobPayload(const std::string& state_dir, const IntakeLogRef& ref) {
  namespace fs = std::filesystem;
  const std::string dir = (fs::path(state_dir) / "intake").string();
  const std::string what = "intake: record " + std::to_string(ref.seq) + " at byte " +
                           std::to_string(ref.offset) + " of " + dir;
  // The segment holding the record is named after a sequence number at or below it, and the
  // newest such one unless it was renamed meanwhile (a spare keeps its old name until reused,
  // and segments' ranges do not overlap): the candidates are tried newest first, each checked
  // by the record's own header.
  std::vector<std::pair<uint64_t, fs::path>> candidates;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    const size_t prefix = std::strlen(kPrefix);
    if (name.size() != prefix + 20 + std::strlen(kSuffix) || name.rfind(kPrefix, 0) != 0 ||
        name.compare(prefix + 20, std::string::npos, kSuffix) != 0) {
      continue;
    }
    std::string digits = name.substr(prefix, 20);
    if (digits.find_first_not_of("0123456789") != std::string::npos) continue;
    uint64_t first = 0;
    try {
      first = std::stoull(digits);
    } catch (const std::exception&) {
      continue;  // beyond 64 bits: the first spare's name
    }
    if (first <= ref.seq) candidates.emplace_back(first, e.path());
  }
  if (ec == std::errc::no_such_file_or_directory) return Error::NotFound(what + ": no log");
  if (ec) return Error::Unavailable("intake: cannot list " + dir + ": " + ec.message());
  std::sort(candidates.rbegin(), candidates.rend());
  for (const auto& [first, path] : candidates) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) continue;  // renamed since the listing
      return Error::Unavailable(Errno(what + ": open " + path.string()));
    }
    Result<std::optional<IntakeBatch>> record = ReadRecordAt(fd, ref.offset, ref.seq);
    ::close(fd);
    if (!record.ok()) {
      Error e = record.error();
      e.message = what + ": " + path.string() + ": " + e.message;
      return e;
    }
    if (!record->has_value()) continue;  // not this file's (its header says so, or no record)
    std::vector<JobRow>& jobs = (*record)->jobs;
    if (ref.index >= jobs.size()) {
      return Error::NotFound(what + ": it holds " + std::to_string(jobs.size()) +
                             " jobs, not job " + std::to_string(ref.index));
    }
    return std::move(jobs[ref.index].payload);
  }
  return Error::NotFound(what + ": no segment holds it");
}

struct Intake::Impl {
  IntakeOptions options;
  Store* store = nullptr;
  std::string dir;  // <state dir>/intake

  // An appended record waiting to be written.
  struct Pending {
    std::string header;  // kHeaderBytes; sequence and header CRC filled in when written
    std::string body;
    std::shared_ptr<IntakeBatch> batch;
    std::function<void(Status)> done;
  };
  // A segment file as the syncers see it: one descriptor each. Own descriptors, not shared
  // ones: Linux reports a failed writeback to each open file description once, so a syncer on
  // a shared descriptor could be told "success" for data whose writeback failed after another
  // syncer had already been given the error.
  struct SegmentFile {
    std::string path;
    std::vector<int> sync_fds;
    bool broken = false;  // a sync failed: nothing written to it since is acknowledged (mu)
    ~SegmentFile() {
      for (int f : sync_fds) ::close(f);
    }
  };
  // A record acknowledged and not yet moved into the store: held in memory (`batch`), or only in
  // the log (batch null; IntakeOptions::max_unmoved_in_memory), at `offset` in `file` (its
  // segment cannot be retired before the record is moved).
  struct Unmoved {
    uint64_t seq = 0;
    std::shared_ptr<const IntakeBatch> batch;
    size_t jobs = 0;
    std::shared_ptr<SegmentFile> file;
    size_t offset = 0;
    size_t bytes = 0;  // header and body
  };
  // A group written to a segment, waiting for an fdatasync that started after its write.
  struct Written {
    uint64_t last_seq;
    size_t offset;  // where its first record starts
    std::shared_ptr<SegmentFile> file;
    std::vector<Pending> group;
  };
  // A closed segment file and the last sequence number in it (0: none).
  struct Segment {
    std::string path;
    uint64_t first_seq = 0;  // at most its first record's (the number it is named after)
    uint64_t last_seq = 0;
  };

  mutable std::mutex mu;
  std::condition_variable cv;
  std::vector<Pending> pending;  // appended, not yet written
  // Appends pacing holds (IntakeOptions::pace_above_jobs), oldest first, with when each came.
  struct Held {
    Pending p;
    std::chrono::steady_clock::time_point since;
  };
  std::deque<Held> held;
  uint64_t pending_jobs = 0;  // jobs pending, being written or written and not yet synced
  std::deque<Written> unsynced;
  uint64_t written_seq = 0;         // the last sequence number written (not necessarily synced)
  uint64_t sync_started_seq = 0;    // the highest one an fdatasync in flight or done covers
  std::condition_variable sync_cv;  // the syncers wait on it for something to write or sync
  // A syncer with work waits on it while another's sync is in flight (see SyncLoop). Appends
  // do not notify it: they would wake that syncer for nothing, once per webhook.
  std::condition_variable join_cv;
  int syncs_in_flight = 0;
  std::chrono::steady_clock::time_point last_sync_started;
  bool stop_syncers = false;
  std::vector<std::thread> syncers;
  std::deque<Unmoved> unmoved;
  uint64_t unmoved_jobs = 0;
  uint64_t unmoved_live_jobs = 0;      // of unmoved_jobs, those whose batch has them live
  uint64_t unmoved_log_only_jobs = 0;  // of unmoved_jobs, those held only in the log
  bool move_in_flight = false;
  std::optional<Error> move_error;  // the last move's failure, until a move succeeds
  std::chrono::milliseconds retry_delay{0};
  // No move starts before this: move_interval after the previous one started when it was a
  // busy one, or retry_delay after a failed one.
  std::chrono::steady_clock::time_point next_move_at;
  uint64_t acked_seq = 0;             // the last sequence number acknowledged
  uint64_t queued_records = 0;        // records ever put in `pending`
  uint64_t settled_records = 0;       // records ever taken from it and written (or failed)
  uint64_t moved_seq = 0;             // the last sequence number moved (committed in the store)
  uint64_t synced_seq = 0;            // moves up to this one are durable (SyncIntakeAppliedAsync)
  bool store_sync_in_flight = false;  // SyncIntakeAppliedAsync, not the log's own syncs
  // After a failed store sync, none before this (a later acknowledgement wakes the intake
  // thread to try again: LoopShouldWake).
  std::chrono::steady_clock::time_point store_sync_retry_at;
  bool loop_waiting_untimed = false;  // the intake thread waits without a deadline
  int moved_waiters = 0;              // WaitMoved calls waiting
  bool closed = false;                // no more appends
  bool stop = false;                  // the thread exits once nothing is pending or in flight
  std::thread thread;
  std::vector<Segment> closed_segments;

  // The files: written by one syncer at a time, retired by the intake thread. Lock order:
  // file_mu, then mu.
  std::mutex file_mu;
  uint64_t next_seq = 1;
  int fd = -1;
  std::shared_ptr<SegmentFile> current_file;  // the current segment, for the syncers
  std::string current_path;
  size_t current_size = 0;
  uint64_t current_first_seq = 0;  // the number the current segment is named after
  uint64_t current_last_seq = 0;
  std::vector<std::string> spares;         // segment files whose records are all moved, for reuse
  std::atomic<uint64_t> segment_count{0};  // files: current, closed and spare

  // Counters.
  std::atomic<uint64_t> appended{0}, appended_jobs{0}, write_failures{0}, rejected_full{0},
      paced{0}, read_back{0}, moved{0}, moved_jobs{0}, duplicates{0}, move_failures{0}, replayed{0},
      replayed_jobs{0}, torn_tails{0};

  ~Impl() {
    if (fd >= 0) ::close(fd);
  }

  bool CanMove() const {
    return !move_in_flight && !unmoved.empty() &&
           (std::chrono::steady_clock::now() >= next_move_at ||
            (!move_error && unmoved_jobs >= options.max_move_jobs));
  }

  // The jobs promised: queued or claimed in the store, and appended but not yet moved. The
  // store's count is read under mu: a move publishes its jobs in the store's count before its
  // callback takes them out of unmoved_jobs (under mu), so a job is counted once or, for a
  // moment, twice, never not at all. (Read before taking mu, a move finishing in between was in
  // neither count, and the bound let in more than it should.) mu held.
  uint64_t PromisedLocked(const StoreStats& s) const {
    return s.queued + unmoved_jobs + pending_jobs;
  }
  uint64_t PromisedLocked() const { return PromisedLocked(store->stats()); }
  // Whether an append admitted now keeps its jobs as derived (IntakeBatch::live) until its
  // move. A move hands fresh jobs to the workers as derived only when nothing waits in the
  // store's queue (Store::ApplyIntakeAsync); otherwise they are claimed later from their stored
  // payloads, and the derived jobs (about twice the bytes of the rows) only took memory until
  // the move: under a storm, thousands of them (bench/README.md, "Storm memory, third
  // round"). A guess (the queue may empty before the move): a wrong one costs a parse. mu held.
  bool KeepLiveLocked(const StoreStats& s) const {
    return s.queued <= s.claimed + s.handed;  // nothing waiting
  }
  // Whether pacing lets in an append of `n` jobs now (an empty backlog lets in any).
  bool PaceLetsIn(uint64_t promised, size_t n) const {
    return options.pace_above_jobs == 0 || promised == 0 || promised + n <= options.pace_above_jobs;
  }
  // Whether the oldest held append may go on now: it fits, or it waited long enough. mu held.
  bool HeldDue(std::chrono::steady_clock::time_point now) const {
    return !held.empty() && (now - held.front().since >= options.pace_max_wait ||
                             PaceLetsIn(PromisedLocked(), held.front().p.batch->jobs.size()));
  }
  // Takes an append into `pending` for the syncers or, when the jobs promised (`s`: the store's
  // stats, read under mu) and its own would pass the queue bound, returns why it is refused.
  // Derived jobs it does not keep (KeepLiveLocked) go to `unused`, for the caller to free
  // without mu. mu held.
  std::optional<Error> AdmitLocked(Pending& p, const StoreStats& s,
                                   std::vector<RoutingJob>& unused) {
    size_t n = p.batch->jobs.size();
    uint64_t promised = PromisedLocked(s);
    if (promised + n > options.max_queued_jobs) {
      rejected_full.fetch_add(1);
      return Error::Unavailable("store: queue is full (" + std::to_string(promised) + " of " +
                                std::to_string(options.max_queued_jobs) + " jobs queued)");
    }
    if (!p.batch->live.empty() && !KeepLiveLocked(s)) {
      for (RoutingJob& job : p.batch->live) unused.push_back(std::move(job));
      p.batch->live.clear();
    }
    pending_jobs += n;
    ++queued_records;
    pending.push_back(std::move(p));
    sync_cv.notify_one();
    return std::nullopt;
  }
  // Takes the held appends that are due, in order, into `pending` (or refuses them, queue
  // bound); their refusals go to `refused`, whose callbacks the caller runs without mu.
  void AdmitHeldLocked(std::vector<std::pair<Pending, Error>>& refused,
                       std::vector<RoutingJob>& unused) {
    auto now = std::chrono::steady_clock::now();
    while (HeldDue(now)) {
      Pending p = std::move(held.front().p);
      held.pop_front();
      if (std::optional<Error> e = AdmitLocked(p, store->stats(), unused)) {
        refused.emplace_back(std::move(p), std::move(*e));
      }
    }
  }
  // Closes the intake to appends and takes out every held one (the caller fails them without
  // mu: they were never written, so the sender still has them). mu held.
  std::deque<Held> CloseLocked() {
    closed = true;
    std::deque<Held> out;
    out.swap(held);
    return out;
  }
  static void FailHeld(std::deque<Held>& held_appends) {
    for (Held& h : held_appends) h.p.done(Error::Unavailable("intake: shutting down"));
  }

  // Whether a closed segment's records are all moved but not yet known durable: a sync of the
  // store is due before the segment can be reused. Intake thread, mu held.
  bool NeedStoreSync() const {
    return !store_sync_in_flight && std::chrono::steady_clock::now() >= store_sync_retry_at &&
           std::any_of(closed_segments.begin(), closed_segments.end(), [&](const Segment& s) {
             return s.last_seq > synced_seq && s.last_seq <= moved_seq;
           });
  }
  // Whether the intake thread may return: stopping, everything appended written and synced, no
  // move or store sync in flight. mu held.
  bool Finished() const {
    return stop && held.empty() && pending.empty() && unsynced.empty() && !move_in_flight &&
           !store_sync_in_flight;
  }
  // Whether a closed segment's records are all moved, the moves durable (up to `synced`), and
  // no job in the store keeps its payload in one of them (Store::RefersToIntakeRecords, asked
  // after `synced` was read: only moves committed before it can have made the references that
  // matter, and they are published at their commit).
  bool Retirable(const Segment& s, uint64_t synced) const {
    return s.last_seq <= synced && !store->RefersToIntakeRecords(s.first_seq, s.last_seq);
  }
  // Whether a closed segment can be retired now. A segment kept only for a job's payload is
  // retired at the first wake-up after that job completed (any move or acknowledgement; the
  // store does not wake the intake). Intake thread, mu held.
  bool NeedRetire() const {
    return std::any_of(closed_segments.begin(), closed_segments.end(),
                       [&](const Segment& s) { return Retirable(s, synced_seq); });
  }

  void Loop() {
    std::unique_lock<std::mutex> lk(mu);
    for (;;) {
      auto ready = [&] {
        return (CanMove() && !stop) || (NeedStoreSync() && !stop) || NeedRetire() ||
               (!held.empty() && HeldDue(std::chrono::steady_clock::now())) || Finished();
      };
      // Which wait applies is decided again after every wake-up: a move finishing leaves
      // records waiting for next_move_at, a time nothing else would wake the thread for, and
      // held appends wait for completions in the store, which do not wake it either.
      while (!ready()) {
        auto until = std::chrono::steady_clock::time_point::max();
        if (!move_in_flight && !unmoved.empty()) until = next_move_at;
        if (!held.empty()) {
          until = std::min(until, std::chrono::steady_clock::now() + options.pace_poll);
        }
        if (until != std::chrono::steady_clock::time_point::max()) {
          cv.wait_until(lk, until);
        } else {
          loop_waiting_untimed = true;
          cv.wait(lk);
          loop_waiting_untimed = false;
        }
      }
      if (!held.empty()) {
        std::vector<std::pair<Pending, Error>> refused;
        std::vector<RoutingJob> unused;
        AdmitHeldLocked(refused, unused);
        if (!refused.empty() || !unused.empty()) {
          lk.unlock();
          for (auto& [p, e] : refused) p.done(e);
          unused.clear();
          lk.lock();
        }
      }
      if (NeedRetire()) {
        uint64_t synced = synced_seq;
        lk.unlock();
        RetireSegments(synced);
        lk.lock();
      }
      // The sync runs on the store's writer, not here: this thread acknowledges webhooks.
      if (NeedStoreSync() && !stop) {
        uint64_t target = moved_seq;
        store_sync_in_flight = true;
        lk.unlock();
        store->SyncIntakeAppliedAsync([this, target](Status st) {
          std::lock_guard<std::mutex> g(mu);
          store_sync_in_flight = false;
          if (st.ok()) {
            synced_seq = std::max(synced_seq, target);
          } else {
            store_sync_retry_at = std::chrono::steady_clock::now() + options.retry_max;
            spdlog::warn("intake_segments_kept reason=\"{}\"", st.error().message);
          }
          cv.notify_all();
        });
        lk.lock();
      }
      // Once stopping, no new move starts: what is left is moved at the next Open.
      if (CanMove() && !stop) StartMove(lk);
      if (Finished()) return;
    }
  }

  // A settled group and how: its callbacks run once mu is released (RunCallbacks).
  struct Settled {
    std::vector<Pending> group;
    Status status;
  };

  // Queues an acknowledged record for its move: its batch held in memory while the records held
  // stay within max_unmoved_in_memory jobs, else only its place in the log (`file`, null when
  // it has none: then held). mu held, or in Open before any other thread runs.
  void AddUnmovedLocked(uint64_t seq, std::shared_ptr<const IntakeBatch> batch,
                        std::shared_ptr<SegmentFile> file, size_t offset, size_t bytes) {
    Unmoved u;
    u.seq = seq;
    u.jobs = batch->jobs.size();
    if (file != nullptr &&
        unmoved_jobs - unmoved_log_only_jobs + u.jobs > options.max_unmoved_in_memory) {
      u.file = std::move(file);
      u.offset = offset;
      u.bytes = bytes;
      unmoved_log_only_jobs += u.jobs;
    } else {
      if (!batch->live.empty()) unmoved_live_jobs += u.jobs;
      u.batch = std::move(batch);
    }
    unmoved_jobs += u.jobs;
    unmoved.push_back(std::move(u));
  }

  // Acknowledges (st ok; `where` is the group as written) or fails a written group: the
  // queue's bookkeeping, under mu. Past max_unmoved_in_memory, a record acknowledged is kept
  // only in the log: its batch is freed with the group once its callback ran.
  void SettleLocked(std::vector<Pending>& group, const Status& st, std::vector<Settled>& out,
                    const Written* where = nullptr) {
    uint64_t jobs = 0;
    size_t at = where != nullptr ? where->offset : 0;
    for (Pending& p : group) {
      size_t n = p.batch->jobs.size();
      size_t bytes = p.header.size() + p.body.size();
      jobs += n;
      if (st.ok()) {
        // Where the record is, for a job the store keeps only there (IntakeBatch::log_seq).
        // Set before the batch is shared: nothing else holds it yet.
        if (where != nullptr) {
          p.batch->log_seq = GetU64(p.header.data() + 12);
          p.batch->log_offset = at;
        }
        AddUnmovedLocked(GetU64(p.header.data() + 12), p.batch,
                         where != nullptr ? where->file : nullptr, at, bytes);
      }
      at += bytes;
    }
    pending_jobs -= jobs;
    settled_records += group.size();
    if (st.ok()) {
      acked_seq = unmoved.back().seq;
      appended.fetch_add(group.size());
      appended_jobs.fetch_add(jobs);
    } else {
      write_failures.fetch_add(1);
    }
    out.push_back({std::move(group), st});
  }

  // Runs the callbacks of settled groups, in order; then wakes WaitMoved (settled_records,
  // acked_seq) and the intake thread, when either waits for what changed. REQUIRES: mu not
  // held.
  void RunCallbacks(std::vector<Settled>& settled) {
    for (Settled& s : settled) {
      for (Pending& p : s.group) p.done(s.status);
    }
    std::lock_guard<std::mutex> lk(mu);
    if (moved_waiters > 0 || LoopShouldWake()) cv.notify_all();
  }

  // Whether the intake thread, waiting, must be woken now: it has work (the conditions of
  // Loop's ready()), or it waits without a deadline while records wait for a move (it must
  // start waiting for next_move_at). Under load it is mostly waiting for a move in flight or
  // for next_move_at, and syncs finish thousands of times a second: waking it for each cost
  // a context switch apiece. REQUIRES: mu held.
  bool LoopShouldWake() const {
    return CanMove() || NeedStoreSync() || NeedRetire() || stop ||
           (loop_waiting_untimed && !move_in_flight && !unmoved.empty());
  }

  // Writes everything pending as one group at the end of the current segment (not synced).
  // Syncer threads, one at a time (file_mu): records are numbered in the order they are written.
  void WritePending() {
    std::lock_guard<std::mutex> file_lock(file_mu);
    std::unique_lock<std::mutex> lk(mu);
    std::vector<Pending> group;
    group.swap(pending);
    if (group.empty()) return;  // another syncer wrote it
    // A segment a sync failed on is not written to again (what it holds past the failure is
    // unknown); the group goes to a new one.
    bool broken = current_file && current_file->broken;
    lk.unlock();
    if (broken) CloseSegment();
    size_t offset = 0;
    std::shared_ptr<SegmentFile> file;
    Status st = WriteGroup(group, &offset, &file);
    lk.lock();
    if (st.ok() && file->broken) {
      st = Error::Unavailable("intake: sync " + file->path + ": failed before");
    }
    if (st.ok()) {
      written_seq = GetU64(group.back().header.data() + 12);
      unsynced.push_back({written_seq, offset, std::move(file), std::move(group)});
      return;
    }
    std::vector<Settled> settled;
    SettleLocked(group, st, settled);
    lk.unlock();
    RunCallbacks(settled);
  }

  // A syncer thread: fdatasyncs whatever is written and not yet covered by a sync in flight,
  // then acknowledges what that covered. A sync that started after a group's write covers it,
  // whichever syncer ran it, so groups are acknowledged (acked_seq, the records to move) in
  // sequence order as syncs finish; the callbacks of two syncers may run at the same time.
  void SyncLoop(size_t index) {
    std::unique_lock<std::mutex> lk(mu);
    auto has_work = [&] { return !pending.empty() || written_seq > sync_started_seq; };
    for (;;) {
      sync_cv.wait(lk, [&] { return has_work() || stop_syncers; });
      if (!has_work()) return;  // stop_syncers
      if (syncs_in_flight > 0 && !stop_syncers) {
        // Join in only if the sync in flight stalls (see sync_overlap_after). No wake-up when
        // it ends: its own thread then takes the work.
        const auto join_at = last_sync_started + options.sync_overlap_after;
        if (std::chrono::steady_clock::now() < join_at) {
          join_cv.wait_until(lk, join_at, [&] { return syncs_in_flight == 0 || stop_syncers; });
          continue;  // look again: the work may be taken, or the sync still in flight
        }
      }
      if (!pending.empty()) {
        lk.unlock();
        WritePending();
        lk.lock();
      }
      // Nothing to do when a sync that started after this thread's write covers it already.
      if (written_seq <= sync_started_seq) continue;
      uint64_t target = written_seq;
      sync_started_seq = target;
      // The files to sync, oldest first (two when the current segment was rotated meanwhile).
      std::vector<std::shared_ptr<SegmentFile>> files;
      for (const Written& w : unsynced) {
        if (w.last_seq > target) break;
        if (files.empty() || files.back() != w.file) files.push_back(w.file);
      }
      ++syncs_in_flight;
      last_sync_started = std::chrono::steady_clock::now();
      lk.unlock();
      std::shared_ptr<SegmentFile> failed;
      std::string reason;
      for (const std::shared_ptr<SegmentFile>& f : files) {
        int fd_to_sync = f->sync_fds[index];
        if ((options.sync_for_tests ? options.sync_for_tests(fd_to_sync)
                                    : ::fdatasync(fd_to_sync)) != 0) {
          failed = f;
          reason = Errno("intake: sync " + f->path);
          break;
        }
      }
      lk.lock();
      --syncs_in_flight;
      std::vector<Settled> settled;
      // Everything up to target is durable, except in the file whose sync failed (and those
      // after it, which are left to a later sync).
      while (!unsynced.empty() && unsynced.front().last_seq <= target &&
             unsynced.front().file != failed &&
             (!failed || std::find(files.begin(), files.end(), unsynced.front().file) <
                             std::find(files.begin(), files.end(), failed))) {
        SettleLocked(unsynced.front().group, OkStatus(), settled, &unsynced.front());
        unsynced.pop_front();
      }
      if (failed && !failed->broken) {
        // Nothing written to that file since its last acknowledged group is acknowledged: it
        // all fails, the first failed group's header is erased (best effort) so that a later
        // read stops before it, and the next write starts a new segment.
        failed->broken = true;
        bool erased = false;
        for (auto it = unsynced.begin(); it != unsynced.end();) {
          if (it->file != failed) {
            ++it;
            continue;
          }
          if (!erased) {
            EraseHeader(failed->sync_fds[index], it->offset);
            erased = true;
          }
          SettleLocked(it->group, Error::Unavailable(reason), settled);
          it = unsynced.erase(it);
        }
      }
      if (settled.empty()) continue;
      lk.unlock();
      RunCallbacks(settled);
      lk.lock();
    }
  }

  // Starts the next segment, named after the next sequence number: a spare file when there is
  // one, else a new file filled with zeros up to segment_bytes. Records then overwrite bytes
  // already allocated and the file's size does not change, so an fdatasync need not write the
  // inode (on ext4 it then costs one device write instead of two; bench/README.md). A file
  // that cannot be filled (a nearly full disk) is used as it is and grows as it is written.
  Status OpenSegment() {
    current_path = (std::filesystem::path(dir) / SegmentName(next_seq)).string();
    current_size = 0;
    current_first_seq = next_seq;
    current_last_seq = 0;
    while (!spares.empty()) {
      // A spare may already have the new segment's name (an empty segment left by the previous
      // run): take that one, since renaming another onto it would replace it.
      auto named = std::find(spares.begin(), spares.end(), current_path);
      if (named == spares.end()) named = spares.end() - 1;
      std::string spare = std::move(*named);
      spares.erase(named);
      if (spare == current_path || ::rename(spare.c_str(), current_path.c_str()) == 0) {
        fd = ::open(current_path.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd >= 0) break;
        spare = current_path;
      }
      spdlog::warn("intake_spare_dropped path={} reason=\"{}\"", spare, std::strerror(errno));
      if (::unlink(spare.c_str()) == 0) segment_count.fetch_sub(1);
    }
    if (fd < 0) {
      fd = ::open(current_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (fd < 0) return Error::Unavailable(Errno("intake: create " + current_path));
      segment_count.fetch_add(1);
      if (!FillWithZeros(fd)) (void)::ftruncate(fd, 0);
    }
    // The file's directory entry must be durable before anything in it is acknowledged.
    if (Status st = SyncDirectory(dir); !st.ok()) {
      CloseSegment();
      return Error::Unavailable("intake: " + st.error().message);
    }
    auto file = std::make_shared<SegmentFile>();
    file->path = current_path;
    for (size_t i = 0; i < options.sync_threads; ++i) {
      int f = ::open(current_path.c_str(), O_WRONLY | O_CLOEXEC);
      if (f < 0) {
        Error e = Error::Unavailable(Errno("intake: open " + current_path));
        CloseSegment();
        return e;
      }
      file->sync_fds.push_back(f);
    }
    current_file = std::move(file);
    return OkStatus();
  }

  // Creates a preallocated spare at `path`; nothing when it cannot be filled (a nearly full
  // disk: segments then grow as they are written).
  void MakeSpare(const std::string& path) {
    int spare = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (spare < 0) return;
    bool filled = FillWithZeros(spare);
    ::close(spare);
    if (filled) {
      spares.push_back(path);
      segment_count.fetch_add(1);
    } else {
      ::unlink(path.c_str());
    }
  }

  // Writes zeros over the first segment_bytes of `file` and syncs them.
  bool FillWithZeros(int file) {
    static const std::string zeros(1 << 20, '\0');
    for (size_t at = 0; at < options.segment_bytes; at += zeros.size()) {
      size_t n = std::min(zeros.size(), options.segment_bytes - at);
      if (::pwrite(file, zeros.data(), n, static_cast<off_t>(at)) != static_cast<ssize_t>(n)) {
        return false;
      }
    }
    return ::fdatasync(file) == 0;
  }

  // Closes the current segment. One without records of this run becomes a spare.
  void CloseSegment() {
    if (fd < 0) return;
    ::close(fd);
    fd = -1;
    current_file.reset();  // groups waiting for a sync hold on to it
    if (current_last_seq == 0) {
      Retire(current_path);
    } else {
      std::lock_guard<std::mutex> lk(mu);
      closed_segments.push_back({current_path, current_first_seq, current_last_seq});
    }
  }

  // A segment whose records are all moved: kept as a spare (up to two, enough to rotate
  // without creating files under steady load), else removed.
  void Retire(const std::string& path) {
    if (spares.size() < 2) {
      spares.push_back(path);
    } else if (::unlink(path.c_str()) == 0 || errno == ENOENT) {
      segment_count.fetch_sub(1);
    } else {
      spdlog::warn("intake_segment_not_removed path={} reason=\"{}\"", path, std::strerror(errno));
    }
  }

  // Numbers and writes a group (not synced yet); sets where it starts and in which file.
  // Sequence numbers are used up even when the write fails: a failed write may leave bytes
  // behind that a later read finds, and they must not carry the numbers of records written
  // after them. (Numbers are not used up when no segment could be opened: nothing was written.)
  Status WriteGroup(std::vector<Pending>& group, size_t* offset,
                    std::shared_ptr<SegmentFile>* file) {
    // A new segment first: it is named after the first record it will hold.
    if (fd < 0) {
      if (Status st = OpenSegment(); !st.ok()) return st;
    }
    for (Pending& p : group) SealHeader(p.header.data(), next_seq++);
    *offset = current_size;
    *file = current_file;
    std::vector<iovec> iov;
    iov.reserve(group.size() * 2);
    size_t total = 0;
    for (Pending& p : group) {
      iov.push_back({p.header.data(), p.header.size()});
      iov.push_back({p.body.data(), p.body.size()});
      total += p.header.size() + p.body.size();
    }
    Status st = WriteAll(iov);
    if (!st.ok()) {
      // Unacknowledged: erase the group's first header (best effort) so that a later read
      // stops before it, and never write to the file again: after a failed write, what it
      // holds past that point is unknown.
      EraseHeader(fd, current_size);
      CloseSegment();
      return st;
    }
    current_size += total;
    current_last_seq = GetU64(group.back().header.data() + 12);
    if (current_size >= options.segment_bytes) CloseSegment();
    return OkStatus();
  }

  // Writes `iov` at the end of the current segment's records.
  Status WriteAll(std::vector<iovec>& iov) {
    size_t i = 0;
    size_t at = current_size;
    while (i < iov.size()) {
      int n = static_cast<int>(std::min<size_t>(iov.size() - i, IOV_MAX));
      ssize_t w = ::pwritev(fd, iov.data() + i, n, static_cast<off_t>(at));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return Error::Unavailable(Errno("intake: write " + current_path));
      auto left = static_cast<size_t>(w);
      at += left;
      while (i < iov.size() && left >= iov[i].iov_len) {
        left -= iov[i].iov_len;
        ++i;
      }
      if (left > 0) {
        iov[i].iov_base = static_cast<char*>(iov[i].iov_base) + left;
        iov[i].iov_len -= left;
      }
    }
    return OkStatus();
  }

  // Hands the oldest unmoved records to the store. REQUIRES: lk holds mu; CanMove().
  void StartMove(std::unique_lock<std::mutex>& lk) {
    std::vector<std::shared_ptr<const IntakeBatch>> batches;
    std::vector<std::pair<size_t, Unmoved>> in_log;  // (index in batches, where), read below
    size_t jobs = 0;
    for (const Unmoved& u : unmoved) {
      if (!batches.empty() && jobs + u.jobs > options.max_move_jobs) break;
      if (u.batch == nullptr) in_log.emplace_back(batches.size(), u);
      batches.push_back(u.batch);
      jobs += u.jobs;
    }
    size_t count = batches.size();
    uint64_t last_seq = unmoved[count - 1].seq;
    move_in_flight = true;
    next_move_at = std::chrono::steady_clock::now();
    if (count >= options.busy_move_records) next_move_at += options.move_interval;
    lk.unlock();
    // Read back without mu: appends go on meanwhile. (Only MoveDone takes records out of
    // `unmoved`, and no other move can start.)
    if (Status st = ReadBack(in_log, batches); !st.ok()) {
      MoveDone(count, last_seq, st.error());
      lk.lock();
      return;
    }
    // The callback may run before ApplyIntakeAsync returns (a closed store): mu is not held.
    store->ApplyIntakeAsync(std::move(batches), last_seq,
                            [this, count, last_seq](Result<EnqueueOutcome> r) {
                              MoveDone(count, last_seq, std::move(r));
                            });
    lk.lock();
  }

  // Reads the records kept only in the log back into `batches`. A record that does not read
  // back as written (an I/O error; the file changed under the daemon) fails the move, which is
  // retried later as any failed move. Intake thread, mu not held.
  Status ReadBack(const std::vector<std::pair<size_t, Unmoved>>& in_log,
                  std::vector<std::shared_ptr<const IntakeBatch>>& batches) {
    int in = -1;
    const SegmentFile* open_file = nullptr;
    Status st = OkStatus();
    for (const auto& [index, u] : in_log) {
      if (u.file.get() != open_file) {
        if (in >= 0) ::close(in);
        open_file = u.file.get();
        in = ::open(u.file->path.c_str(), O_RDONLY | O_CLOEXEC);
        if (in < 0) {
          st = Error::Unavailable(Errno("intake: read back " + u.file->path));
          break;
        }
      }
      // The record's size is known: a record that is not there does not check.
      Result<std::optional<IntakeBatch>> record = ReadRecordAt(in, u.offset, u.seq, u.bytes);
      if (!record.ok()) {
        st =
            Error::Unavailable("intake: read back " + u.file->path + ": " + record.error().message);
        break;
      }
      batches[index] = std::make_shared<const IntakeBatch>(std::move(**record));
      read_back.fetch_add(1);
    }
    if (in >= 0) ::close(in);
    return st;
  }

  void MoveDone(size_t count, uint64_t last_seq, Result<EnqueueOutcome> r) {
    std::lock_guard<std::mutex> lk(mu);
    move_in_flight = false;
    if (r.ok()) {
      for (size_t i = 0; i < count; ++i) {
        const Unmoved& u = unmoved.front();
        unmoved_jobs -= u.jobs;
        if (u.batch == nullptr) {
          unmoved_log_only_jobs -= u.jobs;
        } else if (!u.batch->live.empty()) {
          unmoved_live_jobs -= u.jobs;
        }
        unmoved.pop_front();
      }
      moved_seq = last_seq;
      moved.fetch_add(count);
      moved_jobs.fetch_add(r->job_ids.size());
      duplicates.fetch_add(r->duplicates);
      if (move_error) {
        spdlog::info("intake_moving_again records_waiting={}", unmoved.size());
        move_error.reset();
        retry_delay = std::chrono::milliseconds(0);
      }
    } else {
      move_failures.fetch_add(1);
      retry_delay = std::clamp(retry_delay * 2, options.retry_min, options.retry_max);
      next_move_at = std::chrono::steady_clock::now() + retry_delay;
      if (!move_error || move_error->message != r.error().message) {
        spdlog::error("intake_move_failed records_waiting={} retry_in_ms={} reason=\"{}\"",
                      unmoved.size(), retry_delay.count(), r.error().message);
      }
      move_error = r.error();
      DropLiveLocked();
    }
    cv.notify_all();
  }

  // Drops the derived jobs (IntakeBatch::live) of the records waiting to be moved: while the
  // store refuses moves, records wait here up to the queue bound, and each would hold its jobs
  // twice. Claims of these records parse the stored payloads instead. REQUIRES: mu held; no
  // move in flight (the store holds no claim on these batches: a failed move published none).
  void DropLiveLocked() {
    for (Unmoved& u : unmoved) {
      if (u.batch == nullptr || u.batch->live.empty()) continue;
      auto lean = std::make_shared<IntakeBatch>();
      lean->now_ns = u.batch->now_ns;
      lean->dedup_window_ns = u.batch->dedup_window_ns;
      lean->jobs = u.batch->jobs;
      lean->log_seq = u.batch->log_seq;
      lean->log_offset = u.batch->log_offset;
      u.batch = std::move(lean);
    }
    unmoved_live_jobs = 0;
  }

  // Retires the closed segments that are Retirable with moves durable up to `synced`. Intake
  // thread only (or Open, before it starts).
  void RetireSegments(uint64_t synced) {
    std::lock_guard<std::mutex> file_lock(file_mu);
    std::vector<std::string> retired;
    {
      std::lock_guard<std::mutex> lk(mu);
      auto moved_end =
          std::stable_partition(closed_segments.begin(), closed_segments.end(),
                                [&](const Segment& s) { return Retirable(s, synced); });
      for (auto it = closed_segments.begin(); it != moved_end; ++it) retired.push_back(it->path);
      closed_segments.erase(closed_segments.begin(), moved_end);
    }
    for (const std::string& path : retired) Retire(path);
  }
};

Result<std::unique_ptr<Intake>> Intake::Open(const IntakeOptions& options, Store* store) {
  namespace fs = std::filesystem;
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (impl->options.max_move_jobs == 0) impl->options.max_move_jobs = 1;
  impl->options.sync_threads = std::clamp<size_t>(impl->options.sync_threads, 1, 16);
  impl->store = store;
  impl->dir = (fs::path(options.dir) / "intake").string();
  std::error_code ec;
  fs::create_directories(impl->dir, ec);
  if (ec) return Error::Unavailable("intake: cannot create " + impl->dir + ": " + ec.message());
  fs::permissions(impl->dir, fs::perms::owner_all, ec);

  Result<uint64_t> moved = store->IntakeApplied();
  if (!moved.ok()) return moved.error();
  impl->moved_seq = *moved;
  impl->acked_seq = *moved;

  std::vector<std::string> paths;
  for (const fs::directory_entry& e : fs::directory_iterator(impl->dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.size() == std::strlen(kPrefix) + 20 + std::strlen(kSuffix) &&
        name.rfind(kPrefix, 0) == 0 && name.compare(name.size() - 4, 4, kSuffix) == 0) {
      paths.push_back(e.path().string());
    }
  }
  if (ec) return Error::Unavailable("intake: cannot list " + impl->dir + ": " + ec.message());
  std::sort(paths.begin(), paths.end());  // zero-padded first sequence numbers: oldest first

  uint64_t last_seq = *moved;
  for (const std::string& path : paths) {
    Result<std::string> bytes = ReadFileCapped(path, kMaxSegmentFileBytes);
    if (!bytes.ok()) return Error::Unavailable("intake: " + bytes.error().message);
    IntakeSegmentContents c = DecodeIntakeSegment(*bytes);
    if (!c.clean_end) {
      // The torn tail of a write a crash interrupted (nothing in it was acknowledged), or the
      // leftovers of the file's previous use.
      impl->torn_tails.fetch_add(1);
      spdlog::info("intake_segment_tail_ignored path={} bytes={} reason=\"{}\"", path,
                   bytes->size() - c.valid_bytes, c.stop_reason);
    }
    uint64_t segment_last = 0;
    // Records past max_unmoved_in_memory are read back when moved, as at run time: a restart
    // with a deep backlog in the log holds no more of it than the running daemon did. (Only
    // the path is read back through: a replayed segment is never written again.)
    auto file = std::make_shared<Impl::SegmentFile>();
    file->path = path;
    for (IntakeRecord& r : c.records) {
      segment_last = r.seq;
      if (r.seq <= last_seq) continue;  // moved already (or out of order across segments)
      last_seq = r.seq;
      impl->replayed.fetch_add(1);
      impl->replayed_jobs.fetch_add(r.batch.jobs.size());
      r.batch.log_seq = r.seq;
      r.batch.log_offset = r.offset;
      impl->AddUnmovedLocked(r.seq, std::make_shared<const IntakeBatch>(std::move(r.batch)), file,
                             r.offset, r.bytes);
    }
    impl->closed_segments.push_back(
        {path, c.records.empty() ? 0 : c.records.front().seq, segment_last});
    impl->segment_count.fetch_add(1);
  }
  impl->acked_seq = last_seq;
  impl->next_seq = last_seq + 1;
  // Segments with nothing left to move are retired now (after making sure their moves are
  // durable: a crash may have left them committed but not synced); the rest once their records
  // are moved.
  if (impl->NeedStoreSync()) {
    if (Status st = store->SyncIntakeApplied(); st.ok()) {
      impl->synced_seq = impl->moved_seq;
    } else {
      spdlog::warn("intake_segments_kept reason=\"{}\"", st.error().message);
    }
  }
  impl->RetireSegments(impl->synced_seq);
  // The first segment is made now rather than by the first webhook (a failure is retried
  // then), and a spare with it, so that the first rotation does not fill a new file with zeros
  // while webhooks wait; later rotations find the segments retired since.
  if (Status st = impl->OpenSegment(); !st.ok()) {
    spdlog::warn("intake_segment_not_created reason=\"{}\"", st.error().message);
  }
  if (impl->spares.empty()) impl->MakeSpare((fs::path(impl->dir) / kFirstSpareName).string());

  Impl* raw = impl.get();
  for (size_t i = 0; i < impl->options.sync_threads; ++i) {
    impl->syncers.emplace_back([raw, i] {
      pthread_setname_np(pthread_self(), "tp-intake-sync");
      raw->SyncLoop(i);
    });
  }
  impl->thread = std::thread([raw] {
    pthread_setname_np(pthread_self(), "tp-intake");
    raw->Loop();
  });
  return std::unique_ptr<Intake>(new Intake(std::move(impl)));
}

Intake::Intake(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Intake::~Intake() {
  std::deque<Impl::Held> held;
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    held = impl_->CloseLocked();
    impl_->stop = true;
    impl_->cv.notify_all();
  }
  Impl::FailHeld(held);
  // The intake thread returns once the syncers have written and synced everything pending.
  if (impl_->thread.joinable()) impl_->thread.join();
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stop_syncers = true;
    impl_->sync_cv.notify_all();
    impl_->join_cv.notify_all();
  }
  for (std::thread& t : impl_->syncers) t.join();
  std::lock_guard<std::mutex> file_lock(impl_->file_mu);
  impl_->CloseSegment();
}

void Intake::AppendAsync(std::vector<RoutingJob> jobs, int64_t now_ns, int64_t dedup_window_ns,
                         std::function<void(Status)> done) {
  if (jobs.empty()) {
    done(OkStatus());
    return;
  }
  // Encoded here, on the caller's thread: the syncers are what every webhook waits for.
  auto batch = std::make_shared<IntakeBatch>();
  batch->now_ns = now_ns;
  batch->dedup_window_ns = dedup_window_ns;
  batch->jobs.reserve(jobs.size());
  for (const RoutingJob& job : jobs) batch->jobs.push_back(JobRowOf(job));
  batch->live = std::move(jobs);
  Impl::Pending p;
  p.body = EncodeBody(*batch);
  p.header = UnsealedHeader(p.body);
  p.batch = std::move(batch);
  p.done = std::move(done);
  size_t n = p.batch->jobs.size();
  std::optional<Error> refused;
  std::vector<RoutingJob> unused;  // freed after mu is released
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    Impl& i = *impl_;
    StoreStats stats = i.store->stats();
    uint64_t promised = i.PromisedLocked(stats);
    if (i.closed) {
      refused = Error::Unavailable("intake: shutting down");
    } else if ((i.held.empty() && i.PaceLetsIn(promised, n)) ||
               promised + n > i.options.max_queued_jobs) {
      refused = i.AdmitLocked(p, stats, unused);
      if (!refused) return;
    } else {
      // Paced: behind the appends already held. The intake thread may be waiting without a
      // deadline; it has to start looking at the backlog.
      if (i.held.empty()) i.cv.notify_all();
      i.held.push_back({std::move(p), std::chrono::steady_clock::now()});
      i.paced.fetch_add(1);
      return;
    }
  }
  p.done(*refused);
}

Status Intake::Append(std::vector<RoutingJob> jobs, int64_t now_ns, int64_t dedup_window_ns) {
  auto promise = std::make_shared<std::promise<Status>>();
  std::future<Status> future = promise->get_future();
  AppendAsync(std::move(jobs), now_ns, dedup_window_ns,
              [promise](Status st) { promise->set_value(std::move(st)); });
  return future.get();
}

void Intake::Close() {
  std::deque<Impl::Held> held;
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    held = impl_->CloseLocked();
  }
  Impl::FailHeld(held);
}

bool Intake::WaitMoved(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(impl_->mu);
  // Records appended before this call are pending or acknowledged; wait for them to be written,
  // then for the last of them to be moved.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  uint64_t appended = impl_->queued_records;
  ++impl_->moved_waiters;
  struct Done {
    int& waiters;
    ~Done() { --waiters; }
  } done{impl_->moved_waiters};
  if (!impl_->cv.wait_until(lk, deadline, [&] { return impl_->settled_records >= appended; })) {
    return false;
  }
  uint64_t target = impl_->acked_seq;
  return impl_->cv.wait_until(lk, deadline, [&] {
    return impl_->moved_seq >= target || (impl_->move_error && !impl_->move_in_flight);
  }) && impl_->moved_seq >= target;
}

IntakeStats Intake::stats() const {
  IntakeStats s;
  const Impl& i = *impl_;
  s.appended = i.appended;
  s.appended_jobs = i.appended_jobs;
  s.write_failures = i.write_failures;
  s.rejected_full = i.rejected_full;
  s.paced = i.paced;
  s.moved = i.moved;
  s.moved_jobs = i.moved_jobs;
  s.duplicates = i.duplicates;
  s.move_failures = i.move_failures;
  s.replayed_at_open = i.replayed;
  s.replayed_jobs_at_open = i.replayed_jobs;
  s.torn_tails_at_open = i.torn_tails;
  s.segments = i.segment_count;
  std::lock_guard<std::mutex> lk(i.mu);
  s.unmoved_jobs = i.unmoved_jobs;
  s.unmoved_live_jobs = i.unmoved_live_jobs;
  s.unmoved_log_only_jobs = i.unmoved_log_only_jobs;
  s.read_back = i.read_back.load();
  s.pacing_now = i.held.size();
  s.moving_ok = !i.move_error.has_value();
  return s;
}

}  // namespace tracepager::daemon
