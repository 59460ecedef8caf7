// Zipkin's v2 API (wire-formats.md section 5).
//
// Fetch: GET /api/v2/trace/{id} (a JSON array of spans; 404 when unknown). Ids whose upper
// 64 bits are zero are sent as 16 digits, Zipkin's own form for 64-bit trace ids.
// Search: GET /api/v2/traces?serviceName=&endTs=&lookback=&limit= (milliseconds), answering
// an array of traces. Errors: annotationQuery=error (matches the `error` tag). Slowest:
// `search_candidates` traces (minDuration in microseconds when the query has a minimum),
// sorted by duration here. Zipkin stores service names lowercased, so the name is sent
// lowercased. Pure; thread-safe.
#pragma once

#include <string>

#include "integrations/trace_protocol.h"

namespace tracepager::integrations {

class ZipkinProtocol : public TraceProtocol {
 public:
  explicit ZipkinProtocol(std::string base_url, size_t search_candidates = 100);

  std::string_view kind() const override { return "zipkin"; }
  http::Request FetchRequest(const std::string& trace_id, bool fallback) const override;
  Result<routing::Trace> ParseFetch(const std::string& trace_id, const http::Response& answer,
                                    ErrorKind* kind) const override;
  http::Request SearchRequest(const TraceQuery& query) const override;
  Result<std::vector<SearchHit>> ParseSearch(const TraceQuery& query, const http::Response& answer,
                                             ErrorKind* kind) const override;

 private:
  std::string base_url_;
  size_t search_candidates_;
};

}  // namespace tracepager::integrations
