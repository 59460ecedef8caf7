// Throughput and peak memory of reading (and routing) big OTLP traces, against a bare
// rapidjson::Document::Parse of the same bytes (issue 2, "Speed and memory": reading plus
// routing a 100,000-span trace must reach at least half the bare parse's throughput, with
// peak memory at most 4x the input size).
//
// The traces are generated: a service call tree (server spans calling other services through
// client spans, database calls as leaves, a little local work), attributes as real OTel SDKs
// write them, compact JSON grouped by service into resourceSpans, ~1% of database calls
// failing with the failure propagating up part of the call chain. Deterministic (fixed seed).
//
// Peak memory is measured in forked children, so the benchmark's own heap does not blur it:
// one child only touches the input (the baseline), another reads and routes it; the extra
// ru_maxrss of the second over the first is what reading and routing cost.
//
// The last line printed is exactly `route/parse throughput ratio at 100k spans: R`.
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <rapidjson/document.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "routing/registry.h"
#include "routing/route.h"
#include "routing/trace_reader.h"

namespace {

namespace routing = tracepager::routing;
using routing::ReadTraces;

// ---- Trace generation ------------------------------------------------------------------

struct GenSpan {
  uint64_t id = 0, parent = 0;
  int service = 0;
  int kind = 2;  // OTLP: 1 internal, 2 server, 3 client
  std::string name;
  int64_t start = 0, end = 0;
  int http = 0;  // 0: none
  bool db = false;
  bool failed = false;
  int callee = -1;  // client spans: the service called
};

const char* const kServices[] = {"frontend", "api-gateway", "checkout", "cart",      "payment",
                                 "fraud",    "shipping",    "quote",    "currency",  "email",
                                 "ad",       "recommend",   "catalog",  "inventory", "pricing",
                                 "tax",      "auth",        "session",  "profile",   "search",
                                 "ranking",  "reviews",     "ratings",  "media",     "thumbnail",
                                 "notify",   "ledger",      "audit",    "loyalty",   "coupon"};
constexpr int kServiceCount = sizeof(kServices) / sizeof(kServices[0]);

std::vector<GenSpan> GenerateSpans(size_t n) {
  std::mt19937_64 rng(20240601);
  std::vector<GenSpan> spans;
  spans.reserve(n);
  auto add = [&](GenSpan s) {
    s.id = 0x1000 + spans.size();
    spans.push_back(std::move(s));
    return spans.size() - 1;
  };
  GenSpan root;
  root.service = 0;
  root.name = "GET /";
  root.start = 1764190000000000000;
  root.end = root.start + 2'000'000'000;
  root.http = 200;
  std::vector<size_t> queue = {add(root)};
  // Breadth-first: each server span does some local work, calls a few downstream services
  // (client span + the callee's server span) and a database.
  for (size_t qi = 0; qi < queue.size() && spans.size() < n; ++qi) {
    const size_t server = queue[qi];
    const int svc = spans[server].service;
    const int64_t s0 = spans[server].start, s1 = spans[server].end;
    const int64_t slot = std::max<int64_t>((s1 - s0) / 8, 8);
    int64_t t = s0 + 1;
    if (spans.size() < n) {
      GenSpan local;
      local.parent = spans[server].id;
      local.service = svc;
      local.kind = 1;
      local.name = "render";
      local.start = t;
      local.end = t + slot / 4;
      add(local);
    }
    const int calls = 1 + static_cast<int>(rng() % 3);
    for (int c = 0; c < calls && spans.size() + 2 <= n; ++c) {
      const int callee = std::min(kServiceCount - 1, svc + 1 + static_cast<int>(rng() % 4));
      GenSpan client;
      client.parent = spans[server].id;
      client.service = svc;
      client.kind = 3;
      client.callee = callee;
      client.name = std::string("POST /") + kServices[callee];
      client.start = t + slot / 4;
      client.end = client.start + slot;
      client.http = 200;
      t = client.end;
      size_t ci = add(client);
      GenSpan callee_server;
      callee_server.parent = spans[ci].id;
      callee_server.service = callee;
      callee_server.name = client.name;
      callee_server.start = client.start + 1;
      callee_server.end = client.end - 1;
      callee_server.http = 200;
      queue.push_back(add(callee_server));
    }
    if (spans.size() < n) {
      GenSpan db;
      db.parent = spans[server].id;
      db.service = svc;
      db.kind = 3;
      db.db = true;
      db.name = "SELECT orders";
      db.start = t;
      db.end = std::min(s1 - 1, t + slot / 2);
      db.failed = rng() % 100 == 0;
      size_t di = add(db);
      if (spans[di].failed) {
        // The failure climbs a few levels: server 500 -> caller's client 500 -> ...
        uint64_t up = spans[di].parent;
        for (int level = 0; up != 0 && level < 6 && rng() % 4 != 0; ++level) {
          GenSpan& p = spans[up - 0x1000];
          p.failed = true;
          if (p.http != 0) p.http = 500;
          up = p.parent;
        }
      }
    }
  }
  return spans;
}

std::string Attr(const char* key, const std::string& value) {
  return std::string(R"({"key":")") + key + R"(","value":{"stringValue":")" + value + R"("}})";
}
std::string IntAttr(const char* key, int64_t value) {
  return std::string(R"({"key":")") + key + R"(","value":{"intValue":")" + std::to_string(value) +
         R"("}})";
}

