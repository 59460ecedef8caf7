// Intake: the append-only log every accepted webhook is written to before the daemon answers
// 2xx, and from which the webhooks are moved into the store's queue tables.
//
// Why a log in front of the queue: acknowledging a webhook only needs it to be durable, not
// indexed. With the queue's SQL on the acknowledgement path every answer waited behind the
// writer's current transaction (claims, completions, maintenance of the whole daemon) and its
// fsync; a webhook appended to a file is written at once and is durable after the first
// fdatasync that started after its write (a few run at once, each covering everything written
// before it started), shared by every webhook written meanwhile.
// Moving webhooks into the queue then happens in large batches off the acknowledgement path
// (bench/README.md has the numbers).
//
// Guarantees:
//   - AppendAsync reports success only after the webhook's record is written and fdatasync'ed
//     (and the directory entry of a new segment file synced): an acknowledged webhook survives
//     kill -9 and power loss.
//   - Every acknowledged record is moved into the store exactly once: Store::ApplyIntakeAsync
//     inserts a batch of records and records the last one's sequence number in the same
//     transaction; at Open the records after that number are moved again. Records are moved in
//     sequence order, never past one that has not been moved.
//   - A segment file is reused or deleted only after every record in it has been moved and that
//     move is durable in the store, and no job in the store keeps its payload in one of its
//     records any more (Store::RefersToIntakeRecords: the jobs a move hands straight to a worker
//     are stored without their payload when the store reads payloads from the log,
//     StoreOptions::intake_payload_reader).
//   - Duplicates (the store's dedup window) are dropped when records are moved, measured from
//     the time each webhook was received.
//   - Pacing: while the backlog (the store's queued and claimed jobs plus the jobs appended and
//     not yet moved) is above pace_above_jobs, AppendAsync holds a webhook, unwritten and
//     unacknowledged, until the backlog is back below it or pace_max_wait has passed; held
//     webhooks are written in the order they arrived. A sender faster than the workers is
//     slowed down to the workers' pace instead of filling the queue and then being refused.
//   - The queue bound (max_queued_jobs) counts the store's queued jobs plus the jobs appended
//     and not yet moved: AppendAsync fails with kUnavailable ("queue is full") beyond it. It
//     also bounds the log while the store refuses moves (its max_size reached, I/O errors): the
//     log keeps taking webhooks, durably, moves are retried, and stats().moving_ok is false
//     (the daemon reports not ready). A failed write of the log (a full disk) fails the
//     webhooks of that write with kUnavailable; a failed fdatasync fails every webhook written
//     to that segment and not yet acknowledged, and the next write starts a new segment.
//   - A record is written as [magic][body length][body CRC-32][sequence][header CRC-32][body];
//     reading a segment stops at the first record that is incomplete or does not check (the
//     torn tail of a write a crash interrupted; nothing after it was acknowledged, since a write
//     is acknowledged only once it and everything before it are synced).
//
// Files: <dir>/intake/intake-<first sequence number, 20 digits>.log. A new segment is started
// at Open and when the current one reaches segment_bytes; segments are never written to after
// they are closed (so a torn tail stays at a segment's end). A new file is filled with zeros to
// segment_bytes first, and a segment whose records are all moved is kept (two at most) and
// reused, renamed, as a later segment: records overwrite allocated bytes, which makes each
// fdatasync cheaper. Open prepares the first segment and one spare, so that webhooks do not
// wait for a file to be filled (unless moves fall more than two segments behind, or jobs still
// being routed keep old segments: then a rotation fills a new file while webhooks wait).
// Reading a reused file stops at the first record older than the one before it. The directory
// belongs with the store's database: remove both or neither (a log read against a new database
// queues its records again; a database without its log has jobs whose payload is gone, which
// are set aside as dead when claimed).
//
// Thread-safety: every method may be called from any thread. Callbacks run on the intake's
// syncer threads (the one that acknowledged or failed the record; an append refused at once
// calls back on the caller's thread, one pacing held and then refused on the intake's thread,
// or on the thread that called Close or the destructor); they must not block and must not call
// blocking Intake methods.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/job.h"
#include "daemon/store.h"
#include "routing/result.h"

