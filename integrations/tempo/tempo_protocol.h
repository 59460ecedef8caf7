// Grafana Tempo's HTTP API (wire-formats.md section 4).
//
// Fetch: GET /api/v2/traces/{id} with Accept: application/json ({"trace":{"resourceSpans"}});
// Tempo before v2.5 has no /api/v2 route and answers Go's plain "404 page not found": with
// Api::kAuto that switches to GET /api/traces/{id} ({"batches":[…]}, base64 ids) for good.
// Search: GET /api/search?q=<TraceQL>&start=&end=&limit= (Unix seconds). Errors:
//   { resource.service.name = "checkout" && status = error }
// Slowest: { resource.service.name = "checkout" } (plus `&& duration >= X` when the query
// has a minimum), `search_candidates` of them, sorted by durationMs here. Search answers ids
// only; hits carry no trace, and the caller fetches each (integrations/trace_collector.h).
// Ids in search answers may lack leading zeros (31 digits): they are left-padded to 32.
// Multi-tenant Tempo: the tenant goes in X-Scope-OrgID on every request.
// Pure; thread-safe.
#pragma once

#include <string>

#include "integrations/trace_protocol.h"

namespace tracepager::integrations {

class TempoProtocol : public TraceProtocol {
 public:
  enum class Api { kAuto, kV2, kV1 };

  TempoProtocol(std::string base_url, std::string tenant, Api api = Api::kAuto,
                size_t search_candidates = 100);

  std::string_view kind() const override { return "tempo"; }
  http::Request FetchRequest(const std::string& trace_id, bool fallback) const override;
  bool WantsFallback(const http::Response& answer) const override;
  Result<routing::Trace> ParseFetch(const std::string& trace_id, const http::Response& answer,
                                    ErrorKind* kind) const override;
  http::Request SearchRequest(const TraceQuery& query) const override;
  Result<std::vector<SearchHit>> ParseSearch(const TraceQuery& query, const http::Response& answer,
                                             ErrorKind* kind) const override;

  // The TraceQL for `query`, e.g. `{ resource.service.name = "checkout" && status = error }`.
  static std::string TraceQl(const TraceQuery& query);

 private:
  void AddHeaders(http::Request& r) const;
  std::string base_url_;
  std::string tenant_;
  Api api_;
  size_t search_candidates_;
};

}  // namespace tracepager::integrations
