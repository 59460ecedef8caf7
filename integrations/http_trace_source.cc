#include "integrations/http_trace_source.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace tracepager::integrations {

// Shared with the callbacks: they may outlive the source (a cancelled call completes after
// the source is gone), so they hold the protocol and the flags, and reach the client only
// through a weak pointer.
struct HttpTraceSource::State {
  std::shared_ptr<const TraceProtocol> protocol;
  std::unique_ptr<http::HttpClient> client;
  BackendMetrics* metrics = nullptr;
  std::string name;
  std::atomic<bool> fallback{false};

  void Count(ErrorKind kind) const {
    // The client already counted transport failures and HTTP statuses; only what it cannot
    // see (an answer that is not a trace) is counted here.
    if (metrics && (kind == ErrorKind::kBadBody || kind == ErrorKind::kContentType)) {
      metrics->CountError(name, kind);
    }
  }
};

namespace {

void Deliver(const TraceSource::TracesCallback& done, Result<std::vector<routing::Trace>> r) {
  try {
    done(std::move(r));
  } catch (const std::exception& e) {
    spdlog::error("trace_source_callback_threw error=\"{}\"", e.what());
  }
}

}  // namespace

HttpTraceSource::HttpTraceSource(std::shared_ptr<const TraceProtocol> protocol,
                                 std::unique_ptr<http::HttpClient> client, BackendMetrics* metrics)
    : state_(std::make_shared<State>()) {
  state_->name = client->options().name;
  state_->protocol = std::move(protocol);
  state_->client = std::move(client);
  state_->metrics = metrics;
}

HttpTraceSource::~HttpTraceSource() { state_->client.reset(); }

std::string_view HttpTraceSource::kind() const { return state_->protocol->kind(); }

bool HttpTraceSource::using_fallback() const { return state_->fallback; }

void HttpTraceSource::SendFetch(const std::shared_ptr<State>& state, std::string trace_id,
                                Clock::time_point deadline, bool fallback, TracesCallback done) {
  http::Request request = state->protocol->FetchRequest(trace_id, fallback);
  request.deadline = deadline;
  std::weak_ptr<State> weak = state;
  auto protocol = state->protocol;
  state->client->Send(std::move(request), [weak, protocol, trace_id, deadline, fallback,
                                           done = std::move(done)](Result<http::Response> r) {
    if (!r.ok()) return Deliver(done, r.error());
    if (!fallback && protocol->WantsFallback(*r)) {
      if (auto s = weak.lock(); s && s->client) {
        if (!s->fallback.exchange(true)) {
          spdlog::warn(
              "trace_source_fallback source={} reason=\"the backend lacks the newer "
              "trace-by-id API; using the older one from now on\"",
              s->name);
        }
        return SendFetch(s, trace_id, deadline, true, done);
      }
      return Deliver(done, Error::Unavailable(std::string(protocol->kind()) + ": shut down"));
    }
    ErrorKind kind = ErrorKind::kBadBody;
    auto trace = protocol->ParseFetch(trace_id, *r, &kind);
    if (!trace.ok()) {
      if (auto s = weak.lock()) s->Count(kind);
      return Deliver(done, trace.error());
    }
    std::vector<routing::Trace> one;
    one.push_back(std::move(trace).value());
    Deliver(done, std::move(one));
  });
}

void HttpTraceSource::FetchTrace(const std::string& trace_id, Clock::time_point deadline,
                                 TracesCallback done) {
  auto id = NormalizeTraceId(trace_id);
  if (!id) {
    // Quoted only up to 40 characters: the id came from an alert, which anyone can send.
    return Deliver(
        done, Error::InvalidInput(fmt::format("{}: \"{}\" is not a trace id (1 to 32 hex digits)",
                                              state_->name, trace_id.substr(0, 40))));
  }
  SendFetch(state_, *id, deadline, state_->fallback.load(), std::move(done));
}

void HttpTraceSource::SearchTraces(const TraceQuery& query, Clock::time_point deadline,
                                   SearchCallback done) {
  http::Request request = state_->protocol->SearchRequest(query);
  request.deadline = deadline;
  std::weak_ptr<State> weak = state_;
  auto protocol = state_->protocol;
  state_->client->Send(std::move(request),
                       [weak, protocol, query, done = std::move(done)](Result<http::Response> r) {
                         auto deliver = [&done](Result<std::vector<SearchHit>> result) {
                           try {
                             done(std::move(result));
                           } catch (const std::exception& e) {
                             spdlog::error("trace_source_callback_threw error=\"{}\"", e.what());
                           }
                         };
                         if (!r.ok()) return deliver(r.error());
                         ErrorKind kind = ErrorKind::kBadBody;
                         auto hits = protocol->ParseSearch(query, *r, &kind);
                         if (!hits.ok()) {
                           if (auto s = weak.lock()) s->Count(kind);
                         }
                         deliver(std::move(hits));
                       });
}

}  // namespace tracepager::integrations
