#include "routing/walk.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <map>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "routing/span_tree.h"
#include "routing/walk_internal.h"

namespace tracepager::routing {

const char* SymptomName(Symptom symptom) {
  switch (symptom) {
    case Symptom::kErrors:
      return "errors";
    case Symptom::kLatency:
      return "latency";
  }
  return "errors";
}

const char* RefinementName(Refinement refinement) {
  switch (refinement) {
    case Refinement::kTimeoutMasking:
      return "timeout_masking";
    case Refinement::kSiblingFallout:
      return "sibling_fallout";
    case Refinement::kRetries:
      return "retries";
    case Refinement::kAsync:
      return "async";
    case Refinement::kUninstrumented:
      return "uninstrumented";
  }
  return "timeout_masking";
}

const char* CulpritRoleName(CulpritRole role) {
  return role == CulpritRole::kPrimary ? "primary" : "fallout";
}

WalkOptions WalkOptions::Naive() {
  WalkOptions o;
  o.timeout_masking = false;
  o.sibling_fallout = false;
  o.retries = false;
  o.async = false;
  o.uninstrumented = false;
  return o;
}

namespace walk_internal {

PathStep MakeStep(const SpanTree& tree, int32_t index) {
  const Span& s = tree.span(index);
  PathStep step;
  step.span_id = s.span_id;
  step.service = s.service;
  step.operation = s.operation;
  step.kind = s.kind;
  step.failed = s.failed;
  if (s.failed) step.reason = s.failure_reason.empty() ? "error" : s.failure_reason;
  step.start_offset_ns = s.start_ns - tree.min_start_ns();
  step.duration_ns = s.duration_ns;
  return step;
}

std::string Offset(const SpanTree& tree, int64_t t) {
  return "+" + FormatDuration(t - tree.min_start_ns());
}

std::string Reason(const Span& s) {
  return s.failure_reason.empty() ? std::string("error") : s.failure_reason;
}

void BoundPath(std::vector<PathStep>& path, size_t max_steps) {
  if (path.size() <= max_steps || max_steps < 2) return;
  // Keep both ends: the alerting service's side and the culprit's side are what a person
  // reads; the middle of a pathological chain is noise.
  const size_t head = max_steps / 2;
  const size_t tail = max_steps - head;
  path.erase(path.begin() + static_cast<std::ptrdiff_t>(head),
             path.end() - static_cast<std::ptrdiff_t>(tail));
}

}  // namespace walk_internal

namespace {

using walk_internal::MakeStep;
using walk_internal::Offset;
using walk_internal::Reason;

constexpr size_t kRefinementCount = 5;
constexpr size_t kMaxNotesPerRefinement = 5;
// Paths are O(depth) each; with many culprits in a deep trace that would be quadratic. Each
// path keeps at most this many steps (both ends), and all paths of a verdict share a budget.
constexpr size_t kMaxPathSteps = 512;
constexpr size_t kPathBudget = 50'000;
constexpr size_t kMinPathSteps = 8;

bool Erroring(const Span& s) { return s.failed && !s.caller_fault; }

bool ContainsCi(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return false;
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    size_t j = 0;
    while (j < needle.size() && std::tolower(static_cast<unsigned char>(hay[i + j])) == needle[j]) {
      ++j;
    }
    if (j == needle.size()) return true;
  }
  return false;
}

// Whether a failed call reads as "gave up waiting" rather than "got an error back".
bool LooksLikeTimeout(const Span& s) {
  if (s.grpc_code && *s.grpc_code == 4) return true;  // DEADLINE_EXCEEDED
  if (s.http_status && (*s.http_status == 504 || *s.http_status == 408)) return true;
  auto says_timeout = [](std::string_view text) {
    return ContainsCi(text, "timeout") || ContainsCi(text, "timed out") ||
           ContainsCi(text, "deadline") || ContainsCi(text, "time out");
  };
  if (says_timeout(s.failure_reason) || says_timeout(s.status_message) ||
      says_timeout(s.error_tag_value)) {
    return true;
  }
  for (const ExceptionEvent& e : s.exceptions) {
    if (says_timeout(e.type) || says_timeout(e.message)) return true;
  }
  return false;
}

std::string Percent(int64_t part, int64_t whole) {
  if (whole <= 0) return "?%";
  return std::to_string(static_cast<long long>(
             std::llround(100.0 * static_cast<double>(part) / static_cast<double>(whole)))) +
         "%";
}

// What the walk reads of each span, packed: spans are ~500 bytes and a walk over a large trace
// with scattered parents is bound by cache misses, so the hot loop reads only this.
struct Node {
  int64_t start = 0;
  int64_t end = 0;
  int64_t duration = 0;
  int32_t service = 0;  // interned service name
  bool failed = false;
  bool erroring = false;  // failed and not the caller's fault
  bool call = false;      // IsCallSpan
  bool has_children = false;
  // Erroring with no erroring child: a span that may have given up waiting (timeout masking).
  // A span with a failing child has a failure to point at and is left to the plain rule.
  bool gave_up = false;
};

struct Facts {
  std::vector<Node> nodes;
};

Facts BuildFacts(const SpanTree& tree) {
  Facts f;
  f.nodes.resize(tree.size());
  std::unordered_map<std::string_view, int32_t> ids;
  for (size_t i = 0; i < tree.size(); ++i) {
    const auto idx = static_cast<int32_t>(i);
    const Span& s = tree.span(idx);
    Node& n = f.nodes[i];
    n.start = s.start_ns;
    n.end = s.end_ns();
    n.duration = s.duration_ns;
    n.service = ids.try_emplace(s.service, static_cast<int32_t>(ids.size())).first->second;
    n.failed = s.failed;
    n.erroring = Erroring(s);
    n.call = IsCallSpan(s);
    n.has_children = !tree.children(idx).empty();
  }
  for (size_t i = 0; i < f.nodes.size(); ++i) f.nodes[i].gave_up = f.nodes[i].erroring;
  for (size_t i = 0; i < f.nodes.size(); ++i) {
    const int32_t p = tree.parent(static_cast<int32_t>(i));
    if (p >= 0 && f.nodes[i].erroring) f.nodes[static_cast<size_t>(p)].gave_up = false;
  }
  return f;
}

enum class DepKind { kFailed, kSlow, kLeafCall };

// The first-failing call of a group, named lazily for fallout explanations.
struct FirstCall {
  int32_t callee = -1;
  int32_t call = -1;
  int32_t caller = -1;
};

struct Dep {
  int32_t caller = -1;   // span of the current region that made the call
  int32_t callee = -1;   // entry span of the callee's region; -1 for a leaf call
  int32_t call = -1;     // the span standing for the call among its siblings
  int32_t group = -1;    // parent of `call`: the span whose calls are compared
  int32_t trigger = -1;  // parent side of the last asynchronous edge on the way, or -1
  DepKind kind = DepKind::kFailed;
  CulpritRole role = CulpritRole::kPrimary;
  bool dropped = false;
  FirstCall fallout_of;  // for fallout: the group's first failing call
};

struct Region {
  int32_t entry = -1;
  int32_t from = -1;    // region it was reached from; -1 for a starting region
  int32_t caller = -1;  // span in `from` that made the call
  CulpritRole role = CulpritRole::kPrimary;
  bool via_timeout = false;
  FirstCall fallout_of;  // fallout regions: the call that failed first (inherited downwards)
};

// A culprit before its path and explanation are written out.
struct Found {
  int32_t region = -1;
  int32_t span = -1;         // the culprit's failing span (for virtual: the call span)
  std::string virtual_name;  // non-empty: a virtual culprit named by `span`
  const char* virtual_source = "";
  bool virtual_by_timeout = false;
  bool naive_leaf_stop = false;  // the plain rule stopped at the caller of a leaf call
  CulpritRole role = CulpritRole::kPrimary;
  FirstCall fallout_of;
};

struct RunResult {
  std::vector<Found> found;
  std::vector<Region> regions;
  std::array<std::vector<std::string>, kRefinementCount> events;
  std::array<size_t, kRefinementCount> event_count{};
};

// The callee a call reaches: the service of its first span of another service below it, else
// the peer it names.
std::string CalleeOf(const SpanTree& tree, int32_t call, const std::string& caller_service) {
  const Span& cs = tree.span(call);
  if (cs.service != caller_service) return cs.service;
  for (int32_t c : tree.children(call)) {
    if (tree.span(c).service != caller_service) return tree.span(c).service;
  }
  return VirtualPeerName(cs).name;
}

std::string FirstCallName(const SpanTree& tree, const FirstCall& f) {
  if (f.callee >= 0) return tree.span(f.callee).service;
  if (f.call < 0) return "";
  const std::string& caller = tree.span(f.caller).service;
  std::string name = CalleeOf(tree, f.call, caller);
  return name.empty() ? caller : name;
}

class Walker {
 public:
  Walker(const SpanTree& tree, const Facts& facts, const WalkOptions& options)
      : tree_(tree),
        nodes_(facts.nodes),
        opt_(options),
        waiting_(tree.size(), 0),
        trigger_(tree.size(), -1),
        region_of_(tree.size(), -1) {}

