#include "daemon/audit_query.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>

namespace tracepager::daemon {
namespace {

// Reads every decision (summarised) and joins its deliveries.
bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// Grouped identities are not kept in the summary (a storm can hold a thousand); the --alert
// filter needs them, so they are matched while reading: grouped_match[i] says whether decision
// i lists `alert` among its grouped alerts.
struct Loaded {
  std::vector<DecisionSummary> decisions;
  std::vector<bool> grouped_match;
  std::vector<AuditReadWarning> warnings;
};

Result<Loaded> LoadSummaries(const std::string& log_path, const std::string& alert) {
  Loaded out;
  std::unordered_map<std::string, size_t> by_id;
  std::vector<std::pair<std::string, DeliverySummary>> deliveries;
  Status s = ReadAuditLog(
      log_path, {},
      [&](const AuditLogEntry& e) {
        if (const auto* d = std::get_if<DecisionAudit>(&e.record)) {
          by_id[d->id] = out.decisions.size();
          out.decisions.push_back(SummarizeDecision(*d));
          out.grouped_match.push_back(!alert.empty() &&
                                      Contains(d->alert.grouped_identities, alert));
        } else if (const auto* p = std::get_if<DeliveryAudit>(&e.record)) {
          DeliverySummary ds;
          ds.time_ns = p->time_ns;
          ds.action = p->action;
          ds.team = p->team;
          ds.target_kind = p->target.kind;
          ds.target_name = p->target.name;
          ds.dedup_key = p->dedup_key;
          ds.outcome = p->outcome;
          ds.attempts = p->attempts.size();
          if (!p->attempts.empty()) {
            ds.last_http_status = p->attempts.back().http_status;
            ds.last_error = p->attempts.back().error;
          }
          ds.accepted_ns = p->accepted_ns;
          ds.fallback_for = p->fallback_for;
          ds.rerouted_to = p->rerouted_to;
          deliveries.emplace_back(p->decision_id, std::move(ds));
        }
        return true;
      },
      &out.warnings);
  if (!s.ok()) return s.error();
  for (auto& [id, ds] : deliveries) {
    auto it = by_id.find(id);
    if (it == by_id.end()) continue;  // its decision was deleted by retention
    DecisionSummary& d = out.decisions[it->second];
    if (ds.outcome == DeliveryOutcome::kNobodyPaged) d.nobody_paged = true;
    if (ds.outcome == DeliveryOutcome::kAccepted && ds.action == "trigger" && ds.accepted_ns > 0 &&
        (d.first_accepted_ns == 0 || ds.accepted_ns < d.first_accepted_ns)) {
      d.first_accepted_ns = ds.accepted_ns;
    }
    d.deliveries.push_back(std::move(ds));
  }
  return out;
}

bool Matches(const DecisionSummary& d, const AuditFilter& f, bool grouped_match) {
  if (f.since_ns && d.time_ns < *f.since_ns) return false;
  if (f.until_ns && d.time_ns > *f.until_ns) return false;
  if (f.kind && d.kind != *f.kind) return false;
  if (f.disagreement_only && !d.disagreement) return false;
  if (!f.service.empty() && d.alerting_service != f.service &&
      std::none_of(d.culprits.begin(), d.culprits.end(),
                   [&](const CulpritSummary& c) { return c.service == f.service; })) {
    return false;
  }
  if (!f.team.empty() && !Contains(d.teams, f.team) &&
      std::none_of(d.deliveries.begin(), d.deliveries.end(),
                   [&](const DeliverySummary& p) { return p.team == f.team; })) {
    return false;
  }
  if (!f.alert.empty() && d.alert_name != f.alert && d.alert_identity != f.alert &&
      !grouped_match) {
    return false;
  }
  return true;
}

int64_t NearestRank(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  if (rank == 0) rank = 1;
  return sorted[std::min(rank, sorted.size()) - 1];
}

}  // namespace

Result<int64_t> ParseTimeArg(std::string_view text, int64_t now_ns) {
  if (text == "now") return now_ns;
  if (!text.empty() && text.size() < 10 && text[0] >= '0' && text[0] <= '9') {
    // A duration: one or more <digits><unit>.
    int64_t total_s = 0;
    size_t pos = 0;
    bool ok = true;
    while (pos < text.size() && ok) {
      int64_t n = 0;
      size_t digits = 0;
      while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
        n = n * 10 + (text[pos++] - '0');
        ++digits;
      }
      if (digits == 0 || pos >= text.size()) {
        ok = false;
        break;
      }
      switch (text[pos++]) {
        case 's':
          total_s += n;
          break;
        case 'm':
          total_s += n * 60;
          break;
        case 'h':
          total_s += n * 3600;
          break;
        case 'd':
          total_s += n * 86400;
          break;
        case 'w':
          total_s += n * 7 * 86400;
          break;
        default:
          ok = false;
      }
    }
    if (ok) return now_ns - total_s * 1'000'000'000;
  }
  Result<int64_t> t = ParseAuditTime(text);
  if (t.ok()) return t;
  return Error::InvalidInput("\"" + std::string(text) +
                             "\": expected a duration before now (30m, 2h, 1d, 1w, 1h30m), "
                             "\"now\", or an RFC 3339 time (2025-06-11T03:15:22Z)");
}