namespace tracepager::daemon {

struct IntakeOptions {
  std::string dir;  // the state directory; the log lives in <dir>/intake (created 0700)
  uint64_t max_queued_jobs = 100'000;
  // Pacing (see Guarantees): 0 turns it off. An append that would take the backlog past
  // pace_above_jobs waits, behind any append already waiting, until it fits (or the backlog is
  // empty) or pace_max_wait has passed; then it is written, or refused when the queue bound is
  // reached. The backlog shrinks when the store completes jobs, which does not tell the intake:
  // while appends wait, the intake thread looks at it every pace_poll. An append that finds the
  // queue bound reached is refused at once, waiting or not.
  //
  // Why wait rather than refuse: Alertmanager retries a refused notification with backoff and
  // drops it when its retries run out; an answer that comes later it simply waits for. And a
  // backlog that stays short keeps the daemon's memory and the routing delay bounded.
  uint64_t pace_above_jobs = 0;
  std::chrono::milliseconds pace_max_wait{2000};
  std::chrono::milliseconds pace_poll{1};
  size_t segment_bytes = 8u << 20;  // a segment is preallocated to this size, then rotated
  size_t max_move_jobs = 2048;      // jobs moved into the store per transaction, at most
  // Records waiting to be moved are held in memory up to this many jobs; the records
  // acknowledged (or found at Open) beyond it are read back from the log when they are moved.
  // A store that falls behind (a storm's completions, a slow disk) or refuses moves (a full
  // disk) then costs the daemon no more memory: before, every waiting record was held, up to
  // the queue bound (8,646 jobs, about 13 MB, at one moment of the load bench; bench/README.md,
  // "Storm memory, third round"). 512 rather than 2048 since the acknowledgement arena
  // (daemon/allocator.h) keeps freed pages for reuse: the records a move frees were that
  // arena's largest swing. Steady ingest stays below it (a move every move_interval takes
  // about 250 jobs at 12,000 webhooks a second); bench/README.md, "The acknowledgement arena".
  size_t max_unmoved_in_memory = 512;
  // Under load (the previous move took at least busy_move_records webhooks), moves start at
  // most every move_interval (sooner when max_move_jobs are waiting); otherwise a webhook is
  // moved as soon as the move before it finished, so that a lone alert is routed at once. Each
  // move is a store transaction that rewrites the queue's hot pages, and the workers claim what
  // it moved: fewer, larger moves cost less per webhook when there are many.
  std::chrono::milliseconds move_interval{10};
  size_t busy_move_records = 16;
  // Threads that fdatasync the log. A second sync starts while one is in flight only once that
  // one has run for sync_overlap_after: normally one sync runs at a time and covers everything
  // written meanwhile (fewer, larger groups: a sync costs the syncer a sleep and a wake-up,
  // tens of microseconds of CPU on a VM), while a sync that stalls (single fdatasync calls of
  // 20-300 ms happen on ordinary disks) does not hold up every webhook behind it: syncs in
  // flight together overlap on the device, which merges their cache flushes.
  size_t sync_threads = 2;
  std::chrono::microseconds sync_overlap_after{2000};
  // Tests only: called instead of ::fdatasync(fd) for the syncs that acknowledge records (to
  // fail or hold one). Empty: ::fdatasync.
  std::function<int(int fd)> sync_for_tests;
  std::chrono::milliseconds retry_min{100};  // after a failed move, doubling up to retry_max
  std::chrono::milliseconds retry_max{2000};
};

struct IntakeStats {
  uint64_t appended = 0;        // webhooks acknowledged (records written and synced)
  uint64_t appended_jobs = 0;   // their jobs
  uint64_t write_failures = 0;  // writes or syncs of the log that failed
  uint64_t rejected_full = 0;   // appends refused because the queue bound was reached
  uint64_t paced = 0;           // appends that waited (pacing), whatever became of them
  uint64_t pacing_now = 0;      // appends waiting now
  uint64_t moved = 0;           // records moved into the store
  uint64_t moved_jobs = 0;      // jobs they queued (duplicates excluded)
  uint64_t duplicates = 0;      // jobs dropped as duplicates when moved
  uint64_t move_failures = 0;   // moves the store refused (retried)
  uint64_t unmoved_jobs = 0;    // jobs acknowledged and not yet moved, now
  // Of those, the jobs also held as derived (IntakeBatch::live), which doubles what each takes
  // in memory. Kept only by appends admitted while no job waited in the store's queue (a move
  // hands derived jobs to the workers only then); dropped when a move fails, so that records
  // waiting for a store that refuses them (up to the queue bound) are held once.
  uint64_t unmoved_live_jobs = 0;
  // Of unmoved_jobs, those held only in the log (max_unmoved_in_memory), read back when moved.
  uint64_t unmoved_log_only_jobs = 0;
  uint64_t read_back = 0;              // records read back from the log to be moved
  uint64_t replayed_at_open = 0;       // records found at Open that were not moved yet
  uint64_t replayed_jobs_at_open = 0;  // their jobs
  uint64_t torn_tails_at_open = 0;     // segments whose records end in a torn or bad record
  uint64_t segments = 0;               // segment files now
  bool moving_ok = true;               // false while moves into the store fail
};

// A record as read back from a segment.
struct IntakeRecord {
  uint64_t seq = 0;
  IntakeBatch batch;
  size_t offset = 0;  // where it starts in the segment, header included
  size_t bytes = 0;   // its header and body
};
struct IntakeSegmentContents {
  std::vector<IntakeRecord> records;  // in file order; sequence numbers strictly increase
  size_t valid_bytes = 0;             // the records above end here
  std::string stop_reason;            // why reading stopped before the end; empty at the end
  // Whether reading ended where records normally end: the end of the input, bytes that do not
  // start a record (zeros of unused preallocated space, or what a reused file held before) or a
  // record older than the one before it (the file's previous use). False at a record that does
  // not check: one whose write was cut short, or damage.
  bool clean_end = true;
};
// Reads a segment file's bytes (any bytes: a damaged or hostile file is read up to its first
// bad record, never past the input, and never allocates more than the input's size per record).
IntakeSegmentContents DecodeIntakeSegment(std::string_view bytes);
// One record's bytes, as Intake writes them (for tests and the fuzz corpus).
std::string EncodeIntakeRecord(uint64_t seq, const IntakeBatch& batch);

// A job's payload that the store left in the log (StoreOptions::intake_payload_reader): job
// `ref.index` of the record `ref.seq` at `ref.offset` of its segment, under <state_dir>/intake.
// kNotFound when no segment holds that record there or it does not check (a log removed or
// damaged: the job cannot be routed), kUnavailable when a file cannot be listed, opened or read
// now (an I/O error: worth trying again). Reads only; any thread.
Result<std::string> ReadIntakeJobPayload(const std::string& state_dir, const IntakeLogRef& ref);

class Intake {
 public:
  // Opens the log in <options.dir>/intake, reads every segment, and queues the records after
  // store->IntakeApplied() to be moved into the store (they are moved by the intake's thread,
  // first thing). kUnavailable when the directory or a segment cannot be read or created.
  // REQUIRES: `store` outlives the Intake.
  static Result<std::unique_ptr<Intake>> Open(const IntakeOptions& options, Store* store);