  RunResult Run(const std::vector<int32_t>& starts) {
    for (int32_t s : starts) {
      Region start;
      start.entry = s;
      res_.regions.push_back(start);
    }
    // Regions are appended while walking; each is explored once (regions never overlap).
    for (size_t r = 0; r < res_.regions.size(); ++r) Explore(static_cast<int32_t>(r));
    return std::move(res_);
  }

 private:
  const Span& S(int32_t i) const { return tree_.span(i); }
  const Node& N(int32_t i) const { return nodes_[static_cast<size_t>(i)]; }
  bool Slow(const Node& child, const Node& parent) const {
    return parent.duration > 0 && static_cast<double>(child.duration) >=
                                      opt_.timeout_fraction * static_cast<double>(parent.duration);
  }

  // Notes are built only while under the cap: a wide trace can fire a refinement thousands of
  // times, and formatting each would dominate the walk.
  template <typename MakeText>
  void Event(Refinement r, MakeText&& make_text) {
    const auto k = static_cast<size_t>(r);
    if (++res_.event_count[k] <= kMaxNotesPerRefinement) {
      res_.events[k].push_back(std::string(RefinementName(r)) + ": " + make_text());
    }
  }

  void Explore(int32_t r) {
    const Region region = res_.regions[static_cast<size_t>(r)];
    const int32_t entry = region.entry;
    const int32_t service = N(entry).service;
    deps_.clear();
    int32_t first_failed = -1;

    waiting_[static_cast<size_t>(entry)] = N(entry).gave_up || region.via_timeout;
    trigger_[static_cast<size_t>(entry)] = -1;
    stack_.assign(1, entry);
    while (!stack_.empty()) {
      const int32_t s = stack_.back();
      stack_.pop_back();
      region_of_[static_cast<size_t>(s)] = r;
      const Node& ss = N(s);
      if (ss.erroring && (first_failed < 0 || ss.start < N(first_failed).start)) first_failed = s;
      bool nothing_below = true;
      for (int32_t c : tree_.children(s)) {
        const Node& cs = N(c);
        if (cs.service == service) {
          if (cs.has_children) nothing_below = false;
          waiting_[static_cast<size_t>(c)] =
              cs.gave_up || (waiting_[static_cast<size_t>(s)] && !cs.failed && Slow(cs, ss));
          trigger_[static_cast<size_t>(c)] =
              tree_.async_edge(c) ? s : trigger_[static_cast<size_t>(s)];
          stack_.push_back(c);
          continue;
        }
        nothing_below = false;
        Dep d;
        d.role = region.role;
        d.caller = s;
        d.callee = c;
        d.trigger = tree_.async_edge(c) ? s : trigger_[static_cast<size_t>(s)];
        if (cs.erroring) {
          d.kind = DepKind::kFailed;
        } else if (opt_.timeout_masking && waiting_[static_cast<size_t>(s)] && !cs.failed &&
                   Slow(cs, ss)) {
          d.kind = DepKind::kSlow;
        } else {
          continue;
        }
        if (ss.call && s != entry) {
          d.call = s;
          d.group = tree_.parent(s);
        } else {
          d.call = c;
          d.group = s;
        }
        deps_.push_back(d);
      }
      if (nothing_below && ss.erroring && ss.call) {
        Dep d;
        d.role = region.role;
        d.caller = s;
        d.kind = DepKind::kLeafCall;
        d.call = s;
        d.group = tree_.parent(s);
        d.trigger = trigger_[static_cast<size_t>(s)];
        deps_.push_back(d);
      }
    }

    if (opt_.async) DropAsync();
    if (opt_.retries) DropRetries(r);
    if (opt_.sibling_fallout) MarkFallout();

    bool any = false;
    for (const Dep& d : deps_) {
      if (d.dropped) continue;
      any = true;
      if (d.kind == DepKind::kLeafCall) {
        AddLeafCall(r, d);
        continue;
      }
      if (d.kind == DepKind::kSlow) {
        Event(Refinement::kTimeoutMasking, [&] {
          const Span& cl = S(d.caller);
          const Span& ce = S(d.callee);
          return cl.service + " " + cl.operation + " errored after " +
                 FormatDuration(cl.duration_ns) + " while its call to " + ce.service + " (" +
                 ce.operation + ") ran " + FormatDuration(ce.duration_ns) + " (" +
                 Percent(ce.duration_ns, cl.duration_ns) +
                 ") without failing: it gave up waiting, so the walk continues into " + ce.service;
        });
      }
      Region next;
      next.entry = d.callee;
      next.from = r;
      next.caller = d.caller;
      next.role = d.role;
      next.via_timeout = d.kind == DepKind::kSlow;
      next.fallout_of = d.fallout_of.caller >= 0 ? d.fallout_of : region.fallout_of;
      res_.regions.push_back(next);
    }
    // A starting region whose dependencies show no errors is "nothing failed below", not a
    // culprit: Route turns that into a fallback, which pages the same owner but says so.
    if (!any && region.from >= 0) {
      Found f;
      f.region = r;
      f.span = first_failed >= 0 ? first_failed : entry;
      f.role = region.role;
      f.fallout_of = region.fallout_of;
      res_.found.push_back(std::move(f));
    }
  }

