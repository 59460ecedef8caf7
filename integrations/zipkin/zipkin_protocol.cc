#include "integrations/zipkin/zipkin_protocol.h"

#include <fmt/format.h>

#include "integrations/http/url.h"

namespace tracepager::integrations {

ZipkinProtocol::ZipkinProtocol(std::string base_url, size_t search_candidates)
    : base_url_(std::move(base_url)), search_candidates_(search_candidates) {}

http::Request ZipkinProtocol::FetchRequest(const std::string& trace_id, bool) const {
  std::string_view id = trace_id;
  if (id.size() == 32 && id.substr(0, 16) == "0000000000000000") id.remove_prefix(16);
  http::Request r;
  r.url = http::JoinUrl(base_url_, "/api/v2/trace/" + std::string(id));
  r.headers.push_back({"Accept", "application/json"});
  return r;
}

Result<routing::Trace> ZipkinProtocol::ParseFetch(const std::string& trace_id,
                                                  const http::Response& answer,
                                                  ErrorKind* kind) const {
  return ParseTraceAnswer(this->kind(), trace_id, answer, kind);
}

http::Request ZipkinProtocol::SearchRequest(const TraceQuery& query) const {
  const bool errors = query.order == TraceQuery::Order::kErrorsFirst;
  std::string service = query.service;
  for (char& c : service) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const int64_t end_ms = (query.end_ns + 999'999) / 1'000'000;
  const int64_t lookback_ms = std::max<int64_t>(1, end_ms - query.start_ns / 1'000'000);
  std::vector<std::pair<std::string, std::string>> params = {
      {"serviceName", service},
      {"endTs", std::to_string(end_ms)},
      {"lookback", std::to_string(lookback_ms)},
      {"limit", std::to_string(CandidateCount(query, search_candidates_, errors))}};
  if (errors) params.push_back({"annotationQuery", "error"});
  if (query.min_duration_ns > 0) {
    params.push_back({"minDuration", std::to_string(query.min_duration_ns / 1000)});
  }
  http::Request r;
  r.url = http::JoinUrl(base_url_, "/api/v2/traces") + "?" + http::BuildQuery(params);
  r.headers.push_back({"Accept", "application/json"});
  return r;
}

Result<std::vector<SearchHit>> ZipkinProtocol::ParseSearch(const TraceQuery& query,
                                                           const http::Response& answer,
                                                           ErrorKind* kind) const {
  const std::string what = fmt::format("zipkin search for service {}", query.service);
  auto body = JsonBody(what, answer, kind);
  if (!body.ok()) return body.error();
  // An empty search is `[]`, which the reader rightly calls "no trace"; here it is simply
  // nothing found.
  std::string_view trimmed = *body;
  while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.front()))) {
    trimmed.remove_prefix(1);
  }
  while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.back()))) {
    trimmed.remove_suffix(1);
  }
  if (trimmed == "[]") return std::vector<SearchHit>{};
  auto traces = ReadTraceDocument(what, *body, kind);
  if (!traces.ok()) return traces.error();
  return RankTraceHits(query, std::move(traces).value());
}

}  // namespace tracepager::integrations
