// FileTraceSource: see the header. The index is rebuilt whole on a rescan and swapped under the
// mutex; lookups copy the shared_ptr and read without holding the lock.
#include "integrations/file/file_trace_source.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "routing/trace_reader.h"

namespace tracepager::integrations {

struct FileTraceSource::Index {
  struct Entry {
    routing::Trace trace;
    int64_t start_ns = 0;
    int64_t end_ns = 0;
    bool failed = false;
    std::set<std::string, std::less<>> services;
  };
  std::vector<Entry> entries;
  std::map<std::string, size_t, std::less<>> by_id;
  std::map<std::string, std::vector<size_t>, std::less<>> by_service;
  // The directory as scanned: name -> (size, mtime ns). A different listing means rescan.
  std::map<std::string, std::pair<int64_t, int64_t>> listing;
  std::vector<std::string> warnings;
};

namespace {

using Listing = std::map<std::string, std::pair<int64_t, int64_t>>;

Result<Listing> ListDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return Error::Unavailable("file trace source: cannot list " + dir + ": " +
                              std::strerror(errno));
  }
  Listing out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.empty() || name[0] == '.' || name.size() < 6 ||
        name.compare(name.size() - 5, 5, ".json") != 0) {
      continue;
    }
    struct stat st {};
    std::string path = dir + "/" + name;
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    out[name] = {static_cast<int64_t>(st.st_size),
                 static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
  }
  ::closedir(d);
  return out;
}

// The named files, keyed by path. A file that cannot be stat'ed is listed with size -1 so that
// BuildIndex names it in a warning, like any unreadable file.
Listing ListFiles(const std::vector<std::string>& files) {
  Listing out;
  for (const std::string& path : files) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      out[path] = {-1, 0};
      continue;
    }
    out[path] = {static_cast<int64_t>(st.st_size),
                 static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
  }
  return out;
}

Result<std::string> ReadWhole(const std::string& path, uint64_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error::Unavailable(std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return Error::Unavailable("cannot stat");
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return Error::InvalidInput(std::to_string(st.st_size) + " bytes, more than max_file_bytes " +
                               std::to_string(max_bytes));
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::read(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  data.resize(done);
  return data;
}

std::shared_ptr<FileTraceSource::Index> BuildIndex(const std::string& dir, const Listing& listing,
                                                   uint64_t max_file_bytes) {
  auto index = std::make_shared<FileTraceSource::Index>();
  index->listing = listing;
  routing::ReadLimits limits;
  limits.max_bytes = static_cast<size_t>(max_file_bytes);
  for (const auto& [name, stat] : listing) {  // sorted by name: the first file wins
    Result<std::string> text = ReadWhole(dir.empty() ? name : dir + "/" + name, max_file_bytes);
    if (!text.ok()) {
      index->warnings.push_back(name + ": " + text.error().message);
      continue;
    }
    Result<routing::ReadResult> read = routing::ReadTraces(*text, limits);
    if (!read.ok()) {
      index->warnings.push_back(name + ": " + read.error().message);
      continue;
    }
    for (routing::Trace& trace : read->traces) {
      if (index->by_id.count(trace.trace_id) != 0) {
        index->warnings.push_back(name + ": trace " + trace.trace_id +
                                  " also in an earlier file; kept the earlier one");
        continue;
      }
      FileTraceSource::Index::Entry e;
      bool first = true;
      for (const routing::Span& s : trace.spans) {
        if (first || s.start_ns < e.start_ns) e.start_ns = s.start_ns;
        if (first || s.end_ns() > e.end_ns) e.end_ns = s.end_ns();
        first = false;
        e.failed = e.failed || s.failed;
        if (!s.service.empty()) e.services.insert(s.service);
      }
      e.trace = std::move(trace);
      size_t i = index->entries.size();
      index->by_id[e.trace.trace_id] = i;
      for (const std::string& svc : e.services) index->by_service[svc].push_back(i);
      index->entries.push_back(std::move(e));
    }
  }
  return index;
}

}  // namespace

FileTraceSource::FileTraceSource(FileTraceSourceOptions options) : options_(std::move(options)) {}

Result<std::shared_ptr<FileTraceSource>> FileTraceSource::Load(FileTraceSourceOptions options) {
  std::shared_ptr<FileTraceSource> source(new FileTraceSource(std::move(options)));
  std::lock_guard<std::mutex> lk(source->mu_);
  if (Status st = source->RefreshLocked(true); !st.ok()) return st.error();
  return source;
}

std::shared_ptr<FileTraceSource> FileTraceSource::LoadFiles(std::vector<std::string> files,
                                                            uint64_t max_file_bytes) {
  FileTraceSourceOptions options;
  options.max_file_bytes = max_file_bytes;
  std::shared_ptr<FileTraceSource> source(new FileTraceSource(std::move(options)));
  source->files_ = std::move(files);
  std::lock_guard<std::mutex> lk(source->mu_);
  (void)source->RefreshLocked(true);  // a list of files always lists
  return source;
}

Status FileTraceSource::RefreshLocked(bool force) {
  Result<Listing> listing =
      files_.empty() ? ListDir(options_.dir) : Result<Listing>(ListFiles(files_));
  if (!listing.ok()) return listing.error();
  if (!force && index_ != nullptr && index_->listing == *listing) return OkStatus();
  index_ =
      BuildIndex(files_.empty() ? options_.dir : std::string(), *listing, options_.max_file_bytes);
  return OkStatus();
}

size_t FileTraceSource::size() const {
  std::lock_guard<std::mutex> lk(mu_);
  return index_->entries.size();
}

std::vector<std::string> FileTraceSource::warnings() const {
  std::lock_guard<std::mutex> lk(mu_);
  return index_->warnings;
}

void FileTraceSource::FetchTrace(const std::string& trace_id, Clock::time_point /*deadline*/,
                                 TracesCallback done) {
  std::optional<std::string> id = NormalizeTraceId(trace_id);
  if (!id) {
    done(Error::InvalidInput("file trace source: \"" + trace_id.substr(0, 64) +
                             "\" is not a trace id"));
    return;
  }
  std::shared_ptr<const Index> index;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (index_->by_id.count(*id) == 0) {
      // Not there: perhaps written since the last scan.
      if (Status st = RefreshLocked(false); !st.ok()) {
        done(st.error());
        return;
      }
    }
    index = index_;
  }
  auto it = index->by_id.find(*id);
  if (it == index->by_id.end()) {
    done(Error::NotFound(
        "file trace source: trace " + *id +
        (files_.empty() ? " is in no file of " + options_.dir
                        : " is in none of the " + std::to_string(files_.size()) + " trace files")));
    return;
  }
  done(std::vector<routing::Trace>{index->entries[it->second].trace});
}