  void AddLeafCall(int32_t r, const Dep& d) {
    const Span& call = S(d.caller);
    const bool timeout = opt_.timeout_masking && LooksLikeTimeout(call);
    PeerName peer = VirtualPeerName(call);
    Found f;
    f.region = r;
    f.span = d.caller;
    f.role = d.role;
    f.fallout_of =
        d.fallout_of.caller >= 0 ? d.fallout_of : res_.regions[static_cast<size_t>(r)].fallout_of;
    if ((opt_.uninstrumented || timeout) && !peer.name.empty()) {
      auto what = [&] {
        return call.service + "'s call " + call.operation + " failed (" + Reason(call) +
               ") with nothing below it";
      };
      if (opt_.uninstrumented) {
        Event(Refinement::kUninstrumented, [&] {
          return what() + "; blaming the peer it names, " + peer.name + " (from " + peer.source +
                 ")";
        });
      }
      if (timeout) {
        Event(Refinement::kTimeoutMasking, [&] {
          return what() + " and reads as a timeout: " + call.service + " gave up waiting on " +
                 peer.name;
        });
      }
      f.virtual_name = std::move(peer.name);
      f.virtual_source = peer.source;
      f.virtual_by_timeout = timeout;
    } else {
      f.naive_leaf_stop = true;
    }
    res_.found.push_back(std::move(f));
  }