DecisionSummary SummarizeDecision(const DecisionAudit& a) {
  DecisionSummary d;
  d.id = a.id;
  d.time_ns = a.time_ns;
  d.alert_name = a.alert.name;
  d.alert_identity = a.alert.identity;
  d.alert_source = a.alert.source;
  d.received_ns = a.alert.received_ns;
  d.grouped_alerts = a.alert.grouped_identities.size();
  d.alerting_service = a.decision.alerting_service;
  d.symptom = routing::SymptomName(a.decision.symptom);
  d.kind = a.decision.kind;
  d.reason = a.decision.reason;
  d.teams = a.decision.teams;
  d.naive_teams = a.decision.naive_teams;
  for (const routing::Culprit& c : a.decision.culprits) {
    d.culprits.push_back(
        {c.service, c.team, c.share, c.role == routing::CulpritRole::kPrimary, c.is_virtual});
  }
  for (routing::Refinement r : a.decision.changed_by) {
    d.changed_by.push_back(routing::RefinementName(r));
  }
  d.disagreement = NaiveDisagrees(a.decision);
  d.traces_asked = a.fetch.traces.size();
  for (const AuditTraceFetch& t : a.fetch.traces) {
    if (t.used) ++d.traces_used;
    if (!t.error.empty()) ++d.fetch_errors;
  }
  if (a.fetch.search && !a.fetch.search->error.empty()) ++d.fetch_errors;
  d.timings = a.timings;
  d.pages_planned = a.pages.size();
  return d;
}

Result<AuditListing> ListDecisions(const std::string& log_path, const AuditFilter& filter,
                                   size_t limit) {
  Result<Loaded> all = LoadSummaries(log_path, filter.alert);
  if (!all.ok()) return all.error();
  AuditListing out;
  out.warnings = std::move(all->warnings);
  for (size_t i = 0; i < all->decisions.size(); ++i) {
    DecisionSummary& d = all->decisions[i];
    if (Matches(d, filter, all->grouped_match[i])) out.decisions.push_back(std::move(d));
  }
  std::stable_sort(out.decisions.begin(), out.decisions.end(),
                   [](const DecisionSummary& a, const DecisionSummary& b) {
                     if (a.time_ns != b.time_ns) return a.time_ns > b.time_ns;
                     return a.id > b.id;
                   });
  out.matched = out.decisions.size();
  if (limit > 0 && out.decisions.size() > limit) out.decisions.resize(limit);
  return out;
}

