// Jaeger's query APIs (wire-formats.md section 3): the v1 JSON API (`/api/traces`, Jaeger's
// UI API, "internal" in Jaeger 2) and the v3 API (`/api/v3/traces`, OTLP JSON, the supported
// one). Which one is configuration: JaegerProtocol::Api.
//
// Fetch: v1 GET /api/traces/{id}; v3 GET /api/v3/traces/{id} (a grpc-gateway stream: one or
// more {"result":{"resourceSpans":[…]}} objects, merged here).
// Search, errors: v1 with tags={"error":"true"} (Jaeger filters); v3 has no attribute filter
// in the released snake_case API, so it asks for `search_candidates` traces and keeps those
// with a failing span. Search, slowest: both ask for `search_candidates` traces (with
// minDuration / query.duration_min when the query has one) and sort by duration here.
// v3 answers an empty search with 404 "No traces found": that is an empty result here.
// Pure; thread-safe.
#pragma once

#include <string>

#include "integrations/trace_protocol.h"

namespace tracepager::integrations {

class JaegerProtocol : public TraceProtocol {
 public:
  enum class Api { kV1, kV3 };

  // `base_url`: the query service, e.g. "http://jaeger-query:16686" (a path prefix such as
  // "/jaeger" is kept).
  JaegerProtocol(std::string base_url, Api api, size_t search_candidates = 100);

  std::string_view kind() const override { return "jaeger"; }
  http::Request FetchRequest(const std::string& trace_id, bool fallback) const override;
  Result<routing::Trace> ParseFetch(const std::string& trace_id, const http::Response& answer,
                                    ErrorKind* kind) const override;
  http::Request SearchRequest(const TraceQuery& query) const override;
  Result<std::vector<SearchHit>> ParseSearch(const TraceQuery& query, const http::Response& answer,
                                             ErrorKind* kind) const override;

 private:
  Result<std::vector<routing::Trace>> ReadBody(std::string_view what, std::string_view body,
                                               ErrorKind* kind) const;
  std::string base_url_;
  Api api_;
  size_t search_candidates_;
};

}  // namespace tracepager::integrations