  void DropAsync() {
    for (Dep& d : deps_) {
      if (d.trigger < 0) continue;
      const int32_t failing = d.callee >= 0 ? d.callee : d.caller;
      if (N(failing).end <= N(d.trigger).end) continue;
      d.dropped = true;
      Event(Refinement::kAsync, [&] {
        const Span& fs = S(failing);
        const Span& trig = S(d.trigger);
        return fs.service + " " + fs.operation + " ended (" +
               (d.kind == DepKind::kSlow ? "slow" : Reason(fs)) + ") at " +
               Offset(tree_, fs.end_ns()) + ", after " + trig.service + " " + trig.operation +
               ", which triggered it asynchronously, had finished at " +
               Offset(tree_, trig.end_ns()) + "; not a cause";
      });
    }
  }

  bool CallSucceeded(int32_t call, int32_t caller_service) const {
    if (N(call).failed) return false;
    for (int32_t c : tree_.children(call)) {
      if (N(c).service != caller_service && N(c).failed) return false;
    }
    return true;
  }

  void DropRetries(int32_t r) {
    // Per group with a candidate: the starts of its successful calls per (callee, operation),
    // sorted. Built once per group, so a wide fan-out stays linear (plus the sort).
    std::unordered_map<int32_t, std::unordered_map<std::string, std::vector<int64_t>>> ok_starts;
    for (Dep& d : deps_) {
      // A slow dependency's call did not fail, so it is no failed attempt to be retried (and
      // it would otherwise count as its own successful retry).
      if (d.dropped || d.kind == DepKind::kSlow) continue;
      if (d.group < 0 || region_of_[static_cast<size_t>(d.group)] != r) continue;
      const int32_t service_id = N(d.caller).service;
      const std::string& service = S(d.caller).service;
      auto [it, inserted] = ok_starts.try_emplace(d.group);
      if (inserted) {
        for (int32_t k : tree_.children(d.group)) {
          const Node& kn = N(k);
          if (kn.service == service_id && !kn.call) continue;
          if (!CallSucceeded(k, service_id)) continue;
          it->second[CalleeOf(tree_, k, service) + '\0' + S(k).operation].push_back(kn.start);
        }
        for (auto& [key, starts] : it->second) std::sort(starts.begin(), starts.end());
      }
      if (it->second.empty()) continue;
      const Span& call = S(d.call);
      const std::string callee = CalleeOf(tree_, d.call, service);
      auto hit = it->second.find(callee + '\0' + call.operation);
      if (hit == it->second.end()) continue;
      // The first success at or after the failed attempt started is its retry.
      auto retry = std::lower_bound(hit->second.begin(), hit->second.end(), call.start_ns);
      if (retry == hit->second.end()) continue;
      d.dropped = true;
      Event(Refinement::kRetries, [&] {
        return service + "'s call " + call.operation + " to " +
               (callee.empty() ? std::string("its peer") : callee) + " failed at " +
               Offset(tree_, call.start_ns) + " and succeeded on a retry at " +
               Offset(tree_, *retry) + "; not a cause";
      });
    }
  }

