#include "integrations/delivery/delivery.h"

#include <fmt/format.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "integrations/page_builder.h"

namespace tracepager::integrations::delivery {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

constexpr int64_t kNsPerMs = 1'000'000;
// Bound on how often Prune runs, and on how long a Poll that could not persist waits.
constexpr int64_t kPruneEveryNs = int64_t{3600} * 1'000'000'000;
constexpr int64_t kStoreRetryNs = int64_t{1'000'000'000};

int64_t Ns(milliseconds d) { return d.count() * kNsPerMs; }

const char* ActionName(Page::Action action) {
  return action == Page::Action::kTrigger ? "trigger" : "resolve";
}

std::string Duration(int64_t ns) {
  int64_t s = ns / 1'000'000'000;
  if (s >= 60) return fmt::format("{}m{}s", s / 60, s % 60);
  return fmt::format("{}ms", ns / kNsPerMs);
}

bool IsTrigger(const OutboxEntry& e) { return e.page.action == Page::Action::kTrigger; }

std::string GroupId(std::string_view submission, int hop, std::string_view team) {
  return fmt::format("{}#{}:{}", submission, hop, team);
}

// `team` as a person reads it; the empty team is the decision that found no owner.
std::string TeamName(std::string_view team) {
  return team.empty() ? std::string("(no owner)") : std::string(team);
}

// A record about `page` itself, before any target took it (no target, fallback, nobody paged).
DeliveryRecord PageRecord(const Page& page, DeliveryRecord::Kind kind, std::string detail,
                          int64_t now) {
  DeliveryRecord r;
  r.kind = kind;
  r.action = page.action;
  r.alert_identity = page.alert_identity;
  r.decision_id = page.decision_id;
  r.dedup_key = page.dedup_key;
  r.team = page.team;
  r.detail = std::move(detail);
  r.at_ns = now;
  return r;
}

}  // namespace

const char* DeliveryRecordKindName(DeliveryRecord::Kind kind) {
  switch (kind) {
    case DeliveryRecord::Kind::kSent:
      return "sent";
    case DeliveryRecord::Kind::kRetry:
      return "retry";
    case DeliveryRecord::Kind::kFailed:
      return "failed";
    case DeliveryRecord::Kind::kExpired:
      return "expired";
    case DeliveryRecord::Kind::kNoTarget:
      return "no_target";
    case DeliveryRecord::Kind::kFallback:
      return "fallback";
    case DeliveryRecord::Kind::kNobodyPaged:
      return "nobody_paged";
    case DeliveryRecord::Kind::kCancelled:
      return "cancelled";
    case DeliveryRecord::Kind::kNothingToResolve:
      return "nothing_to_resolve";
  }
  return "unknown";
}

Delivery::Delivery(Outbox* outbox, std::map<std::string, Pager*, std::less<>> pagers,
                   std::shared_ptr<const TargetDirectory> directory, DeliveryOptions options,
                   const Clock* clock, DeliveryHooks hooks, std::shared_ptr<spdlog::logger> logger)
    : outbox_(outbox),
      pagers_(std::move(pagers)),
      options_(std::move(options)),
      clock_(clock),
      hooks_(std::move(hooks)),
      log_(logger ? std::move(logger) : spdlog::default_logger()),
      directory_(directory ? std::move(directory) : std::make_shared<TargetDirectory>()),
      rng_(options_.jitter_seed != 0 ? options_.jitter_seed : std::random_device{}()) {}

Delivery::~Delivery() = default;

void Delivery::SetDirectory(std::shared_ptr<const TargetDirectory> directory) {
  std::lock_guard lock(mu_);
  if (directory) directory_ = std::move(directory);
}

Status Delivery::Recover() {
  std::lock_guard lock(mu_);
  Result<std::vector<OutboxEntry>> pending = outbox_->LoadPending();
  if (!pending.ok()) return pending.error();
  for (OutboxEntry& e : *pending) pending_[e.id] = std::move(e);
  if (!pending_.empty()) {
    log_->info("delivery_recovered pending={}", pending_.size());
  }
  return OkStatus();
}

std::vector<OutboxEntry> Delivery::EntriesForTeam(const Page& page, std::string_view submission,
                                                  const std::vector<std::string>& tried, int hop,
                                                  int64_t now) const {
  // Service-level targets apply to the team the decision named; a fallback team is paged
  // through its own targets (the service's are what just failed).
  std::vector<PagerTarget> targets = hop == 0 ? directory_->TargetsFor(page.team, page.component)
                                              : directory_->TargetsFor(page.team, "");
  std::vector<OutboxEntry> out;
  for (PagerTarget& target : targets) {
    OutboxEntry e;
    e.submission = std::string(submission);
    e.group = GroupId(submission, hop, page.team);
    e.hop = hop;
    e.tried_teams = tried;
    e.page = page;
    e.target_key = target.Key();
    e.target = std::move(target);
    e.created_ns = now;
    e.deadline_ns = now + Ns(options_.max_age);
    e.next_attempt_ns = now;
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<OutboxEntry> Delivery::ChainEntries(const Page& page, std::string_view submission,
                                                std::vector<std::string> tried, int hop,
                                                std::string why, int64_t now,
                                                std::vector<DeliveryRecord>* records,
                                                bool* nobody) {
  Page current = page;
  // Each team joins `tried` once, so the chain is at most as long as the registry's team list.
  while (true) {
    std::string next = directory_->NextTeam(tried);
    if (next.empty()) {
      *nobody = true;
      // Named after the page the decision made (its team and dedup key), not the last fallback.
      records->push_back(PageRecord(
          page, DeliveryRecord::Kind::kNobodyPaged,
          fmt::format("no team left to page (tried {}): {}", fmt::join(tried, ", "), why), now));
      return {};
    }
    Page fallback = FallbackPage(current, next, why);
    tried.push_back(next);
    DeliveryRecord r = PageRecord(current, DeliveryRecord::Kind::kFallback, why, now);
    r.fallback_team = next;
    records->push_back(std::move(r));
    std::vector<OutboxEntry> entries = EntriesForTeam(fallback, submission, tried, hop, now);
    if (!entries.empty()) return entries;
    // (FallbackPage made `next` the fallback page's team.)
    DeliveryRecord none = PageRecord(fallback, DeliveryRecord::Kind::kNoTarget,
                                     fmt::format("team {} has no pager target", next), now);
    why = none.detail;  // the next hop's reason (taken before the record is moved away)
    records->push_back(std::move(none));
    current = std::move(fallback);
    ++hop;
  }
}

Result<size_t> Delivery::DropOpen(std::vector<OutboxEntry>* adds) {
  std::set<std::pair<std::string, std::string>> open;  // (dedup key, target key)
  std::set<std::string> identities;
  for (const OutboxEntry& a : *adds) identities.insert(a.page.alert_identity);
  for (const std::string& identity : identities) {
    Result<std::vector<OutboxEntry>> triggers = outbox_->LoadUnresolvedTriggers(identity);
    if (!triggers.ok()) return triggers.error();
    for (const OutboxEntry& stored : *triggers) {
      OutboxEntry t = Latest(stored);
      if (t.state == EntryState::kPending || t.state == EntryState::kSent) {
        open.emplace(t.page.dedup_key, t.target_key);
      }
    }
  }
  size_t dropped = 0;
  std::vector<OutboxEntry> kept;
  for (OutboxEntry& a : *adds) {
    if (IsTrigger(a) && !open.emplace(a.page.dedup_key, a.target_key).second) {
      ++dropped;
      continue;
    }
    kept.push_back(std::move(a));
  }
  *adds = std::move(kept);
  return dropped;
}

void Delivery::KeepCommitted(std::vector<OutboxEntry> adds, const std::vector<int64_t>& ids,
                             SubmitReport* report) {
  if (report != nullptr) report->entries = adds.size();
  for (size_t i = 0; i < adds.size(); ++i) {
    adds[i].id = ids[i];
    if (report != nullptr && std::find(report->teams.begin(), report->teams.end(),
                                       adds[i].page.team) == report->teams.end()) {
      report->teams.push_back(adds[i].page.team);
    }
    pending_[adds[i].id] = std::move(adds[i]);
  }
}

OutboxEntry Delivery::Latest(const OutboxEntry& stored) const {
  auto it = pending_.find(stored.id);
  return it == pending_.end() ? stored : it->second;
}

Result<SubmitReport> Delivery::Submit(std::string_view submission, const std::vector<Page>& pages) {
  SubmitReport report;
  std::vector<DeliveryRecord> records;
  {
    std::lock_guard lock(mu_);
    Result<bool> seen = outbox_->HasSubmission(submission);
    if (!seen.ok()) return seen.error();
    if (*seen) {
      report.duplicate_submission = true;
      return report;
    }
    const int64_t now = clock_->NowNs();
    std::vector<OutboxEntry> adds;
    for (const Page& page : pages) {
      std::vector<OutboxEntry> entries = EntriesForTeam(page, submission, {page.team}, 0, now);
      if (entries.empty()) {
        DeliveryRecord none =
            PageRecord(page, DeliveryRecord::Kind::kNoTarget,
                       page.team.empty() ? "the decision found no owning team"
                                         : fmt::format("team {} has no pager target", page.team),
                       now);
        records.push_back(none);
        bool nobody = false;
        entries =
            ChainEntries(page, submission, {page.team}, 1, none.detail, now, &records, &nobody);
        report.nobody_paged |= nobody;
      }
      for (OutboxEntry& e : entries) adds.push_back(std::move(e));
    }
    Result<size_t> dropped = DropOpen(&adds);
    if (!dropped.ok()) return dropped.error();
    report.already_open = *dropped;
    Result<std::vector<int64_t>> ids = outbox_->Commit({}, adds);
    if (!ids.ok()) return ids.error();
    KeepCommitted(std::move(adds), *ids, &report);
    for (DeliveryRecord& r : records) Emit(std::move(r));
  }
  if (hooks_.test_point) hooks_.test_point("persisted");
  Wake();
  return report;
}

Result<SubmitReport> Delivery::SubmitResolve(std::string_view submission,
                                             std::string_view alert_identity) {
  SubmitReport report;
  std::vector<std::pair<DeliveryRecord, std::optional<PagerTarget>>> records;
  {
    std::lock_guard lock(mu_);
    Result<bool> seen = outbox_->HasSubmission(submission);
    if (!seen.ok()) return seen.error();
    if (*seen) {
      report.duplicate_submission = true;
      return report;
    }
    Result<std::vector<OutboxEntry>> triggers = outbox_->LoadUnresolvedTriggers(alert_identity);
    if (!triggers.ok()) return triggers.error();
    const int64_t now = clock_->NowNs();
    std::vector<OutboxEntry> updates, adds;
    for (const OutboxEntry& stored : *triggers) {
      OutboxEntry t = Latest(stored);
      t.resolved = true;
      // Could this trigger have reached anyone? Sent: yes. Attempted (pending or expired
      // without a permanent refusal): maybe, a timeout can hide a delivery. Never attempted or
      // refused for good: no, and a resolve would only confuse (a Slack "resolved" for a
      // message nobody saw).
      bool may_have_reached =
          t.state == EntryState::kSent ||
          (t.attempts > 0 && !t.permanent && t.state != EntryState::kCancelled) ||
          in_flight_.count(t.id) > 0;
      if (t.state == EntryState::kPending && !in_flight_.count(t.id)) {
        t.state = EntryState::kCancelled;
        t.finished_ns = now;
        DeliveryRecord r = RecordFor(t, DeliveryRecord::Kind::kCancelled, now);
        r.detail = "the alert resolved before this page was delivered";
        records.emplace_back(std::move(r), t.target);
      }
      // In flight: the trigger stays pending and `resolved` stops its retries; the resolve
      // queued below waits for it (sends per dedup key and target are ordered).
      updates.push_back(t);
      if (!may_have_reached) continue;
      OutboxEntry r;
      r.submission = std::string(submission);
      r.group = GroupId(submission, t.hop, "resolve:" + t.page.team);
      r.hop = t.hop;
      r.tried_teams = t.tried_teams;
      r.page = ResolvePage(t.page);
      r.target = t.target;
      r.target_key = t.target_key;
      r.created_ns = now;
      r.deadline_ns = now + Ns(options_.resolve_max_age);
      r.next_attempt_ns = now;
      adds.push_back(std::move(r));
    }
    if (triggers->empty()) {
      DeliveryRecord r;
      r.kind = DeliveryRecord::Kind::kNothingToResolve;
      r.action = Page::Action::kResolve;
      r.alert_identity = std::string(alert_identity);
      r.detail = "no unresolved page for this alert";
      r.at_ns = now;
      records.emplace_back(std::move(r), std::nullopt);
    }
    Result<std::vector<int64_t>> ids = outbox_->Commit(updates, adds);
    if (!ids.ok()) return ids.error();
    for (const OutboxEntry& u : updates) {
      auto it = pending_.find(u.id);
      if (it == pending_.end()) continue;
      if (u.final()) {
        pending_.erase(it);
      } else {
        it->second = u;
      }
    }
    KeepCommitted(std::move(adds), *ids, &report);
    for (auto& [r, target] : records) Emit(std::move(r), target ? &*target : nullptr);
  }
  if (hooks_.test_point) hooks_.test_point("persisted");
  Wake();
  return report;
}

DeliveryRecord Delivery::RecordFor(const OutboxEntry& e, DeliveryRecord::Kind kind,
                                   int64_t now) const {
  DeliveryRecord r;
  r.kind = kind;
  r.action = e.page.action;
  r.alert_identity = e.page.alert_identity;
  r.decision_id = e.page.decision_id;
  r.dedup_key = e.page.dedup_key;
  r.team = e.page.team;
  r.target = e.target.Describe();
  r.target_key = e.target_key;
  r.pager_kind = e.target.kind;
  r.attempts = e.attempts;
  r.http_status = e.last_http_status;
  r.request_id = e.request_id;
  r.detail = e.last_error;
  if (e.hop > 0 && e.tried_teams.size() >= 2)
    r.fallback_for = e.tried_teams[e.tried_teams.size() - 2];
  r.attempt_log = e.history;
  r.at_ns = now;
  return r;
}

void Delivery::Emit(DeliveryRecord r, const PagerTarget* target) {
  using Kind = DeliveryRecord::Kind;
  switch (r.kind) {
    case Kind::kSent:
      log_->info(
          "page_sent action={} team={} target_key={} dedup_key={} attempts={} status={} "
          "request_id=\"{}\"",
          ActionName(r.action), TeamName(r.team), r.target_key, r.dedup_key, r.attempts,
          r.http_status, r.request_id);
      break;
    case Kind::kRetry:
      log_->warn(
          "page_retry action={} team={} target_key={} dedup_key={} attempts={} "
          "detail=\"{}\"",
          ActionName(r.action), TeamName(r.team), r.target_key, r.dedup_key, r.attempts, r.detail);
      break;
    case Kind::kFailed:
    case Kind::kExpired:
      log_->error(
          "page_{} action={} team={} target=\"{}\" dedup_key={} attempts={} rerouted_to={} "
          "detail=\"{}\"",
          DeliveryRecordKindName(r.kind), ActionName(r.action), TeamName(r.team), r.target,
          r.dedup_key, r.attempts, r.rerouted_to.empty() ? "-" : r.rerouted_to, r.detail);
      break;
    case Kind::kNoTarget:
      log_->warn("page_no_target team={} alert={} detail=\"{}\"", TeamName(r.team),
                 r.alert_identity, r.detail);
      break;
    case Kind::kFallback:
      log_->warn("page_fallback from={} to={} alert={} reason=\"{}\"", TeamName(r.team),
                 r.fallback_team, r.alert_identity, r.detail);
      break;
    case Kind::kNobodyPaged:
      log_->error("nobody_paged alert={} team={} decision_id={} reason=\"{}\"", r.alert_identity,
                  TeamName(r.team), r.decision_id, r.detail);
      break;
    case Kind::kCancelled:
      log_->info("page_cancelled team={} target_key={} dedup_key={} detail=\"{}\"",
                 TeamName(r.team), r.target_key, r.dedup_key, r.detail);
      break;
    case Kind::kNothingToResolve:
      log_->info("resolve_nothing_paged alert={}", r.alert_identity);
      break;
  }
  if (hooks_.count) hooks_.count(DeliveryRecordKindName(r.kind), r.pager_kind);
  if (hooks_.record) hooks_.record(r, target);
}

std::chrono::milliseconds Delivery::Backoff(int attempts) {
  int64_t d = options_.initial_backoff.count();
  for (int i = 1; i < attempts && d < options_.max_backoff.count(); ++i) d *= 2;
  d = std::min<int64_t>(d, options_.max_backoff.count());
  // "Equal jitter": half fixed, half random, so retries spread out without collapsing to zero.
  std::uniform_int_distribution<int64_t> dist(d / 2, std::max<int64_t>(d / 2, d));
  return milliseconds(dist(rng_));
}

bool Delivery::TakeToken(const std::string& kind, TargetState& t, int64_t now, int64_t* ready_at) {
  auto it = options_.rate_limits.find(kind);
  if (it == options_.rate_limits.end() || it->second.per_second <= 0) return true;
  const RateLimit& rl = it->second;
  const double burst = std::max(1.0, rl.burst);
  if (t.tokens < 0) {
    t.tokens = burst;
    t.refilled_ns = now;
  }
  if (now > t.refilled_ns) {
    t.tokens =
        std::min(burst, t.tokens + static_cast<double>(now - t.refilled_ns) / 1e9 * rl.per_second);
    t.refilled_ns = now;
  }
  if (t.tokens >= 1.0) {
    t.tokens -= 1.0;
    return true;
  }
  *ready_at = now + static_cast<int64_t>((1.0 - t.tokens) / rl.per_second * 1e9) + 1;
  return false;
}

void Delivery::FinishFailed(OutboxEntry e, const std::string& why, bool expired, int64_t now) {
  e.state = EntryState::kFailed;
  e.finished_ns = now;
  e.last_error = why;
  std::vector<DeliveryRecord> records = {
      RecordFor(e, expired ? DeliveryRecord::Kind::kExpired : DeliveryRecord::Kind::kFailed, now)};
  std::vector<OutboxEntry> adds;
  auto keep_pending = [&] {
    auto it = pending_.find(e.id);
    if (it != pending_.end()) it->second.next_attempt_ns = now + kStoreRetryNs;
  };
  if (IsTrigger(e) && !e.resolved) {
    // The team is unreachable only when every target of the group has ended without one
    // accepting. A sibling still trying (or one that got through) keeps the fallback away.
    Result<std::vector<OutboxEntry>> group = outbox_->LoadGroup(e.group);
    if (!group.ok()) {
      log_->error("outbox_read_failed group={} error=\"{}\"", e.group, group.error().message);
      return keep_pending();
    }
    bool reached = false, open = false;
    std::vector<std::string> reasons;
    for (const OutboxEntry& stored : *group) {
      if (stored.id == e.id) continue;
      OutboxEntry s = Latest(stored);
      reached |= s.state == EntryState::kSent;
      open |= s.state == EntryState::kPending;
      if (s.state == EntryState::kFailed) {
        reasons.push_back(fmt::format("{}: {}", s.target.kind, s.last_error));
      }
    }
    reasons.push_back(fmt::format("{}: {}", e.target.kind, why));
    if (!reached && !open) {
      bool nobody = false;
      std::string team_why = fmt::format("team {} could not be reached ({})", TeamName(e.page.team),
                                         fmt::join(reasons, "; "));
      adds = ChainEntries(e.page, e.submission, e.tried_teams, e.hop + 1, team_why, now, &records,
                          &nobody);
      for (const DeliveryRecord& r : records) {
        if (r.kind == DeliveryRecord::Kind::kFallback) {
          records[0].rerouted_to = r.fallback_team;
          break;
        }
      }
      Result<size_t> dropped = DropOpen(&adds);
      if (!dropped.ok()) {
        log_->error("outbox_read_failed alert={} error=\"{}\"", e.page.alert_identity,
                    dropped.error().message);
        return keep_pending();
      }
    }
  }
  Result<std::vector<int64_t>> ids = outbox_->Commit({e}, adds);
  if (!ids.ok()) {
    // Nothing changed on disk; the entry stays pending and is tried again, so the failure
    // and its fallback are decided again later rather than lost.
    log_->error("outbox_write_failed id={} error=\"{}\"", e.id, ids.error().message);
    return keep_pending();
  }
  pending_.erase(e.id);
  KeepCommitted(std::move(adds), *ids, nullptr);
  for (size_t i = 0; i < records.size(); ++i) {
    Emit(std::move(records[i]), i == 0 ? &e.target : nullptr);
  }
}

void Delivery::Apply(const Completion& c, int64_t now) {
  in_flight_.erase(c.id);
  auto it = pending_.find(c.id);
  if (it == pending_.end()) return;
  OutboxEntry e = it->second;
  TargetState& ts = targets_[e.target_key];
  if (ts.in_flight > 0) --ts.in_flight;

  SendOutcome o = c.outcome;
  // Defence in depth: pagers redact their own details, but a record must never depend on it.
  o.detail = Redact(o.detail, e.target.Secrets());
  o.request_id = Redact(o.request_id, e.target.Secrets());
  e.last_http_status = o.http_status;
  e.history.push_back({now, o.http_status, o.accepted ? std::string() : o.detail, o.request_id});
  if (e.history.size() > kMaxAttemptLog) e.history.erase(e.history.begin());

  if (o.accepted) {
    if (hooks_.test_point) hooks_.test_point("accepted");
    e.state = EntryState::kSent;
    e.finished_ns = now;
    e.request_id = o.request_id;
    e.last_error.clear();
    Result<std::vector<int64_t>> ok = outbox_->Commit({e}, {});
    if (!ok.ok()) {
      // Delivered but not recorded: sending again later is the safe side (same dedup key).
      log_->error("outbox_write_failed id={} error=\"{}\"", e.id, ok.error().message);
      it->second.next_attempt_ns = now + kStoreRetryNs;
      return;
    }
    pending_.erase(it);
    Emit(RecordFor(e, DeliveryRecord::Kind::kSent, now), &e.target);
    return;
  }

  e.last_error = o.detail;
  if (o.permanent) {
    e.permanent = true;
    FinishFailed(std::move(e), o.detail, /*expired=*/false, now);
    return;
  }
  if (IsTrigger(e) && e.resolved) {
    // Its alert resolved while this attempt was out; the queued resolve follows, no retry.
    e.state = EntryState::kCancelled;
    e.finished_ns = now;
    if (outbox_->Commit({e}, {}).ok()) {
      pending_.erase(e.id);
      Emit(RecordFor(e, DeliveryRecord::Kind::kCancelled, now), &e.target);
    } else {
      it->second.next_attempt_ns = now + kStoreRetryNs;
    }
    return;
  }
  int64_t next = 0;
  if (o.retry_after) {
    int64_t wait = Ns(std::min(*o.retry_after, options_.max_retry_after));
    // The service asked the whole integration to slow down, not just this page.
    ts.blocked_until_ns = std::max(ts.blocked_until_ns, now + wait);
    if (now + wait > e.deadline_ns) {
      std::string why =
          fmt::format("{}; Retry-After {} is past the maximum age", o.detail, Duration(wait));
      FinishFailed(std::move(e), why, /*expired=*/true, now);
      return;
    }
    next = now + wait;
  } else {
    if (now >= e.deadline_ns) {
      // (The message is built before `e` is moved: argument order is unspecified.)
      std::string why = fmt::format("still failing after {} attempts at the maximum age ({}): {}",
                                    e.attempts, Duration(e.deadline_ns - e.created_ns), o.detail);
      FinishFailed(std::move(e), why, /*expired=*/true, now);
      return;
    }
    next = std::min(now + Ns(Backoff(e.attempts)), e.deadline_ns);
  }
  e.next_attempt_ns = next;
  Result<std::vector<int64_t>> ok = outbox_->Commit({e}, {});
  if (!ok.ok()) log_->error("outbox_write_failed id={} error=\"{}\"", e.id, ok.error().message);
  it->second = e;  // in memory either way: the retry time only needs to survive if it can
  DeliveryRecord r = RecordFor(e, DeliveryRecord::Kind::kRetry, now);
  r.detail = fmt::format("{}; next attempt in {}", o.detail, Duration(next - now));
  Emit(std::move(r), &e.target);
}

std::optional<int64_t> Delivery::Poll() {
  std::vector<Completion> completions;
  {
    std::lock_guard lock(inbox_->mu);
    completions.swap(inbox_->completions);
    inbox_->work = false;
  }
  struct Start {
    int64_t id;
    Page page;
    PagerTarget target;
    Pager* pager;
  };
  std::vector<Start> starts;
  std::optional<int64_t> next_due;
  auto due = [&](int64_t t) { next_due = next_due ? std::min(*next_due, t) : t; };
  {
    std::lock_guard lock(mu_);
    const int64_t now = clock_->NowNs();
    for (const Completion& c : completions) Apply(c, now);

    if (now - last_prune_ns_ >= kPruneEveryNs) {
      last_prune_ns_ = now;
      Result<size_t> pruned =
          outbox_->Prune(now - Ns(options_.retention), now - Ns(options_.open_retention));
      if (!pruned.ok()) {
        log_->warn("outbox_prune_failed error=\"{}\"", pruned.error().message);
      } else if (*pruned > 0) {
        log_->info("outbox_pruned entries={}", *pruned);
      }
    }

    std::set<std::pair<std::string, std::string>> ordered;  // (target key, dedup key) seen
    std::vector<int64_t> expired;
    std::vector<OutboxEntry> attempts;
    size_t in_flight = in_flight_.size();
    for (auto& [id, e] : pending_) {
      // Only the oldest pending entry per dedup key and target may go: a resolve never
      // overtakes its trigger, a new trigger never overtakes the last resolve.
      if (!ordered.emplace(e.target_key, e.page.dedup_key).second) continue;
      if (in_flight_.count(id)) continue;
      TargetState& ts = targets_[e.target_key];
      int64_t ready = e.next_attempt_ns;
      bool startable = e.next_attempt_ns <= now;
      if (startable && ts.blocked_until_ns > now) {
        startable = false;
        ready = ts.blocked_until_ns;
      }
      if (startable && (in_flight >= options_.max_in_flight ||
                        ts.in_flight >= options_.max_in_flight_per_target)) {
        startable = false;  // a completion wakes the driver
        ready = INT64_MAX;
      }
      int64_t token_ready = 0;
      if (startable && !TakeToken(e.target.kind, ts, now, &token_ready)) {
        startable = false;
        ready = token_ready;
      }
      if (!startable) {
        // Held back (rate limit, Retry-After, ordering) past its deadline: it will not make it.
        // An entry merely waiting for its retry time is not expired here: retry times never
        // pass the deadline, so it gets its last attempt.
        if (now >= e.deadline_ns && e.next_attempt_ns <= now) {
          expired.push_back(id);
          continue;
        }
        if (ready != INT64_MAX) due(ready);
        due(std::max(e.deadline_ns, now));
        continue;
      }
      e.attempts += 1;
      attempts.push_back(e);
      ++ts.in_flight;
      ++in_flight;
    }
    for (int64_t id : expired) {
      auto it = pending_.find(id);
      if (it == pending_.end()) continue;
      const OutboxEntry& e = it->second;
      std::string why = fmt::format("not sent within the maximum age ({}){}",
                                    Duration(e.deadline_ns - e.created_ns),
                                    e.last_error.empty() ? "" : ": " + e.last_error);
      FinishFailed(e, why, /*expired=*/true, now);
    }
    if (!attempts.empty()) {
      // The attempt is on disk before the request leaves: a resolve must know that a trigger
      // may have reached someone even if we crash right after sending it.
      Result<std::vector<int64_t>> ok = outbox_->Commit(attempts, {});
      if (!ok.ok()) {
        log_->error("outbox_write_failed attempts={} error=\"{}\"", attempts.size(),
                    ok.error().message);
        for (const OutboxEntry& a : attempts) {
          auto it = pending_.find(a.id);
          if (it != pending_.end()) it->second.attempts -= 1;
          targets_[a.target_key].in_flight -= 1;
        }
        due(now + kStoreRetryNs);
        return next_due;
      }
      for (const OutboxEntry& a : attempts) {
        in_flight_.insert(a.id);
        auto p = pagers_.find(a.target.kind);
        starts.push_back({a.id, a.page, a.target, p == pagers_.end() ? nullptr : p->second});
      }
    }
  }
  if (!starts.empty() && hooks_.test_point) hooks_.test_point("attempt_persisted");
  for (Start& s : starts) {
    auto done = [inbox = inbox_, id = s.id](SendOutcome outcome) {
      {
        std::lock_guard lock(inbox->mu);
        inbox->completions.push_back({id, std::move(outcome)});
        inbox->work = true;
      }
      inbox->cv.notify_all();
    };
    if (s.pager == nullptr) {
      SendOutcome o;
      o.permanent = true;
      o.detail = fmt::format("no pager of kind \"{}\" is configured", s.target.kind);
      done(std::move(o));
      continue;
    }
    s.pager->Send(s.page, s.target, done);
  }
  {
    std::lock_guard lock(inbox_->mu);
    if (!inbox_->completions.empty()) due(clock_->NowNs());
  }
  return next_due;
}

bool Delivery::WaitForWork(std::chrono::milliseconds max_wait) {
  std::unique_lock lock(inbox_->mu);
  inbox_->cv.wait_for(lock, max_wait, [&] { return inbox_->work; });
  return inbox_->work;
}

void Delivery::Wake() {
  {
    std::lock_guard lock(inbox_->mu);
    inbox_->work = true;
  }
  inbox_->cv.notify_all();
}

size_t Delivery::pending() const {
  std::lock_guard lock(mu_);
  return pending_.size();
}

size_t Delivery::in_flight() const {
  std::lock_guard lock(mu_);
  return in_flight_.size();
}

DeliveryRunner::DeliveryRunner(Delivery* delivery, const Clock* clock)
    : delivery_(delivery), clock_(clock) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "tp-delivery");
    while (!stop_.load()) {
      std::optional<int64_t> next = delivery_->Poll();
      // Wake at the next due time, on new work, or at least once a second (a safety net for a
      // clock step; Poll is cheap when nothing is due).
      int64_t wait_ns = 1'000'000'000;
      if (next) wait_ns = std::clamp<int64_t>(*next - clock_->NowNs(), 0, wait_ns);
      if (wait_ns > 0 && !stop_.load()) {
        delivery_->WaitForWork(std::chrono::milliseconds((wait_ns + kNsPerMs - 1) / kNsPerMs));
      }
    }
  });
}

DeliveryRunner::~DeliveryRunner() { Stop(); }

void DeliveryRunner::Stop() {
  stop_.store(true);
  delivery_->Wake();
  if (thread_.joinable()) thread_.join();
}

}  // namespace tracepager::integrations::delivery
