// JobProcessor: see the header for the behaviour; this file explains the choices.
//
// Trace fetching blocks the worker (each worker handles one claim at a time, and the job's
// deadline, trace_source.timeout, bounds the wait), which keeps the flow readable: fetch, route,
// submit, complete. Which traces are asked for, the 404 retries inside a job and the deadline are
// integrations/trace_collector.h's; Collect only waits for it and turns its audit into the
// decision's notes.
#include "daemon/job_processor.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>

#include "integrations/http/io_thread.h"
#include "routing/decision_format.h"
#include "routing/json_fields.h"

namespace tracepager::daemon {
namespace {

using integrations::CollectAudit;
using integrations::TraceOutcome;
using SteadyClock = std::chrono::steady_clock;

struct Collected {
  std::vector<routing::Trace> traces;
  CollectAudit audit;
  bool expected = false;        // there was something to ask for (ids or a service)
  bool all_not_found = true;    // every miss was "not (yet) there", nothing failed for good
  int64_t search_start_ns = 0;  // the window a search covers (when it ran)
  int64_t search_end_ns = 0;
};

// How much longer than the job's deadline a worker waits for the collector, which finishes at
// its deadline by itself (its own timer). Only a bug could use this; it keeps a worker from
// being stuck for good even then.
constexpr std::chrono::seconds kCollectGrace{5};

// Runs integrations::CollectTraces for the run and waits for it (the worker blocks; see the top
// of this file). The state is shared so that a collector finishing after the grace period
// writes into memory that is still alive.
Collected Collect(const std::vector<const ClaimedJob*>& run, const RoutingSnapshot& snap,
                  const std::string& service, routing::Symptom symptom,
                  integrations::Scheduler& scheduler) {
  const Config& config = *snap.config;
  integrations::CollectRequest request;
  for (const ClaimedJob* cj : run) {
    for (const std::string& id : cj->job.trace_ids) request.trace_ids.push_back(id);
  }
  request.query.service = service;
  request.query.start_ns = run.front()->job.window_start_ns;
  request.query.end_ns = run.front()->job.window_end_ns;
  for (const ClaimedJob* cj : run) {
    request.query.start_ns = std::min(request.query.start_ns, cj->job.window_start_ns);
    request.query.end_ns = std::max(request.query.end_ns, cj->job.window_end_ns);
  }
  request.query.order = symptom == routing::Symptom::kLatency
                            ? integrations::TraceQuery::Order::kSlowestFirst
                            : integrations::TraceQuery::Order::kErrorsFirst;
  request.deadline = SteadyClock::now() + config.trace_source.timeout;

  Collected out;
  out.expected = !request.trace_ids.empty() || !service.empty();
  out.search_start_ns = request.query.start_ns;
  out.search_end_ns = request.query.end_ns;
  if (!snap.trace_source) {
    out.all_not_found = false;
    out.audit.search_error = "no trace source";
    return out;
  }
  integrations::CollectOptions options = snap.trace_collect;
  options.max_traces = config.routing.max_traces;
  options.total_timeout = config.trace_source.timeout;

  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<integrations::CollectResult> result;
  };
  auto state = std::make_shared<State>();
  const SteadyClock::time_point wait_until = request.deadline + kCollectGrace;
  integrations::CollectTraces(snap.trace_source, std::move(request), options, scheduler,
                              [state](integrations::CollectResult r) {
                                std::lock_guard<std::mutex> lk(state->mu);
                                state->result.emplace(std::move(r));
                                state->cv.notify_all();
                              });
  std::unique_lock<std::mutex> lk(state->mu);
  if (!state->cv.wait_until(lk, wait_until, [&] { return state->result.has_value(); })) {
    out.all_not_found = false;
    out.audit.source = std::string(snap.trace_source->kind());
    out.audit.deadline_reached = true;
    out.audit.search_error = "trace collection did not finish by the job's deadline";
    return out;
  }
  out.traces = std::move(state->result->traces);
  out.audit = std::move(state->result->audit);
  if (out.audit.deadline_reached || !out.audit.search_error.empty()) out.all_not_found = false;
  for (const TraceOutcome& o : out.audit.traces) {
    if (o.status == TraceOutcome::Status::kFailed || o.status == TraceOutcome::Status::kDeadline) {
      out.all_not_found = false;
    }
  }
  return out;
}

// The collector's audit in the decision event's terms (log line, store record, audit log).
void NoteCollection(const Collected& c, const RoutingSnapshot& snap, DecisionEvent* event) {
  const CollectAudit& a = c.audit;
  event->trace_source = !a.source.empty()
                            ? a.source
                            : (snap.trace_source ? std::string(snap.trace_source->kind()) : "");
  for (const TraceOutcome& o : a.traces) {
    const bool fetched = o.status == TraceOutcome::Status::kFetched;
    const bool sent =
        o.status != TraceOutcome::Status::kSkipped && o.status != TraceOutcome::Status::kInvalidId;
    if (sent) event->traces_asked.push_back(o.trace_id);
    TraceNote n;
    n.trace_id = o.trace_id;
    n.origin = o.origin == TraceOutcome::Origin::kCarried ? "alert" : "search";
    n.used = fetched;
    if (!fetched) {
      n.error = std::string(integrations::TraceOutcomeStatusName(o.status)) + ": " + o.reason;
      event->fetch_errors.push_back(o.trace_id + ": " + n.error);
    }
    event->traces.push_back(std::move(n));
  }
  if (a.searched) {
    SearchNote s;
    s.service = event->alerting_service;
    s.start_ns = c.search_start_ns;
    s.end_ns = c.search_end_ns;
    s.limit = snap.config->routing.max_traces;
    s.found = static_cast<uint32_t>(a.search_hits);
    s.error = a.search_error;
    if (!s.error.empty()) event->fetch_errors.push_back("search " + s.service + ": " + s.error);
    event->search = std::move(s);
  } else if (!a.search_error.empty()) {
    event->fetch_errors.push_back(a.search_error);
  }
}

void WriteStrings(rapidjson::Writer<rapidjson::StringBuffer>& w, const char* key,
                  const std::vector<std::string>& values) {
  w.Key(key);
  routing::json::WriteStrings(w, values);
}

// The record the store keeps with the completed jobs (and the audit log can use).
std::string RecordJson(const DecisionEvent& e, const std::vector<const ClaimedJob*>& run) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("decision_id");
  w.String(e.decision_id.c_str());
  w.Key("kind");
  w.String(e.kind.c_str());
  w.Key("storm_key");
  w.String(e.storm_key.c_str());
  w.Key("alerting_service");
  w.String(e.alerting_service.c_str());
  w.Key("symptom");
  w.String(e.symptom.c_str());
  w.Key("jobs");
  w.StartArray();
  for (const ClaimedJob* cj : run) {
    w.StartObject();
    w.Key("id");
    w.Int64(cj->id);
    w.Key("identity");
    w.String(cj->job.identity.c_str());
    w.Key("source");
    w.String(cj->job.source.c_str());
    w.Key("alertname");
    w.String(cj->job.alertname.c_str());
    w.Key("received_ns");
    w.Int64(cj->job.received_ns);
    w.Key("claims");
    w.Uint(cj->claims);
    w.EndObject();
  }
  w.EndArray();
  WriteStrings(w, "teams", e.teams);
  WriteStrings(w, "traces_asked", e.traces_asked);
  WriteStrings(w, "traces_used", e.traces_used);
  WriteStrings(w, "fetch_errors", e.fetch_errors);
  w.Key("fetch_seconds");
  w.Double(e.fetch_seconds);
  w.Key("route_seconds");
  w.Double(e.route_seconds);
  w.Key("queue_wait_ns");
  w.Int64(e.queue_wait_ns);
  if (e.decision != nullptr) {
    std::string decision = routing::DecisionToJson(*e.decision);
    w.Key("decision");
    w.RawValue(decision.data(), decision.size(), rapidjson::kObjectType);
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string TriggerIdentityJson(const std::string& identity) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  routing::json::WriteStringMember(w, "trigger_identity", identity);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

// The identity a page was triggered under (delivery resolves by it). A page stored without
// one (none is written so today) falls back to its first firing alert.
Result<std::string> TriggerIdentity(Store& store, const PageRecord& page) {
  const std::string key = "\"trigger_identity\":\"";
  size_t at = page.payload_json.find(key);
  if (at == std::string::npos) {
    Result<std::vector<std::string>> firing = store.FiringIdentities(page.id);
    if (!firing.ok()) return firing.error();
    return firing->empty() ? std::string() : firing->front();
  }
  size_t start = at + key.size();
  size_t end = page.payload_json.find('"', start);
  return page.payload_json.substr(start, end - start);
}

double Seconds(SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); }
int64_t Ns(std::chrono::milliseconds d) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

}  // namespace