  void MarkFallout() {
    // Per group, the earliest call to start (first found on a tie) keeps the region's role.
    first_.clear();
    for (size_t i = 0; i < deps_.size(); ++i) {
      const Dep& d = deps_[i];
      if (d.dropped) continue;
      auto [it, inserted] = first_.try_emplace(d.group, i);
      if (!inserted && N(d.call).start < N(deps_[it->second].call).start) it->second = i;
    }
    if (first_.size() == deps_.size()) return;  // no group has two candidates
    for (Dep& d : deps_) {
      if (d.dropped) continue;
      const Dep& p = deps_[first_[d.group]];
      if (d.call == p.call) continue;
      d.role = CulpritRole::kFallout;
      d.fallout_of = {p.callee, p.call, p.caller};
      Event(Refinement::kSiblingFallout, [&] {
        const Span& fc = S(d.call);
        std::string callee = FirstCallName(tree_, {d.callee, d.call, d.caller});
        return callee + " (" + fc.operation + ", started " + Offset(tree_, fc.start_ns) +
               ") failed after " + FirstCallName(tree_, d.fallout_of) + " (started " +
               Offset(tree_, S(p.call).start_ns) + ") under the same " +
               (d.group >= 0 ? S(d.group).service + " span " + S(d.group).operation
                             : std::string("root")) +
               "; it is fallout";
      });
    }
  }

