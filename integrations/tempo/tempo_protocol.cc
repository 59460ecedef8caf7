#include "integrations/tempo/tempo_protocol.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>

#include "integrations/http/url.h"

namespace tracepager::integrations {

TempoProtocol::TempoProtocol(std::string base_url, std::string tenant, Api api,
                             size_t search_candidates)
    : base_url_(std::move(base_url)),
      tenant_(std::move(tenant)),
      api_(api),
      search_candidates_(search_candidates) {}

void TempoProtocol::AddHeaders(http::Request& r) const {
  r.headers.push_back({"Accept", "application/json"});
  if (!tenant_.empty()) r.headers.push_back({"X-Scope-OrgID", tenant_});
}

http::Request TempoProtocol::FetchRequest(const std::string& trace_id, bool fallback) const {
  const bool v1 = api_ == Api::kV1 || (api_ == Api::kAuto && fallback);
  http::Request r;
  r.url = http::JoinUrl(base_url_, (v1 ? "/api/traces/" : "/api/v2/traces/") + trace_id);
  AddHeaders(r);
  return r;
}

bool TempoProtocol::WantsFallback(const http::Response& answer) const {
  // A missing trace is a 404 from Tempo's handler with its own text ("trace not found"); a
  // missing route is the Go mux's default body. Only the latter means an older Tempo.
  if (api_ != Api::kAuto || answer.status != 404) return false;
  std::string_view body = answer.body;
  while (!body.empty() && (body.back() == '\n' || body.back() == ' ')) body.remove_suffix(1);
  return body == "404 page not found";
}

Result<routing::Trace> TempoProtocol::ParseFetch(const std::string& trace_id,
                                                 const http::Response& answer,
                                                 ErrorKind* kind) const {
  return ParseTraceAnswer(this->kind(), trace_id, answer, kind);
}

std::string TempoProtocol::TraceQl(const TraceQuery& query) {
  std::string service;
  for (char c : query.service) {
    if (c == '"' || c == '\\') service.push_back('\\');
    service.push_back(c);
  }
  std::string q = fmt::format("{{ resource.service.name = \"{}\"", service);
  if (query.order == TraceQuery::Order::kErrorsFirst) q += " && status = error";
  if (query.min_duration_ns > 0) q += " && duration >= " + GoDuration(query.min_duration_ns);
  q += " }";
  return q;
}

http::Request TempoProtocol::SearchRequest(const TraceQuery& query) const {
  const bool errors = query.order == TraceQuery::Order::kErrorsFirst;
  // Seconds: the start rounds down and the end up, so the window never shrinks.
  const int64_t start = query.start_ns / 1'000'000'000;
  const int64_t end = (query.end_ns + 999'999'999) / 1'000'000'000;
  http::Request r;
  r.url = http::JoinUrl(base_url_, "/api/search") + "?" +
          http::BuildQuery(
              {{"q", TraceQl(query)},
               {"start", std::to_string(start)},
               {"end", std::to_string(end)},
               {"limit", std::to_string(CandidateCount(query, search_candidates_, errors))}});
  AddHeaders(r);
  return r;
}

Result<std::vector<SearchHit>> TempoProtocol::ParseSearch(const TraceQuery& query,
                                                          const http::Response& answer,
                                                          ErrorKind* kind) const {
  const std::string what = fmt::format("tempo search for service {}", query.service);
  auto body = JsonBody(what, answer, kind);
  if (!body.ok()) return body.error();
  rapidjson::Document doc;
  // Iterative: a hostile answer of nested brackets must not recurse the stack away.
  doc.Parse<rapidjson::kParseIterativeFlag>(body->data(), body->size());
  *kind = ErrorKind::kBadBody;
  if (doc.HasParseError()) {
    return Error::InvalidInput(fmt::format("{}: the answer is not valid JSON (at byte {}): {}",
                                           what, doc.GetErrorOffset(), AnswerExcerpt(*body)));
  }
  if (!doc.IsObject() || !doc.HasMember("traces")) {
    return Error::InvalidInput(fmt::format("{}: the answer has no \"traces\" list", what));
  }
  const auto& traces = doc["traces"];
  if (traces.IsNull()) return std::vector<SearchHit>{};
  if (!traces.IsArray()) {
    return Error::InvalidInput(fmt::format("{}: \"traces\" is not a list", what));
  }
  std::vector<SearchHit> hits;
  for (rapidjson::SizeType i = 0; i < traces.Size(); ++i) {
    const auto& t = traces[i];
    if (!t.IsObject() || !t.HasMember("traceID") || !t["traceID"].IsString()) {
      return Error::InvalidInput(
          fmt::format("{}: traces[{}]: \"traceID\" is missing or not a string", what, i));
    }
    const std::string_view raw(t["traceID"].GetString(), t["traceID"].GetStringLength());
    auto id = NormalizeTraceId(raw);
    if (!id) {
      return Error::InvalidInput(fmt::format("{}: traces[{}]: \"traceID\" is not hex", what, i));
    }
    SearchHit hit;
    hit.trace_id = *id;
    if (t.HasMember("durationMs")) {
      const auto& d = t["durationMs"];
      if (d.IsInt64()) {
        hit.duration_ns = std::clamp<int64_t>(d.GetInt64(), 0, int64_t{1} << 40) * 1'000'000;
      } else if (d.IsUint64()) {
        hit.duration_ns =
            static_cast<int64_t>(std::min<uint64_t>(d.GetUint64(), 1ull << 40)) * 1'000'000;
      } else if (d.IsDouble() && d.GetDouble() > 0 && d.GetDouble() < 1e12) {
        hit.duration_ns = static_cast<int64_t>(d.GetDouble() * 1e6);
      }
    }
    // Several tenants or shards can list a trace twice.
    if (std::none_of(hits.begin(), hits.end(),
                     [&](const SearchHit& h) { return h.trace_id == hit.trace_id; })) {
      hits.push_back(std::move(hit));
    }
  }
  if (query.order == TraceQuery::Order::kSlowestFirst) {
    RankSlowestFirst(hits, query.limit);
  } else if (hits.size() > query.limit) {
    hits.resize(query.limit);
  }
  return hits;
}

}  // namespace tracepager::integrations