JobProcessor::JobProcessor(Store* store, integrations::delivery::Delivery* delivery,
                           std::function<int64_t()> now_ns, ProcessorHooks hooks,
                           integrations::Scheduler* scheduler)
    : store_(store), delivery_(delivery), now_ns_(std::move(now_ns)), hooks_(std::move(hooks)) {
  if (scheduler == nullptr) {
    own_io_ = std::make_unique<integrations::http::IoThread>(1);
    own_scheduler_ = std::make_unique<integrations::AsioScheduler>(own_io_->context());
    scheduler = own_scheduler_.get();
  }
  scheduler_ = scheduler;
}

JobProcessor::~JobProcessor() {
  // Timers first, then the thread that runs them.
  own_scheduler_.reset();
  own_io_.reset();
}

Result<ProcessOutcome> JobProcessor::Process(const Claim& claim, const RoutingSnapshot& snapshot) {
  ProcessOutcome total;
  size_t i = 0;
  while (i < claim.jobs.size()) {
    std::vector<const ClaimedJob*> run;
    JobKind kind = claim.jobs[i].job.kind;
    while (i < claim.jobs.size() && claim.jobs[i].job.kind == kind) run.push_back(&claim.jobs[i++]);
    Result<ProcessOutcome> r = kind == JobKind::kRoute ? ProcessRoutes(claim, run, snapshot)
                                                       : ProcessResolves(claim, run, snapshot);
    if (r.ok()) {
      total.completed += r->completed;
      total.released += r->released;
    }
    bool stop = !r.ok() || r->released > 0;
    if (stop) {
      // Later runs must not overtake this one (a resolve before its trigger): they wait too.
      std::vector<const ClaimedJob*> rest;
      for (size_t j = i; j < claim.jobs.size(); ++j) rest.push_back(&claim.jobs[j]);
      if (!rest.empty()) {
        int64_t not_before = now_ns_() + Ns(snapshot.config->workers.retry_delay);
        Status st = store_->Release(
            [&] {
              std::vector<int64_t> ids;
              for (const ClaimedJob* cj : rest) ids.push_back(cj->id);
              return ids;
            }(),
            not_before);
        if (st.ok()) total.released += rest.size();
      }
      if (!r.ok()) return r.error();
      break;
    }
  }
  return total;
}

