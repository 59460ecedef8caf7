#include "routing/deps.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <utility>

#include "routing/span_tree.h"

namespace tracepager::routing {
namespace {

struct EdgeAcc {
  uint64_t calls = 0;
  uint64_t errors = 0;
  uint64_t async_calls = 0;
  std::vector<int64_t> durations;
};

bool FailedForCaller(const Span& s) { return s.failed && !s.caller_fault; }

// Nearest-rank percentile of sorted `v` (non-empty).
int64_t Percentile(const std::vector<int64_t>& v, double p) {
  const auto rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::min(v.size(), std::max<size_t>(rank, 1)) - 1];
}

class GraphBuilder {
 public:
  void Add(const Trace& trace) {
    const SpanTree tree(trace);
    for (int32_t i = 0; i < static_cast<int32_t>(tree.size()); ++i) {
      const Span& s = tree.span(i);
      services_.insert(s.service);
      if (IsCallSpan(s)) {
        AddCallSpan(tree, i);
        continue;
      }
      // Children in another service under a non-call span: the call itself was not recorded.
      for (int32_t c : tree.children(i)) {
        const Span& child = tree.span(c);
        if (child.service == s.service) continue;
        Record(s.service, child.service, child.duration_ns, FailedForCaller(child),
               tree.async_edge(c));
      }
    }
  }

  DependencyGraph Build(size_t traces) {
    DependencyGraph g;
    g.traces = traces;
    std::map<std::string, DepNode> nodes;
    auto node = [&](const std::string& name) -> DepNode& {
      DepNode& n = nodes[name];
      n.name = name;
      n.is_virtual = services_.count(name) == 0;
      return n;
    };
    for (const std::string& s : services_) node(s);
    for (auto& [key, acc] : edges_) {
      DepEdge e;
      e.caller = key.first;
      e.callee = key.second;
      e.calls = acc.calls;
      e.errors = acc.errors;
      e.async_calls = acc.async_calls;
      std::sort(acc.durations.begin(), acc.durations.end());
      e.p50_ns = Percentile(acc.durations, 0.50);
      e.p99_ns = Percentile(acc.durations, 0.99);
      node(e.caller).depends_on.push_back(e.callee);
      node(e.callee).callers.push_back(e.caller);
      g.edges.push_back(std::move(e));
    }
    // Transitive closure by a breadth-first search from each node; iterative, so a long call
    // chain cannot overflow the stack, and `seen` makes cycles terminate.
    for (auto& [name, n] : nodes) {
      std::set<std::string> seen;
      std::vector<const std::string*> queue;
      for (const std::string& d : n.depends_on) {
        if (seen.insert(d).second) queue.push_back(&d);
      }
      for (size_t qi = 0; qi < queue.size(); ++qi) {
        const DepNode& m = nodes.at(*queue[qi]);
        for (const std::string& d : m.depends_on) {
          if (seen.insert(d).second) queue.push_back(&d);
        }
      }
      seen.erase(name);
      n.transitive.assign(seen.begin(), seen.end());
    }
    for (auto& [name, n] : nodes) {
      std::sort(n.depends_on.begin(), n.depends_on.end());
      std::sort(n.callers.begin(), n.callers.end());
      g.nodes.push_back(std::move(n));
    }
    return g;
  }

 private:
  void AddCallSpan(const SpanTree& tree, int32_t i) {
    const Span& s = tree.span(i);
    const bool async = s.kind == SpanKind::kProducer;
    const auto children = tree.children(i);
    if (children.empty()) {
      const PeerName peer = VirtualPeerName(s);
      if (!peer.name.empty() && peer.name != s.service) {
        Record(s.service, peer.name, s.duration_ns, FailedForCaller(s), async);
      }
      return;
    }
    // One call per callee service under this call span (a server span and its retries, or a
    // Zipkin shared span split in two, are still one call).
    std::map<std::string, bool> callees;  // service -> a callee span failed
    for (int32_t c : children) {
      const Span& child = tree.span(c);
      if (child.service == s.service) continue;
      callees[child.service] |= FailedForCaller(child);
    }
    for (const auto& [callee, callee_failed] : callees) {
      bool edge_async = async;
      for (int32_t c : children) {
        if (tree.span(c).service == callee && tree.async_edge(c)) edge_async = true;
      }
      Record(s.service, callee, s.duration_ns, FailedForCaller(s) || callee_failed, edge_async);
    }
  }

  void Record(const std::string& caller, const std::string& callee, int64_t duration_ns, bool error,
              bool async) {
    EdgeAcc& acc = edges_[{caller, callee}];
    ++acc.calls;
    if (error) ++acc.errors;
    if (async) ++acc.async_calls;
    acc.durations.push_back(std::max<int64_t>(duration_ns, 0));
  }

  std::set<std::string> services_;
  std::map<std::pair<std::string, std::string>, EdgeAcc> edges_;
};

// Text for inside a DOT double-quoted string: quotes and backslashes escaped, control
// characters dropped (service names come from traces and are not trusted).
std::string DotEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u >= 0x20 && u != 0x7f) {
      out += c;
    }
  }
  return out;
}