  const SpanTree& tree_;
  const std::vector<Node>& nodes_;
  const WalkOptions& opt_;
  std::vector<uint8_t> waiting_;  // span errored, or is waiting on a slow child (per span)
  std::vector<int32_t> trigger_;  // async trigger on the way from the region entry (per span)
  std::vector<int32_t> region_of_;
  std::vector<int32_t> stack_;
  std::vector<Dep> deps_;
  std::unordered_map<int32_t, size_t> first_;
  RunResult res_;
};

// The alerting service's topmost spans: its spans with no ancestor of the same service.
std::vector<int32_t> TopmostSpans(const SpanTree& tree, std::string_view service) {
  std::vector<int32_t> out;
  std::vector<int32_t> stack(tree.roots().rbegin(), tree.roots().rend());
  while (!stack.empty()) {
    const int32_t s = stack.back();
    stack.pop_back();
    if (tree.span(s).service == service) {
      out.push_back(s);
      continue;
    }
    const auto kids = tree.children(s);
    for (auto it = kids.rbegin(); it != kids.rend(); ++it) stack.push_back(*it);
  }
  return out;
}

std::string RegionWhy(const SpanTree& tree, const RunResult& run, const Found& f) {
  const Region& reg = run.regions[static_cast<size_t>(f.region)];
  const Span& entry = tree.span(reg.entry);
  const Span& fs = tree.span(f.span);
  const std::string& svc = entry.service;
  std::string why;
  if (!f.virtual_name.empty()) {
    why = f.virtual_name + " is not instrumented (named by " + f.virtual_source + " on " + svc +
          "'s call " + fs.operation + "): the call " +
          (f.virtual_by_timeout ? "timed out waiting for it" : "failed") + " (" + Reason(fs) +
          ") at " + Offset(tree, fs.start_ns) + " with nothing below it";
  } else if (f.naive_leaf_stop) {
    why = svc + "'s call " + fs.operation + " failed (" + Reason(fs) + ") at " +
          Offset(tree, fs.start_ns) + " with nothing instrumented below it" +
          (VirtualPeerName(fs).name.empty() ? " and names no peer" : "") +
          ", so the walk stops at " + svc;
  } else {
    if (Erroring(fs)) {
      why = svc + " failed in " + fs.operation + " (" + Reason(fs) + ") at " +
            Offset(tree, fs.start_ns);
    } else {
      why = svc + " " + entry.operation + " did not fail but ran " +
            FormatDuration(entry.duration_ns);
    }
    if (reg.via_timeout && reg.caller >= 0) {
      const Span& cl = tree.span(reg.caller);
      why += "; " + cl.service + " gave up waiting on it (" + cl.operation + " ran " +
             FormatDuration(cl.duration_ns) + ", " + svc + " " +
             Percent(entry.duration_ns, cl.duration_ns) + " of that)";
    }
    why += ", and none of its dependencies show errors";
  }
  if (f.role == CulpritRole::kFallout) {
    const std::string first = FirstCallName(tree, f.fallout_of);
    why += "; fallout: " + (first.empty() ? std::string("another call") : first) +
           " under the same parent span failed first";
  }
  return why;
}

std::vector<TraceCulprit> Materialize(const SpanTree& tree, const RunResult& run) {
  // Distinct by (service, is_virtual): primary over fallout, then the earliest failure.
  struct Pick {
    size_t found;
    std::string service;
    bool is_virtual;
  };
  std::vector<Pick> picks;
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < run.found.size(); ++i) {
    const Found& f = run.found[i];
    const bool is_virtual = !f.virtual_name.empty();
    std::string service = is_virtual
                              ? f.virtual_name
                              : tree.span(run.regions[static_cast<size_t>(f.region)].entry).service;
    std::string key = service + (is_virtual ? "\x01v" : "\x01s");
    auto [it, inserted] = index.try_emplace(std::move(key), picks.size());
    if (inserted) {
      picks.push_back({i, std::move(service), is_virtual});
      continue;
    }
    const Found& old = run.found[picks[it->second].found];
    if (std::make_tuple(f.role, tree.span(f.span).start_ns) <
        std::make_tuple(old.role, tree.span(old.span).start_ns)) {
      picks[it->second].found = i;
    }
  }
  std::stable_sort(picks.begin(), picks.end(), [&](const Pick& a, const Pick& b) {
    const Found& fa = run.found[a.found];
    const Found& fb = run.found[b.found];
    return std::make_tuple(fa.role, tree.span(fa.span).start_ns, std::string_view(a.service)) <
           std::make_tuple(fb.role, tree.span(fb.span).start_ns, std::string_view(b.service));
  });

