// TraceProtocol: the pure half of an HTTP trace source. It builds the requests for one
// backend's API and reads its answers; it does no I/O, so every URL and every answer
// (including the bad ones) is unit-testable from recorded bodies. HttpTraceSource
// (integrations/http_trace_source.h) does the I/O.
//
// The helpers below are shared by the Jaeger, Tempo and Zipkin protocols.
// Everything here is pure and safe to call from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "integrations/http/http_client.h"
#include "integrations/metrics.h"
#include "integrations/trace_source.h"
#include "routing/result.h"
#include "routing/trace.h"
#include "routing/trace_reader.h"

namespace tracepager::integrations {

class TraceProtocol {
 public:
  virtual ~TraceProtocol() = default;

  virtual std::string_view kind() const = 0;  // "jaeger", "tempo", "zipkin"

  // The request for trace `trace_id` (32 lowercase hex digits). `fallback` asks for the older
  // API's form after WantsFallback said so. The deadline is left for the caller to set.
  virtual http::Request FetchRequest(const std::string& trace_id, bool fallback) const = 0;

  // True when `answer` to a FetchRequest(…, false) says the API itself is missing (an older
  // backend), so the fallback form should be used from now on.
  virtual bool WantsFallback(const http::Response& /*answer*/) const { return false; }

  // Reads the answer to a FetchRequest. On failure *kind says which metric it counts as.
  virtual Result<routing::Trace> ParseFetch(const std::string& trace_id,
                                            const http::Response& answer,
                                            ErrorKind* kind) const = 0;

  virtual http::Request SearchRequest(const TraceQuery& query) const = 0;

  // Reads the answer to a SearchRequest: at most query.limit hits, ranked.
  virtual Result<std::vector<SearchHit>> ParseSearch(const TraceQuery& query,
                                                     const http::Response& answer,
                                                     ErrorKind* kind) const = 0;
};

// ---- shared helpers ----

// Checks that `answer` is a successful JSON answer and returns its body. Errors, for `what`
// (e.g. "jaeger GET /api/traces/4bf9…"):
//   404 -> kNotFound; 401/403 -> kInvalidInput (credentials refused: check the auth config);
//   408, 429, 5xx -> kUnavailable; other non-2xx -> kInvalidInput;
//   a 2xx whose Content-Type is present and not JSON (an HTML login or error page from a
//   proxy) -> kInvalidInput, kind kContentType; an empty body -> kInvalidInput, kBadBody.
// Messages quote a short, sanitized excerpt of the body (an HTML page's <title>), never more.
Result<std::string_view> JsonBody(std::string_view what, const http::Response& answer,
                                  ErrorKind* kind);

// A short, printable excerpt of `body` for an error message: an HTML page's <title> when it
// has one, else the first 120 characters with control characters replaced.
std::string AnswerExcerpt(std::string_view body);

// Reads `json` with routing::ReadTraces. Errors keep the reader's code (kNotFound for a
// backend's 404 error body) and are prefixed with `what`; *kind is kBadBody (or kNotFound).
Result<std::vector<routing::Trace>> ReadTraceDocument(std::string_view what, std::string_view json,
                                                      ErrorKind* kind);

// The trace with `trace_id` among `traces`; kNotFound when there are none, kInvalidInput when
// the answer holds only other traces.
Result<routing::Trace> PickTrace(std::string_view what, const std::string& trace_id,
                                 std::vector<routing::Trace> traces, ErrorKind* kind);

// Reads one answer's body into traces, with ReadTraceDocument's contract. ReadTraceDocument
// itself, or a backend's own reader (Jaeger v3 joins a stream of documents).
using TraceDocumentReader = std::function<Result<std::vector<routing::Trace>>(
    std::string_view what, std::string_view body, ErrorKind* kind)>;

// Reads the answer to a FetchRequest as every backend does: JsonBody, then `read`, then
// PickTrace for `trace_id`. Messages name "<backend> trace <trace_id>" (backend = kind(), e.g.
// "zipkin trace 4bf9…"); the errors and *kind are those of the step that failed.
Result<routing::Trace> ParseTraceAnswer(std::string_view backend, const std::string& trace_id,
                                        const http::Response& answer, ErrorKind* kind,
                                        const TraceDocumentReader& read = ReadTraceDocument);

// The trace's duration: latest span end minus earliest span start (0 when empty).
int64_t TraceDurationNs(const routing::Trace& trace);

// True when any span of the trace failed (routing's classification).
bool HasFailedSpan(const routing::Trace& trace);

// Whole traces as hits, in the order given.
std::vector<SearchHit> HitsFromTraces(std::vector<routing::Trace> traces);

// Sorts hits slowest first (stable, so equal durations keep the backend's order) and keeps
// at most `limit`.
void RankSlowestFirst(std::vector<SearchHit>& hits, size_t limit);

// The hits of a search that answered whole traces (Jaeger, Zipkin), at most query.limit: for
// kErrorsFirst the failing traces in the backend's order (a backend's own error filter is not
// trusted alone), else slowest first (RankSlowestFirst).
std::vector<SearchHit> RankTraceHits(const TraceQuery& query, std::vector<routing::Trace> traces);

// How many candidates a search asks the backend for: the limit when the backend filters and
// ranks itself, else max(limit, candidates) so the client-side filter or sort has a choice.
size_t CandidateCount(const TraceQuery& query, size_t candidates, bool backend_ranks);

// "2026-11-26T22:24:42.123456789Z" for Unix nanoseconds (RFC 3339 with nanoseconds, UTC).
std::string Rfc3339Nano(int64_t unix_ns);

// A Go duration ("250ms", "1500us", "2s") for nanoseconds >= 0.
std::string GoDuration(int64_t ns);

// Splits a stream of concatenated JSON values (grpc-gateway streams several
// {"result": …} objects, newline-separated) into the values. A value cut off at the end is
// returned as is, so the reader reports it as truncated.
std::vector<std::string_view> SplitJsonStream(std::string_view body);

}  // namespace tracepager::integrations