std::string DotQuote(std::string_view s) { return "\"" + DotEscape(s) + "\""; }

const std::string* OwnerOf(const Registry* registry, const std::string& service) {
  if (registry == nullptr) return nullptr;
  const ServiceEntry* e = registry->FindService(service);
  return e != nullptr && !e->team.empty() ? &e->team : nullptr;
}

}  // namespace

DependencyGraph BuildDependencyGraph(const std::vector<Trace>& traces) {
  GraphBuilder b;
  for (const Trace& t : traces) b.Add(t);
  return b.Build(traces.size());
}

std::vector<ObservedService> ObservedServices(const DependencyGraph& graph) {
  std::vector<ObservedService> out;
  for (const DepNode& n : graph.nodes) {
    if (n.name.empty()) continue;
    out.push_back(ObservedService{n.name, n.is_virtual, n.callers});
  }
  return out;
}

std::string RenderDepsJson(const DependencyGraph& graph, const Registry* registry) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto strings = [&w](const std::vector<std::string>& v) {
    w.StartArray();
    for (const std::string& s : v) w.String(s);
    w.EndArray();
  };
  w.StartObject();
  w.Key("traces");
  w.Uint64(graph.traces);
  w.Key("owners_known");
  w.Bool(registry != nullptr);
  w.Key("services");
  w.StartArray();
  for (const DepNode& n : graph.nodes) {
    w.StartObject();
    w.Key("name");
    w.String(n.name);
    w.Key("virtual");
    w.Bool(n.is_virtual);
    if (registry != nullptr) {
      w.Key("team");
      if (const std::string* team = OwnerOf(registry, n.name)) {
        w.String(*team);
      } else {
        w.Null();
      }
    }
    w.Key("depends_on");
    strings(n.depends_on);
    w.Key("transitive");
    strings(n.transitive);
    w.Key("callers");
    strings(n.callers);
    w.EndObject();
  }
  w.EndArray();
  w.Key("edges");
  w.StartArray();
  for (const DepEdge& e : graph.edges) {
    w.StartObject();
    w.Key("from");
    w.String(e.caller);
    w.Key("to");
    w.String(e.callee);
    w.Key("calls");
    w.Uint64(e.calls);
    w.Key("errors");
    w.Uint64(e.errors);
    w.Key("async_calls");
    w.Uint64(e.async_calls);
    w.Key("p50_ns");
    w.Int64(e.p50_ns);
    w.Key("p99_ns");
    w.Int64(e.p99_ns);
    w.Key("p50_ms");
    w.Double(static_cast<double>(e.p50_ns) / 1e6);
    w.Key("p99_ms");
    w.Double(static_cast<double>(e.p99_ns) / 1e6);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

std::string RenderDepsDot(const DependencyGraph& graph, const Registry* registry) {
  std::string out = "digraph dependencies {\n";
  out += "  rankdir=LR;\n";
  out += "  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n";
  out += "  edge [fontname=\"Helvetica\", fontsize=10];\n";
  if (registry == nullptr) out += "  // owners unknown: no registry was given\n";
  for (const DepNode& n : graph.nodes) {
    // `label` is already escaped; "\\n" is DOT's line break.
    std::string label = n.name.empty() ? "(unnamed service)" : DotEscape(n.name);
    std::vector<std::string> attrs;
    if (n.is_virtual) {
      attrs.push_back("shape=ellipse");
      label += "\\n(uninstrumented)";
    }
    std::string style = n.is_virtual ? "dashed" : "rounded";
    if (registry != nullptr) {
      if (const std::string* team = OwnerOf(registry, n.name)) {
        label += "\\nteam: " + DotEscape(*team);
      } else {
        label += "\\n(no owner)";
        style += ",bold";
        attrs.push_back("color=orange");
        attrs.push_back("fontcolor=orange");
      }
    }
    attrs.push_back("style=\"" + style + "\"");
    std::string line = "  " + DotQuote(n.name) + " [label=\"" + label + "\"";
    for (const std::string& a : attrs) line += ", " + a;
    out += line + "];\n";
  }
  for (const DepEdge& e : graph.edges) {
    std::string label = std::to_string(e.calls) + (e.calls == 1 ? " call" : " calls");
    if (e.errors > 0)
      label += ", " + std::to_string(e.errors) + (e.errors == 1 ? " error" : " errors");
    label += "\\np50 " + FormatDuration(e.p50_ns) + ", p99 " + FormatDuration(e.p99_ns);
    std::string line = "  " + DotQuote(e.caller) + " -> " + DotQuote(e.callee) + " [label=\"";
    // The label is built from numbers and FormatDuration's text; no quoting needed beyond this.
    line += label + "\"";
    if (e.errors > 0) line += ", color=red, fontcolor=red, penwidth=2";
    if (e.async_calls == e.calls) line += ", style=dashed";
    out += line + "];\n";
  }
  out += "}\n";
  return out;
}

}  // namespace tracepager::routing