Result<AuditDecisionDetail> FindDecision(const std::string& log_path, std::string_view id) {
  if (id.empty()) return Error::InvalidInput("empty decision id");
  // First pass: which id (exact, else a unique prefix). Second pass: that record and its
  // deliveries, so that only one full decision is held in memory.
  std::vector<std::string> candidates;
  bool exact = false;
  std::vector<AuditReadWarning> warnings;
  Status s = ReadAuditLog(
      log_path, {},
      [&](const AuditLogEntry& e) {
        const auto* d = std::get_if<DecisionAudit>(&e.record);
        if (!d) return true;
        if (d->id == id) {
          exact = true;
          candidates = {d->id};
          return false;
        }
        if (d->id.compare(0, id.size(), id) == 0 && !Contains(candidates, d->id)) {
          candidates.push_back(d->id);
        }
        return true;
      },
      &warnings);
  if (!s.ok()) return s.error();
  if (candidates.empty()) {
    return Error::NotFound("no decision " + std::string(id) + " in " + log_path);
  }
  if (candidates.size() > 1 && !exact) {
    std::string list;
    for (size_t i = 0; i < candidates.size() && i < 5; ++i) list += "\n  " + candidates[i];
    if (candidates.size() > 5) list += "\n  ...";
    return Error::InvalidInput("\"" + std::string(id) + "\" names " +
                               std::to_string(candidates.size()) + " decisions:" + list);
  }
  const std::string& wanted = candidates.front();
  AuditDecisionDetail out;
  bool found = false;
  std::vector<AuditReadWarning> ignored;
  s = ReadAuditLog(
      log_path, {},
      [&](const AuditLogEntry& e) {
        if (const auto* d = std::get_if<DecisionAudit>(&e.record)) {
          if (d->id == wanted && !found) {
            found = true;
            out.decision = *d;
            out.decision_json = std::string(e.text);
            out.file = e.file;
            out.line = e.line;
          }
        } else if (const auto* p = std::get_if<DeliveryAudit>(&e.record)) {
          if (p->decision_id == wanted) {
            out.deliveries.push_back(*p);
            out.delivery_json.emplace_back(e.text);
          }
        }
        return true;
      },
      &ignored);
  if (!s.ok()) return s.error();
  if (!found) return Error::NotFound("decision " + wanted + " vanished from " + log_path);
  out.warnings = std::move(warnings);
  return out;
}

Result<AuditStats> ComputeAuditStats(const std::string& log_path, const AuditFilter& filter,
                                     size_t top_n) {
  Result<AuditListing> listing = ListDecisions(log_path, filter, 0);
  if (!listing.ok()) return listing.error();
  AuditStats st;
  st.warnings = std::move(listing->warnings);
  std::map<std::string, TeamStats> teams;
  std::map<std::string, size_t> culprits;
  std::vector<int64_t> latencies;
  for (const DecisionSummary& d : listing->decisions) {
    ++st.decisions;
    if (!st.first_ns || d.time_ns < *st.first_ns) st.first_ns = d.time_ns;
    if (!st.last_ns || d.time_ns > *st.last_ns) st.last_ns = d.time_ns;
    const bool fallback = d.kind == routing::Decision::Kind::kFallback;
    if (fallback) {
      ++st.fallbacks;
    } else {
      ++st.routed;
    }
    if (d.disagreement) ++st.disagreements;
    if (d.nobody_paged) ++st.nobody_paged;
    for (const std::string& team : d.teams) {
      TeamStats& t = teams[team];
      t.team = team;
      if (fallback) {
        ++t.fallbacks;
      } else {
        ++t.routed;
      }
    }
    for (const DeliverySummary& p : d.deliveries) {
      if (p.action != "trigger") continue;
      TeamStats& t = teams[p.team];
      t.team = p.team;
      if (p.outcome == DeliveryOutcome::kAccepted) {
        ++t.pages_accepted;
      } else if (DeliveryFailed(p.outcome)) {
        ++t.pages_failed;
      }
    }
    if (!fallback) {
      for (const CulpritSummary& c : d.culprits) {
        if (c.primary) ++culprits[c.service];
      }
    }
    if (d.first_accepted_ns > 0 && d.received_ns > 0 && d.first_accepted_ns >= d.received_ns) {
      latencies.push_back(d.first_accepted_ns - d.received_ns);
    }
  }
  if (st.decisions > 0) {
    st.fallback_rate = static_cast<double>(st.fallbacks) / static_cast<double>(st.decisions);
    st.disagreement_rate =
        static_cast<double>(st.disagreements) / static_cast<double>(st.decisions);
  }
  for (auto& [name, t] : teams) st.teams.push_back(t);
  std::stable_sort(st.teams.begin(), st.teams.end(), [](const TeamStats& a, const TeamStats& b) {
    return a.pages_accepted + a.routed + a.fallbacks > b.pages_accepted + b.routed + b.fallbacks;
  });
  std::sort(latencies.begin(), latencies.end());
  st.page_latency_count = latencies.size();
  st.page_latency_median_ns = NearestRank(latencies, 0.5);
  st.page_latency_p95_ns = NearestRank(latencies, 0.95);
  st.page_latency_max_ns = latencies.empty() ? 0 : latencies.back();
  for (auto& [service, n] : culprits) st.top_culprits.emplace_back(service, n);
  std::stable_sort(st.top_culprits.begin(), st.top_culprits.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  if (st.top_culprits.size() > top_n) st.top_culprits.resize(top_n);
  return st;
}

}  // namespace tracepager::daemon