  std::vector<TraceCulprit> out;
  out.reserve(picks.size());
  size_t budget = kPathBudget;
  std::vector<int32_t> spans;
  for (const Pick& p : picks) {
    const Found& f = run.found[p.found];
    TraceCulprit c;
    c.service = p.service;
    c.is_virtual = p.is_virtual;
    c.role = f.role;
    c.failure_start_ns = tree.span(f.span).start_ns;
    const Region& reg = run.regions[static_cast<size_t>(f.region)];
    if (c.is_virtual) c.caller = tree.span(reg.entry).service;
    c.why = RegionWhy(tree, run, f);

    // Path, as span indices built backwards from the culprit to the starting region; only the
    // steps kept (both ends of a long path) are written out.
    spans.clear();
    if (f.span != reg.entry) spans.push_back(f.span);
    for (int32_t cur = f.region; cur >= 0;) {
      const Region& rg = run.regions[static_cast<size_t>(cur)];
      spans.push_back(rg.entry);
      if (rg.from >= 0 && rg.caller != run.regions[static_cast<size_t>(rg.from)].entry) {
        spans.push_back(rg.caller);
      }
      cur = rg.from;
    }
    std::reverse(spans.begin(), spans.end());
    const size_t keep = std::max(kMinPathSteps, std::min(kMaxPathSteps, budget));
    std::vector<PathStep>& path = c.path;
    if (spans.size() <= keep) {
      for (int32_t i : spans) path.push_back(MakeStep(tree, i));
    } else {
      const size_t head = keep / 2;
      for (size_t i = 0; i < head; ++i) path.push_back(MakeStep(tree, spans[i]));
      for (size_t i = spans.size() - (keep - head); i < spans.size(); ++i) {
        path.push_back(MakeStep(tree, spans[i]));
      }
    }
    budget -= std::min(budget, path.size());
    out.push_back(std::move(c));
  }
  return out;
}

// What an answer is, for comparing two walks: the distinct (service, is_virtual) culprits with
// their role, primary winning, as Materialize would list them, without building paths.
using Signature = std::vector<std::tuple<std::string, bool, CulpritRole>>;
Signature Sign(const SpanTree& tree, const Facts& facts, const RunResult& run) {
  // Instrumented culprits by interned service id (no string work per culprit region, which
  // matters on wide traces); virtual ones by name.
  std::unordered_map<int32_t, std::pair<int32_t, CulpritRole>> services;  // id -> (span, role)
  std::map<std::string, CulpritRole> virtuals;
  for (const Found& f : run.found) {
    if (!f.virtual_name.empty()) {
      auto [it, inserted] = virtuals.try_emplace(f.virtual_name, f.role);
      if (!inserted) it->second = std::min(it->second, f.role);
      continue;
    }
    const int32_t entry = run.regions[static_cast<size_t>(f.region)].entry;
    auto [it, inserted] = services.try_emplace(facts.nodes[static_cast<size_t>(entry)].service,
                                               std::make_pair(entry, f.role));
    if (!inserted) it->second.second = std::min(it->second.second, f.role);
  }
  Signature s;
  s.reserve(services.size() + virtuals.size());
  for (const auto& [id, v] : services) s.emplace_back(tree.span(v.first).service, false, v.second);
  for (const auto& [name, role] : virtuals) s.emplace_back(name, true, role);
  std::sort(s.begin(), s.end());
  return s;
}

