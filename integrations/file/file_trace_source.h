// FileTraceSource: the `file` trace source of the embedded defaults. Traces come from a
// directory of JSON files in any format routing::ReadTraces reads (Jaeger v1, OTLP/Tempo/Jaeger
// v3, Zipkin v2; several traces per file allowed), so the daemon can run without a tracing
// backend, and tests and demos can drop traces in as files.
//
// Index: every regular *.json file directly in the directory (not subdirectories; hidden files
// skipped) is read at Load, up to max_file_bytes each. Traces are indexed by trace id and, per
// service that has a span in them, by their time range. A file that cannot be read or parsed is
// skipped and named in warnings(); one bad file never hides the others. When the same trace id
// appears in several files, the file that sorts first wins (and a warning says so).
//
// Late traces: a FetchTrace for an unknown id rescans the directory when its listing changed
// since the last scan (files added, removed or modified), so a trace written after the alert is
// found on the next attempt, as with a real backend that indexes late.
//
// Answers are synchronous: `done` runs on the caller's thread before the call returns.
// Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "integrations/trace_source.h"
#include "routing/result.h"

namespace tracepager::integrations {

struct FileTraceSourceOptions {
  std::string dir;
  uint64_t max_file_bytes = 64u << 20;
};

class FileTraceSource final : public TraceSource {
 public:
  // Scans `options.dir`. kUnavailable when the directory cannot be listed.
  static Result<std::shared_ptr<FileTraceSource>> Load(FileTraceSourceOptions options);

  // Indexes exactly `files` (any name; of a trace id in several, the path that sorts first
  // wins) instead of a directory: `route --alert` replays an alert over the trace files a person
  // names. A file that cannot be read is a warning, as in a directory. Never fails.
  static std::shared_ptr<FileTraceSource> LoadFiles(std::vector<std::string> files,
                                                    uint64_t max_file_bytes = 64u << 20);

  std::string_view kind() const override { return "file"; }

  // kNotFound when no file holds the trace (after a rescan if the directory changed);
  // kInvalidInput when `trace_id` is not a trace id.
  void FetchTrace(const std::string& trace_id, Clock::time_point deadline,
                  TracesCallback done) override;

  // Traces with a span of query.service overlapping [start_ns, end_ns] (a zero end means no
  // upper bound). kErrorsFirst: only traces with a failed span (anywhere: the culprit is usually
  // below the alerting service), newest first. kSlowestFirst: all of them, longest first, at
  // least min_duration_ns long. Whole traces in the hits.
  void SearchTraces(const TraceQuery& query, Clock::time_point deadline,
                    SearchCallback done) override;

  // Number of traces indexed, and what was skipped at the last scan (file: reason).
  size_t size() const;
  std::vector<std::string> warnings() const;

  struct Index;

 private:
  explicit FileTraceSource(FileTraceSourceOptions options);
  // Rescans when the directory listing differs from the last scan's. REQUIRES: mu_ held.
  Status RefreshLocked(bool force);

  FileTraceSourceOptions options_;
  std::vector<std::string> files_;  // LoadFiles: these instead of options_.dir
  mutable std::mutex mu_;
  std::shared_ptr<const Index> index_;
};

}  // namespace tracepager::integrations