void FileTraceSource::SearchTraces(const TraceQuery& query, Clock::time_point /*deadline*/,
                                   SearchCallback done) {
  std::shared_ptr<const Index> index;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (Status st = RefreshLocked(false); !st.ok()) {
      done(st.error());
      return;
    }
    index = index_;
  }
  std::vector<const Index::Entry*> matches;
  if (auto it = index->by_service.find(query.service); it != index->by_service.end()) {
    for (size_t i : it->second) {
      const Index::Entry& e = index->entries[i];
      bool overlaps =
          e.end_ns >= query.start_ns && (query.end_ns == 0 || e.start_ns <= query.end_ns);
      if (!overlaps) continue;
      if (query.order == TraceQuery::Order::kErrorsFirst && !e.failed) continue;
      if (query.order == TraceQuery::Order::kSlowestFirst &&
          e.end_ns - e.start_ns < query.min_duration_ns) {
        continue;
      }
      matches.push_back(&e);
    }
  }
  if (query.order == TraceQuery::Order::kSlowestFirst) {
    std::stable_sort(matches.begin(), matches.end(),
                     [](const Index::Entry* a, const Index::Entry* b) {
                       return a->end_ns - a->start_ns > b->end_ns - b->start_ns;
                     });
  } else {
    std::stable_sort(
        matches.begin(), matches.end(),
        [](const Index::Entry* a, const Index::Entry* b) { return a->start_ns > b->start_ns; });
  }
  if (matches.size() > query.limit) matches.resize(query.limit);
  std::vector<SearchHit> hits;
  hits.reserve(matches.size());
  for (const Index::Entry* e : matches) {
    SearchHit h;
    h.trace_id = e->trace.trace_id;
    h.duration_ns = e->end_ns - e->start_ns;
    h.trace = e->trace;
    hits.push_back(std::move(h));
  }
  done(std::move(hits));
}

}  // namespace tracepager::integrations