std::string Hex(uint64_t v, int digits) {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%0*llx", digits, static_cast<unsigned long long>(v));
  return buf;
}

std::string GenerateOtlp(size_t n) {
  std::vector<GenSpan> spans = GenerateSpans(n);
  const std::string trace_id = Hex(0x4bf92f3577b34da6ull, 16) + Hex(0xa3ce929d0e0e4736ull, 16);
  std::map<int, std::vector<const GenSpan*>> by_service;
  for (const GenSpan& s : spans) by_service[s.service].push_back(&s);
  std::string out;
  out.reserve(n * 700);
  out += R"({"resourceSpans":[)";
  bool first_rs = true;
  for (const auto& [svc, list] : by_service) {
    if (!first_rs) out += ',';
    first_rs = false;
    out += R"({"resource":{"attributes":[)";
    out += Attr("service.name", kServices[svc]) + ",";
    out += Attr("service.version", "1.42.0") + ",";
    out += Attr("host.name", std::string(kServices[svc]) + "-7d9f8b-x2x4k") + ",";
    out += Attr("telemetry.sdk.language", "go") + ",";
    out += Attr("telemetry.sdk.name", "opentelemetry") + ",";
    out += Attr("telemetry.sdk.version", "1.28.0");
    out +=
        R"(]},"scopeSpans":[{"scope":{"name":"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp","version":"0.53.0"},"spans":[)";
    bool first = true;
    for (const GenSpan* s : list) {
      if (!first) out += ',';
      first = false;
      out += R"({"traceId":")" + trace_id + R"(","spanId":")" + Hex(s->id, 16) + R"(")";
      if (s->parent != 0) out += R"(,"parentSpanId":")" + Hex(s->parent, 16) + R"(")";
      out += R"(,"flags":257,"name":")" + s->name + R"(","kind":)" + std::to_string(s->kind);
      out += R"(,"startTimeUnixNano":")" + std::to_string(s->start) + R"(","endTimeUnixNano":")" +
             std::to_string(s->end) + R"(","attributes":[)";
      if (s->db) {
        out +=
            Attr("db.system.name", "postgresql") + "," + Attr("db.namespace", "orders") + "," +
            Attr("db.query.text", "SELECT id, total, status FROM orders WHERE customer_id = $1") +
            "," + Attr("server.address", "pg-orders.internal") + "," + IntAttr("server.port", 5432);
      } else if (s->kind == 1) {
        out += Attr("template", "checkout.html") + "," + IntAttr("items", 3);
      } else {
        out += Attr("http.request.method", s->kind == 3 ? "POST" : "GET") + "," +
               Attr("url.path", "/" + s->name.substr(s->name.find('/') + 1)) + "," +
               IntAttr("http.response.status_code", s->http) + "," +
               Attr("network.protocol.version", "1.1") + "," +
               Attr("user_agent.original", "Go-http-client/1.1");
        if (s->kind == 3) {
          out += "," + Attr("server.address", std::string(kServices[s->callee]) + ".svc") + "," +
                 IntAttr("server.port", 8080);
        } else {
          out += "," + Attr("network.peer.address", "10.12.3.4") + "," +
                 IntAttr("network.peer.port", 43122);
        }
      }
      out += "]";
      if (s->failed) {
        out += R"(,"events":[{"timeUnixNano":")" + std::to_string(s->end - 1) +
               R"(","name":"exception","attributes":[)" + Attr("exception.type", "PSQLException") +
               "," + Attr("exception.message", "connection refused") + R"(]}])";
        out += R"(,"status":{"code":2,"message":"connection refused"})";
      } else {
        out += R"(,"status":{})";
      }
      out += "}";
    }
    out += "]}]}";
  }
  out += "]}";
  return out;
}

const std::string& Input(size_t n) {
  static std::map<size_t, std::string> cache;
  auto it = cache.find(n);
  if (it == cache.end()) it = cache.emplace(n, GenerateOtlp(n)).first;
  return it->second;
}

// ---- What is measured --------------------------------------------------------------------

// The registry the routing step uses: every generated service owned by one of three teams.
const routing::Registry& BenchRegistry() {
  static const routing::Registry registry = [] {
    std::string yaml =
        "default_team: platform\nteams:\n  platform: {}\n  shop: {}\n  money: {}\n"
        "services:\n";
    for (int i = 0; i < kServiceCount; ++i) {
      yaml += std::string("  ") + kServices[i] + ": {team: " +
              (i % 3 == 0   ? "platform"
               : i % 3 == 1 ? "shop"
                            : "money") +
              "}\n";
    }
    yaml += "  postgresql/orders: {team: platform}\n";
    auto r = routing::Registry::FromYaml(yaml, "bench");
    if (!r.ok()) {
      std::fprintf(stderr, "bench registry: %s\n", r.error().message.c_str());
      std::abort();
    }
    return std::move(r).value();
  }();
  return registry;
}

