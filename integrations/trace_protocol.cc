#include "integrations/trace_protocol.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <limits>

namespace tracepager::integrations {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool LooksLikeHtml(std::string_view body) {
  const std::string head = Lower(body.substr(0, 512));
  return head.find("<html") != std::string::npos ||
         head.find("<!doctype html") != std::string::npos;
}

}  // namespace

std::string AnswerExcerpt(std::string_view body) {
  std::string_view text = body;
  const std::string lower = Lower(body.substr(0, 64 * 1024));
  auto open = lower.find("<title>");
  if (open != std::string::npos) {
    auto close = lower.find("</title>", open);
    if (close != std::string::npos) text = body.substr(open + 7, close - open - 7);
  }
  std::string out;
  for (char c : text.substr(0, 120)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? ' ' : c);
  }
  if (text.size() > 120) out += "...";
  // Collapse runs of spaces left by newlines and indentation.
  out.erase(
      std::unique(out.begin(), out.end(), [](char a, char b) { return a == ' ' && b == ' '; }),
      out.end());
  while (!out.empty() && out.front() == ' ') out.erase(out.begin());
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

Result<std::string_view> JsonBody(std::string_view what, const http::Response& answer,
                                  ErrorKind* kind) {
  const int status = answer.status;
  if (status < 200 || status > 299) {
    const std::string excerpt = AnswerExcerpt(answer.body);
    const std::string tail = excerpt.empty() ? "" : ": " + excerpt;
    if (status == 404) {
      *kind = ErrorKind::kNotFound;
      return Error::NotFound(fmt::format("{}: not found (HTTP 404){}", what, tail));
    }
    if (status == 401 || status == 403) {
      *kind = ErrorKind::kHttp4xx;
      return Error::InvalidInput(fmt::format(
          "{}: the backend refused our credentials (HTTP {}); check the auth settings{}", what,
          status, tail));
    }
    if (status == 408 || status == 429 || status >= 500) {
      *kind = status >= 500 ? ErrorKind::kHttp5xx : ErrorKind::kHttp4xx;
      return Error::Unavailable(fmt::format(
          "{}: HTTP {}{}{}", what, status,
          answer.attempts > 1 ? fmt::format(" after {} attempts", answer.attempts) : "", tail));
    }
    *kind = ErrorKind::kHttp4xx;
    return Error::InvalidInput(fmt::format("{}: HTTP {}{}", what, status, tail));
  }
  if (auto type = answer.Header("Content-Type")) {
    const std::string t = Lower(*type);
    if (t.find("json") == std::string::npos) {
      *kind = ErrorKind::kContentType;
      const bool html = t.find("html") != std::string::npos || LooksLikeHtml(answer.body);
      return Error::InvalidInput(fmt::format(
          "{}: the answer is {} (Content-Type {}), not JSON; is base_url pointing at the "
          "backend's API and not at a proxy or login page?{}",
          what, html ? "an HTML page" : "not JSON", *type,
          answer.body.empty() ? "" : ": " + AnswerExcerpt(answer.body)));
    }
  }
  if (answer.body.empty()) {
    *kind = ErrorKind::kBadBody;
    return Error::InvalidInput(fmt::format("{}: empty answer (HTTP {})", what, status));
  }
  return std::string_view(answer.body);
}

Result<std::vector<routing::Trace>> ReadTraceDocument(std::string_view what, std::string_view json,
                                                      ErrorKind* kind) {
  auto read = routing::ReadTraces(json);
  if (!read.ok()) {
    const Error& e = read.error();
    *kind = e.code == ErrorCode::kNotFound ? ErrorKind::kNotFound : ErrorKind::kBadBody;
    std::string message =
        fmt::format("{}: the answer is not a readable trace: {}", what, e.message);
    if (LooksLikeHtml(json)) message += " (it is an HTML page: " + AnswerExcerpt(json) + ")";
    return Error{e.code, std::move(message)};
  }
  return std::move(read->traces);
}

Result<routing::Trace> PickTrace(std::string_view what, const std::string& trace_id,
                                 std::vector<routing::Trace> traces, ErrorKind* kind) {
  for (auto& trace : traces) {
    if (trace.trace_id == trace_id) return std::move(trace);
  }
  if (traces.empty()) {
    *kind = ErrorKind::kNotFound;
    return Error::NotFound(fmt::format("{}: the answer holds no spans (not indexed yet?)", what));
  }
  *kind = ErrorKind::kBadBody;
  return Error::InvalidInput(fmt::format("{}: the answer holds trace {}, not the one asked for",
                                         what, traces.front().trace_id));
}

