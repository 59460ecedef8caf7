// HttpTraceSource: a TraceSource that asks an HTTP backend, through a TraceProtocol (what to
// ask, how to read the answer) and an HttpClient (how to ask: pooling, TLS, deadlines,
// concurrency limit, retries). Jaeger, Tempo and Zipkin are this class with their protocol.
//
// Thread-safe. `done` runs on the client's io_context thread; answers are parsed there too
// (bounded by the client's response size cap). Destroying the source shuts its client down:
// calls in progress complete with kUnavailable.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "integrations/http/http_client.h"
#include "integrations/metrics.h"
#include "integrations/trace_protocol.h"
#include "integrations/trace_source.h"

namespace tracepager::integrations {

class HttpTraceSource : public TraceSource {
 public:
  // `metrics` may be null; when set it must outlive the source. It gets the answer-level
  // failures (bad_body, content_type) under the client's name; the client reports the rest.
  HttpTraceSource(std::shared_ptr<const TraceProtocol> protocol,
                  std::unique_ptr<http::HttpClient> client, BackendMetrics* metrics);
  ~HttpTraceSource() override;

  std::string_view kind() const override;
  void FetchTrace(const std::string& trace_id, Clock::time_point deadline,
                  TracesCallback done) override;
  void SearchTraces(const TraceQuery& query, Clock::time_point deadline,
                    SearchCallback done) override;

  // For tests: whether the backend was found to need the protocol's fallback API.
  bool using_fallback() const;

 private:
  struct State;
  static void SendFetch(const std::shared_ptr<State>& state, std::string trace_id,
                        Clock::time_point deadline, bool fallback, TracesCallback done);
  std::shared_ptr<State> state_;
};

}  // namespace tracepager::integrations