  // Writes what is pending, waits for a move in progress, and stops. Records not yet moved
  // stay in the log and are moved at the next Open.
  ~Intake();
  Intake(const Intake&) = delete;
  Intake& operator=(const Intake&) = delete;

  // Appends one webhook's jobs (received at `now_ns`, deduplicated within `dedup_window_ns`
  // when moved). `done` runs once: OK after the record is durable, kUnavailable when it was
  // not written (queue bound, moves failing, write or sync error, Close). An empty `jobs` is
  // acknowledged at once without a record. Pacing may hold the append before it is written
  // (IntakeOptions::pace_above_jobs).
  void AppendAsync(std::vector<RoutingJob> jobs, int64_t now_ns, int64_t dedup_window_ns,
                   std::function<void(Status)> done);
  Status Append(std::vector<RoutingJob> jobs, int64_t now_ns, int64_t dedup_window_ns);

  // Refuses further appends (kUnavailable "shutting down"), and those pacing holds; pending
  // ones are still written.
  void Close();
  // Blocks until every record acknowledged before the call has been moved into the store, a
  // move fails, or `timeout` passes; true when everything was moved.
  bool WaitMoved(std::chrono::milliseconds timeout);

  IntakeStats stats() const;

  struct Impl;

 private:
  explicit Intake(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracepager::daemon