Result<routing::Trace> ParseTraceAnswer(std::string_view backend, const std::string& trace_id,
                                        const http::Response& answer, ErrorKind* kind,
                                        const TraceDocumentReader& read) {
  const std::string what = fmt::format("{} trace {}", backend, trace_id);
  auto body = JsonBody(what, answer, kind);
  if (!body.ok()) return body.error();
  auto traces = read(what, *body, kind);
  if (!traces.ok()) return traces.error();
  return PickTrace(what, trace_id, std::move(traces).value(), kind);
}

int64_t TraceDurationNs(const routing::Trace& trace) {
  if (trace.spans.empty()) return 0;
  int64_t start = std::numeric_limits<int64_t>::max();
  int64_t end = std::numeric_limits<int64_t>::min();
  for (const auto& span : trace.spans) {
    start = std::min(start, span.start_ns);
    end = std::max(end, span.end_ns());
  }
  return end > start ? end - start : 0;
}

bool HasFailedSpan(const routing::Trace& trace) {
  return std::any_of(trace.spans.begin(), trace.spans.end(),
                     [](const routing::Span& s) { return s.failed; });
}

std::vector<SearchHit> HitsFromTraces(std::vector<routing::Trace> traces) {
  std::vector<SearchHit> hits;
  hits.reserve(traces.size());
  for (auto& trace : traces) {
    SearchHit hit;
    hit.trace_id = trace.trace_id;
    hit.duration_ns = TraceDurationNs(trace);
    hit.trace = std::move(trace);
    hits.push_back(std::move(hit));
  }
  return hits;
}

void RankSlowestFirst(std::vector<SearchHit>& hits, size_t limit) {
  std::stable_sort(hits.begin(), hits.end(), [](const SearchHit& a, const SearchHit& b) {
    return a.duration_ns > b.duration_ns;
  });
  if (hits.size() > limit) hits.resize(limit);
}

std::vector<SearchHit> RankTraceHits(const TraceQuery& query, std::vector<routing::Trace> traces) {
  auto hits = HitsFromTraces(std::move(traces));
  if (query.order == TraceQuery::Order::kErrorsFirst) {
    std::erase_if(hits, [](const SearchHit& h) { return !HasFailedSpan(*h.trace); });
    if (hits.size() > query.limit) hits.resize(query.limit);
  } else {
    RankSlowestFirst(hits, query.limit);
  }
  return hits;
}

size_t CandidateCount(const TraceQuery& query, size_t candidates, bool backend_ranks) {
  return backend_ranks ? query.limit : std::max(query.limit, candidates);
}

std::string Rfc3339Nano(int64_t unix_ns) {
  int64_t seconds = unix_ns / 1'000'000'000;
  int64_t nanos = unix_ns % 1'000'000'000;
  if (nanos < 0) {
    nanos += 1'000'000'000;
    --seconds;
  }
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, nanos);
}

std::string GoDuration(int64_t ns) {
  if (ns <= 0) return "0s";
  if (ns % 1'000'000'000 == 0) return fmt::format("{}s", ns / 1'000'000'000);
  if (ns % 1'000'000 == 0) return fmt::format("{}ms", ns / 1'000'000);
  if (ns % 1'000 == 0) return fmt::format("{}us", ns / 1'000);
  return fmt::format("{}ns", ns);
}

std::vector<std::string_view> SplitJsonStream(std::string_view body) {
  std::vector<std::string_view> values;
  size_t i = 0;
  const size_t n = body.size();
  auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  while (i < n) {
    while (i < n && is_space(body[i])) ++i;
    if (i >= n) break;
    const size_t begin = i;
    if (body[i] != '{' && body[i] != '[') {
      // Not a stream of objects; let the reader say what it is.
      values.push_back(body.substr(begin));
      break;
    }
    int depth = 0;
    bool in_string = false;
    for (; i < n; ++i) {
      const char c = body[i];
      if (in_string) {
        if (c == '\\') {
          ++i;
        } else if (c == '"') {
          in_string = false;
        }
        continue;
      }
      if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) {
          ++i;
          break;
        }
      }
    }
    values.push_back(body.substr(begin, std::min(i, n) - begin));
  }
  return values;
}

}  // namespace tracepager::integrations