Result<ProcessOutcome> JobProcessor::ReleaseRun(const std::vector<const ClaimedJob*>& run,
                                                int64_t not_before, const Error& why) {
  std::vector<int64_t> ids;
  for (const ClaimedJob* cj : run) ids.push_back(cj->id);
  Status st = store_->Release(ids, not_before);
  if (!st.ok()) return st.error();
  if (why.code != ErrorCode::kNotFound) return why;  // a failure the caller reports
  ProcessOutcome out;
  out.released = ids.size();
  return out;
}

Result<ProcessOutcome> JobProcessor::Finish(Completion completion, DecisionEvent event) {
  Result<CompletionOutcome> done = store_->Complete(completion);
  if (!done.ok()) return done.error();
  if (hooks_.on_decision) hooks_.on_decision(event);
  ProcessOutcome out;
  out.completed = completion.job_ids.size();
  return out;
}

Result<ProcessOutcome> JobProcessor::ProcessRoutes(const Claim& claim,
                                                   std::vector<const ClaimedJob*> run,
                                                   const RoutingSnapshot& snap) {
  const Config& config = *snap.config;
  const int64_t now = now_ns_();
  const RoutingJob& first = run.front()->job;
  DecisionEvent event;
  event.decision_id =
      hooks_.decision_id ? hooks_.decision_id(now) : "d-" + std::to_string(run.front()->id);
  event.time_ns = now;
  event.storm_key = claim.storm_key;
  event.alerting_service = first.alerting_service;
  event.symptom = SymptomText(first.symptom);
  for (const ClaimedJob* cj : run) {
    event.queue_wait_ns = std::max(event.queue_wait_ns, now - cj->enqueued_ns);
  }
  Completion completion;
  completion.storm_key = claim.storm_key;
  completion.now_ns = now;
  for (const ClaimedJob* cj : run) completion.job_ids.push_back(cj->id);
  // A lookup that fails puts the run back for a retry rather than leaving it claimed until
  // the next start.
  auto retry = [&](const Error& why) {
    return ReleaseRun(run, now + Ns(config.workers.retry_delay),
                      Error::Unavailable("routing: " + why.message));
  };

  // Repeats: alerts that already have an open page.
  std::vector<const ClaimedJob*> fresh;
  std::vector<std::string> identities;
  for (const ClaimedJob* cj : run) identities.push_back(cj->job.identity);
  Result<std::map<std::string, std::vector<PageRecord>>> open =
      store_->OpenPagesForIdentities(identities);
  if (!open.ok()) return retry(open.error());
  for (const ClaimedJob* cj : run) {
    auto it = open->find(cj->job.identity);
    if (it == open->end()) {
      fresh.push_back(cj);
    } else {
      for (const PageRecord& p : it->second) event.teams.push_back(p.team);
    }
  }
  if (fresh.empty()) {
    event.kind = "repeat";
    for (const ClaimedJob* cj : run) event.identities.push_back(cj->job.identity);
    completion.decision_kind = event.kind;
    completion.decision_json = RecordJson(event, run);
    return Finish(std::move(completion), std::move(event));
  }
  for (const ClaimedJob* cj : fresh) event.identities.push_back(cj->job.identity);

  // Storm: an open page of this storm key, young enough, takes the new alerts in.
  const int64_t storm_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(config.alerts.storm_window).count();
  if (storm_ns > 0) {
    Result<std::vector<PageRecord>> storm =
        store_->OpenPagesForStorm(claim.storm_key, now - storm_ns);
    if (!storm.ok()) return retry(storm.error());
    if (!storm->empty()) {
      event.kind = "storm";
      // Join every team page of the newest storm decision.
      int64_t decision = storm->front().decision_id;
      for (const PageRecord& p : *storm) {
        if (p.decision_id != decision) continue;
        event.teams.push_back(p.team);
        for (const ClaimedJob* cj : fresh) completion.attach.emplace_back(p.id, cj->job.identity);
      }
      completion.decision_kind = event.kind;
      completion.decision_json = RecordJson(event, run);
      return Finish(std::move(completion), std::move(event));
    }
  }

  // A new incident: fetch, route, page. The page and the audit record read the details of the
  // run's first alert and of the first new one (a claim may carry them for its first job only).
  Result<RoutingJob> lead = store_->DetailedJob(*run.front());
  if (!lead.ok()) return retry(lead.error());
  if (fresh.front() == run.front()) {
    event.alert = *lead;
  } else {
    Result<RoutingJob> alert = store_->DetailedJob(*fresh.front());
    if (!alert.ok()) return retry(alert.error());
    event.alert = std::move(*alert);
  }
  SteadyClock::time_point t0 = SteadyClock::now();
  Collected traces = Collect(fresh, snap, first.alerting_service, first.symptom, *scheduler_);
  SteadyClock::time_point t1 = SteadyClock::now();
  event.fetch_seconds = Seconds(t1 - t0);
  NoteCollection(traces, snap, &event);
  uint32_t claims = run.front()->claims;
  if (traces.traces.empty() && traces.expected && traces.all_not_found &&
      claims < config.workers.max_attempts) {
    // Traces reach backends late; the alert may be faster. Ask again later.
    int64_t not_before = now + Ns(config.workers.retry_delay);
    return ReleaseRun(run, not_before, Error::NotFound("no trace yet"));
  }
  for (const routing::Trace& t : traces.traces) event.traces_used.push_back(t.trace_id);

  routing::RouteRequest request;
  request.alerting_service = first.alerting_service;
  request.symptom = first.symptom;
  routing::Decision decision =
      routing::Route(traces.traces, request, *snap.registry, config.routing.walk);
  event.route_seconds = Seconds(SteadyClock::now() - t1);
  event.decision = &decision;
  event.teams = decision.teams;
  event.kind = decision.teams.empty() ? "unrouted" : routing::DecisionKindName(decision.kind);

  integrations::AlertInfo alert;
  alert.identity = lead->identity;
  alert.alertname = lead->alertname;
  alert.summary = lead->summary;
  alert.severity = lead->severity;
  alert.labels = std::map<std::string, std::string>(lead->labels.begin(), lead->labels.end());
  alert.trace_ids = event.traces_used.empty() ? lead->trace_ids : event.traces_used;
  alert.generator_url = lead->generator_url;
  if (auto it = lead->annotations.find("runbook_url"); it != lead->annotations.end()) {
    alert.runbook_url = it->second;
  }
  std::vector<integrations::Page> pages =
      integrations::BuildPages(decision, alert, snap.page_options, event.decision_id, now);
  if (!pages.empty()) {
    Result<integrations::delivery::SubmitReport> submitted =
        delivery_->Submit("route-" + std::to_string(run.front()->id), pages);
    if (!submitted.ok()) {
      int64_t not_before = now + Ns(config.workers.retry_delay);
      return ReleaseRun(run, not_before, submitted.error());
    }
  }
  for (const integrations::Page& page : pages) {
    event.pages.push_back({page.team, page.dedup_key});
    NewPage np;
    np.team = page.team;
    np.pager = "delivery";
    np.dedup_key = page.dedup_key;
    np.payload_json = TriggerIdentityJson(first.identity);
    for (const ClaimedJob* cj : fresh) np.identities.push_back(cj->job.identity);
    completion.new_pages.push_back(std::move(np));
  }
  completion.decision_kind = event.kind;
  completion.decision_json = RecordJson(event, run);
  if (hooks_.record) {
    // The audit record goes first: a decision whose record could not be written is made again.
    if (Status st = hooks_.record(event); !st.ok()) {
      int64_t not_before = now + Ns(config.workers.retry_delay);
      return ReleaseRun(run, not_before, st.error());
    }
  }
  return Finish(std::move(completion), std::move(event));
}