// Reads and routes the alert on the root service; returns a digest of the decision so the
// work cannot be optimized away.
size_t ReadAndRoute(const std::string& json) {
  auto read = ReadTraces(json);
  if (!read.ok()) {
    std::fprintf(stderr, "ReadTraces failed: %s\n", read.error().message.c_str());
    std::abort();
  }
  routing::RouteRequest request;
  request.alerting_service = kServices[0];
  routing::Decision decision = routing::Route(read->traces, request, BenchRegistry(), {});
  return decision.culprits.size() + decision.teams.size() * 7 +
         static_cast<size_t>(decision.kind == routing::Decision::Kind::kRouted);
}

void BM_BareParse(benchmark::State& state) {
  const std::string& json = Input(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    rapidjson::Document doc;
    doc.Parse(json.c_str(), json.size());
    if (doc.HasParseError()) state.SkipWithError("parse error");
    benchmark::DoNotOptimize(doc.IsObject());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * json.size()));
}

void BM_ReadAndRoute(benchmark::State& state) {
  const std::string& json = Input(static_cast<size_t>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(ReadAndRoute(json));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * json.size()));
}

// Three repetitions each; the summary keeps the fastest.
BENCHMARK(BM_BareParse)
    ->Arg(1000)
    ->Arg(10000)
    ->Arg(100000)
    ->Repetitions(3)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ReadAndRoute)
    ->Arg(1000)
    ->Arg(10000)
    ->Arg(100000)
    ->Repetitions(3)
    ->Unit(benchmark::kMillisecond);

// Keeps the fastest time per benchmark so the summary can compare them.
class Recorder : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.run_type != Run::RT_Iteration || r.error_occurred || r.iterations == 0) continue;
      // CPU time: the work is single-threaded, and on a shared machine wall time mostly
      // measures the neighbours.
      double seconds = r.cpu_accumulated_time / static_cast<double>(r.iterations);
      auto [it, inserted] =
          best_.emplace(r.run_name.function_name + "/" + r.run_name.args, seconds);
      if (!inserted) it->second = std::min(it->second, seconds);
    }
    ConsoleReporter::ReportRuns(runs);
  }
  // Seconds per iteration, or 0 when the benchmark did not run.
  double Best(const std::string& name) const {
    auto it = best_.find(name);
    return it == best_.end() ? 0 : it->second;
  }

 private:
  std::map<std::string, double> best_;
};

// Peak RSS (KiB) of a forked child running `work`.
template <typename Work>
long ChildPeakKiB(Work work) {
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    work();
    _exit(0);
  }
  int status = 0;
  rusage usage{};
  if (wait4(pid, &status, 0, &usage) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return -1;
  }
  return usage.ru_maxrss;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string& big = Input(100000);
  // Memory first, on a heap that holds only the inputs: freed-but-resident pages would let the
  // child's allocations go uncounted.
  malloc_trim(0);
  const long baseline = ChildPeakKiB([&] {
    size_t sum = 0;
    for (size_t i = 0; i < big.size(); i += 4096) sum += static_cast<unsigned char>(big[i]);
    benchmark::DoNotOptimize(sum);
  });
  const long measured = ChildPeakKiB([&] { benchmark::DoNotOptimize(ReadAndRoute(big)); });

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  Recorder recorder;
  benchmark::RunSpecifiedBenchmarks(&recorder);
  benchmark::Shutdown();

  const double mb = static_cast<double>(big.size()) / 1e6;
  std::printf(
      "\ninput at 100k spans: %.1f MB of OTLP JSON; throughputs from the fastest "
      "repetition's CPU time\n",
      mb);
  for (const char* size : {"1000", "10000", "100000"}) {
    double parse = recorder.Best(std::string("BM_BareParse/") + size);
    double read = recorder.Best(std::string("BM_ReadAndRoute/") + size);
    if (parse > 0 && read > 0) {
      double bytes = static_cast<double>(Input(static_cast<size_t>(std::atol(size))).size());
      std::printf(
          "%6s spans: bare Document::Parse %.0f MB/s, ReadTraces+Route %.0f MB/s (ratio %.2f)\n",
          size, bytes / parse / 1e6, bytes / read / 1e6, parse / read);
    }
  }
  if (baseline > 0 && measured > 0) {
    const double extra_mb = static_cast<double>(measured - baseline) * 1024 / 1e6;
    std::printf(
        "peak memory of ReadTraces+Route at 100k spans: %.1f MB beyond the input "
        "(%.2fx the input size; %.2fx counting the input itself)\n",
        extra_mb, extra_mb / mb, (extra_mb + mb) / mb);
  } else {
    std::printf("peak memory: measurement failed\n");
  }
  const double parse = recorder.Best("BM_BareParse/100000");
  const double read = recorder.Best("BM_ReadAndRoute/100000");
  std::printf("route/parse throughput ratio at 100k spans: %.2f\n", read > 0 ? parse / read : 0.0);
  return 0;
}