bool& Flag(WalkOptions& o, Refinement r) {
  switch (r) {
    case Refinement::kTimeoutMasking:
      return o.timeout_masking;
    case Refinement::kSiblingFallout:
      return o.sibling_fallout;
    case Refinement::kRetries:
      return o.retries;
    case Refinement::kAsync:
      return o.async;
    case Refinement::kUninstrumented:
      return o.uninstrumented;
  }
  return o.timeout_masking;
}

}  // namespace

namespace walk_internal {

std::string ResolveAlertingService(const SpanTree& tree, std::string_view alerting_service) {
  if (!alerting_service.empty()) return std::string(alerting_service);
  const int32_t root = PrimaryRoot(tree);
  return root < 0 ? std::string() : tree.span(root).service;
}

void AddTreeNotes(const SpanTree& tree, TraceVerdict& v) {
  constexpr size_t kMaxTreeNotes = 10;
  const auto& w = tree.warnings();
  for (size_t i = 0; i < w.size() && i < kMaxTreeNotes; ++i) v.notes.push_back("trace: " + w[i]);
  if (w.size() > kMaxTreeNotes) {
    v.notes.push_back("trace: " + std::to_string(w.size() - kMaxTreeNotes) + " more gaps");
  }
}

std::vector<int32_t> Topmost(const SpanTree& tree, std::string_view service) {
  return TopmostSpans(tree, service);
}

}  // namespace walk_internal

TraceVerdict WalkErrors(const Trace& trace, std::string_view alerting_service,
                        const WalkOptions& options) {
  const SpanTree tree(trace);
  TraceVerdict v;
  v.trace_id = trace.trace_id;
  v.symptom = Symptom::kErrors;
  v.alerting_service = walk_internal::ResolveAlertingService(tree, alerting_service);
  const std::vector<int32_t> starts = TopmostSpans(tree, v.alerting_service);
  v.alerting_service_found = !starts.empty();
  for (int32_t s : starts) {
    v.alerting_duration_ns = std::max(v.alerting_duration_ns, tree.span(s).duration_ns);
  }
  walk_internal::AddTreeNotes(tree, v);
  if (starts.empty()) {
    v.notes.push_back(trace.spans.empty() ? "the trace has no spans"
                                          : "the alerting service " + v.alerting_service +
                                                " has no spans in this trace");
    return v;
  }

  const Facts facts = BuildFacts(tree);
  RunResult refined = Walker(tree, facts, options).Run(starts);
  RunResult naive = Walker(tree, facts, WalkOptions::Naive()).Run(starts);
  v.culprits = Materialize(tree, refined);
  v.naive = Materialize(tree, naive);

  const Signature refined_sig = Sign(tree, facts, refined);
  if (refined_sig == Sign(tree, facts, naive)) return v;
  std::vector<Refinement> acted;
  for (size_t k = 0; k < kRefinementCount; ++k) {
    if (refined.event_count[k] > 0) acted.push_back(static_cast<Refinement>(k));
  }
  // Only refinements that acted can have changed anything. With one, it did; with several,
  // re-walk without each to see which did (at most five extra linear walks, only on traces
  // where the answers differ).
  if (acted.size() > 1) {
    for (Refinement r : acted) {
      WalkOptions without = options;
      Flag(without, r) = false;
      if (Sign(tree, facts, Walker(tree, facts, without).Run(starts)) != refined_sig) {
        v.changed_by.push_back(r);
      }
    }
  }
  if (v.changed_by.empty()) v.changed_by = acted;
  for (Refinement r : v.changed_by) {
    const auto k = static_cast<size_t>(r);
    for (const std::string& e : refined.events[k]) v.notes.push_back(e);
    if (refined.event_count[k] > kMaxNotesPerRefinement) {
      v.notes.push_back(std::string(RefinementName(r)) + ": " +
                        std::to_string(refined.event_count[k] - kMaxNotesPerRefinement) +
                        " more like these");
    }
  }
  return v;
}

}  // namespace tracepager::routing