Result<ProcessOutcome> JobProcessor::ProcessResolves(const Claim& claim,
                                                     const std::vector<const ClaimedJob*>& run,
                                                     const RoutingSnapshot& snap) {
  const int64_t now = now_ns_();
  DecisionEvent event;
  event.decision_id =
      hooks_.decision_id ? hooks_.decision_id(now) : "d-" + std::to_string(run.front()->id);
  event.time_ns = now;
  event.kind = "resolve";
  event.storm_key = claim.storm_key;
  event.alerting_service = run.front()->job.alerting_service;
  event.symptom = SymptomText(run.front()->job.symptom);
  Completion completion;
  completion.storm_key = claim.storm_key;
  completion.now_ns = now;
  auto retry = [&](const Error& why) {  // as in ProcessRoutes
    return ReleaseRun(run, now + Ns(snap.config->workers.retry_delay),
                      Error::Unavailable("resolving: " + why.message));
  };
  std::set<std::string> resolving;
  for (const ClaimedJob* cj : run) {
    completion.job_ids.push_back(cj->id);
    if (resolving.insert(cj->job.identity).second) {
      completion.resolved_identities.push_back(cj->job.identity);
      event.identities.push_back(cj->job.identity);
    }
  }
  // Pages whose every firing alert resolves now are resolved through delivery, once per
  // identity they were triggered under.
  std::map<int64_t, PageRecord> pages;
  Result<std::map<std::string, std::vector<PageRecord>>> open =
      store_->OpenPagesForIdentities(completion.resolved_identities);
  if (!open.ok()) return retry(open.error());
  for (auto& [identity, records] : *open) {
    for (PageRecord& p : records) pages.emplace(p.id, std::move(p));
  }
  // A page resolves when its firing alerts are exactly those resolving now: counted, not
  // listed (a storm's page may hold very many).
  std::set<std::string> triggers;
  for (const auto& [id, page] : pages) {
    Result<uint64_t> firing = store_->FiringCount(id);
    if (!firing.ok()) return retry(firing.error());
    Result<uint64_t> resolving_here = store_->FiringCount(id, completion.resolved_identities);
    if (!resolving_here.ok()) return retry(resolving_here.error());
    if (*resolving_here != *firing) continue;
    Result<std::string> trigger = TriggerIdentity(*store_, page);
    if (!trigger.ok()) return retry(trigger.error());
    completion.resolved_pages.push_back(id);
    event.teams.push_back(page.team);
    triggers.insert(*trigger);
  }
  for (const std::string& trigger : triggers) {
    Result<integrations::delivery::SubmitReport> r = delivery_->SubmitResolve(
        "resolve-" + std::to_string(run.front()->id) + "-" + trigger, trigger);
    if (!r.ok()) {
      int64_t not_before = now + Ns(snap.config->workers.retry_delay);
      return ReleaseRun(run, not_before, r.error());
    }
  }
  completion.decision_kind = event.kind;
  completion.decision_json = RecordJson(event, run);
  return Finish(std::move(completion), std::move(event));
}

}  // namespace tracepager::daemon
