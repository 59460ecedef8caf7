#include "integrations/jaeger/jaeger_protocol.h"

#include <fmt/format.h>

#include "integrations/http/url.h"

namespace tracepager::integrations {

JaegerProtocol::JaegerProtocol(std::string base_url, Api api, size_t search_candidates)
    : base_url_(std::move(base_url)), api_(api), search_candidates_(search_candidates) {}

http::Request JaegerProtocol::FetchRequest(const std::string& trace_id, bool) const {
  http::Request r;
  r.url = http::JoinUrl(
      base_url_, api_ == Api::kV1 ? "/api/traces/" + trace_id : "/api/v3/traces/" + trace_id);
  r.headers.push_back({"Accept", "application/json"});
  return r;
}

Result<std::vector<routing::Trace>> JaegerProtocol::ReadBody(std::string_view what,
                                                             std::string_view body,
                                                             ErrorKind* kind) const {
  if (api_ == Api::kV1) return ReadTraceDocument(what, body, kind);
  // v3 streams: large traces and searches arrive as several {"result": …} chunks. Each chunk
  // is read on its own and traces with the same id are joined.
  auto chunks = SplitJsonStream(body);
  if (chunks.size() <= 1) return ReadTraceDocument(what, body, kind);
  std::vector<routing::Trace> merged;
  for (size_t i = 0; i < chunks.size(); ++i) {
    auto part =
        ReadTraceDocument(fmt::format("{} (stream chunk {})", what, i + 1), chunks[i], kind);
    if (!part.ok()) return part.error();
    for (auto& trace : *part) {
      auto it = std::find_if(merged.begin(), merged.end(),
                             [&](const routing::Trace& t) { return t.trace_id == trace.trace_id; });
      if (it == merged.end()) {
        merged.push_back(std::move(trace));
      } else {
        for (auto& span : trace.spans) it->spans.push_back(std::move(span));
        for (auto& w : trace.warnings) it->warnings.push_back(std::move(w));
      }
    }
  }
  return merged;
}

Result<routing::Trace> JaegerProtocol::ParseFetch(const std::string& trace_id,
                                                  const http::Response& answer,
                                                  ErrorKind* kind) const {
  // v3 answers may be a stream of documents: ReadBody joins them.
  return ParseTraceAnswer(this->kind(), trace_id, answer, kind,
                          [this](std::string_view what, std::string_view json, ErrorKind* k) {
                            return ReadBody(what, json, k);
                          });
}

http::Request JaegerProtocol::SearchRequest(const TraceQuery& query) const {
  const bool errors = query.order == TraceQuery::Order::kErrorsFirst;
  std::vector<std::pair<std::string, std::string>> params;
  if (api_ == Api::kV1) {
    params = {{"service", query.service},
              {"start", std::to_string(query.start_ns / 1000)},
              {"end", std::to_string(query.end_ns / 1000)},
              {"limit", std::to_string(CandidateCount(query, search_candidates_, errors))}};
    if (errors) params.push_back({"tags", "{\"error\":\"true\"}"});
    if (query.min_duration_ns > 0) {
      params.push_back({"minDuration", GoDuration(query.min_duration_ns)});
    }
  } else {
    params = {
        {"query.service_name", query.service},
        {"query.start_time_min", Rfc3339Nano(query.start_ns)},
        {"query.start_time_max", Rfc3339Nano(query.end_ns)},
        {"query.search_depth", std::to_string(CandidateCount(query, search_candidates_, false))}};
    if (query.min_duration_ns > 0) {
      params.push_back({"query.duration_min", GoDuration(query.min_duration_ns)});
    }
  }
  http::Request r;
  r.url = http::JoinUrl(base_url_, api_ == Api::kV1 ? "/api/traces" : "/api/v3/traces") + "?" +
          http::BuildQuery(params);
  r.headers.push_back({"Accept", "application/json"});
  return r;
}

Result<std::vector<SearchHit>> JaegerProtocol::ParseSearch(const TraceQuery& query,
                                                           const http::Response& answer,
                                                           ErrorKind* kind) const {
  const std::string what = fmt::format("jaeger search for service {}", query.service);
  auto body = JsonBody(what, answer, kind);
  if (!body.ok()) {
    // An empty search is a 404 in v3 ("No traces found"); nothing matched is not a failure.
    if (body.error().code == ErrorCode::kNotFound) return std::vector<SearchHit>{};
    return body.error();
  }
  auto traces = ReadBody(what, *body, kind);
  if (!traces.ok()) {
    if (traces.error().code == ErrorCode::kNotFound) return std::vector<SearchHit>{};
    return traces.error();
  }
  // v1 filtered errors on the server already; v3 could not. Either way only failing traces
  // count, which RankTraceHits keeps.
  return RankTraceHits(query, std::move(traces).value());
}

}  // namespace tracepager::integrations
