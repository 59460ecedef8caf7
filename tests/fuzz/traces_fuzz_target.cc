// libFuzzer targets jaeger_v1_fuzz, otlp_fuzz and zipkin_v2_fuzz (tests/fuzz/CMakeLists.txt builds
// this file once per format, naming it in TRACEPAGER_FUZZ_TRACE_FORMAT): routing::ReadTraces on
// that format (OTLP: bare, Tempo batches, Tempo v2 and Jaeger v3 wrappers), forced and
// auto-detected. The reader's contract (routing/trace_reader.h) is that no input crashes, hangs or
// allocates without bound; whatever it accepts must come out as well-formed traces.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <unordered_map>

#include "routing/trace_reader.h"

namespace {

using tracepager::routing::ReadLimits;
using tracepager::routing::ReadTraces;
using tracepager::routing::TraceFormat;

// What the walk relies on and the reader promises: 32-digit trace ids, non-zero unique span ids,
// every parent present in the trace (orphans are repaired into roots) and no parent cycle.
void CheckAccepted(const tracepager::routing::ReadResult& result) {
  for (const auto& trace : result.traces) {
    if (trace.trace_id.size() != 32) std::abort();
    std::unordered_map<uint64_t, uint64_t> parent_of;
    for (const auto& span : trace.spans) {
      if (span.span_id == 0) std::abort();
      if (!parent_of.emplace(span.span_id, span.parent_id).second) std::abort();
    }
    for (const auto& span : trace.spans) {
      uint64_t id = span.parent_id;
      for (size_t steps = 0; id != 0; ++steps) {
        if (steps > trace.spans.size()) std::abort();  // a cycle
        auto it = parent_of.find(id);
        if (it == parent_of.end()) std::abort();  // a parent the trace lacks
        id = it->second;
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  ReadLimits limits;
  limits.max_spans = 100'000;
  auto forced = ReadTraces(json, limits, TraceFormat::TRACEPAGER_FUZZ_TRACE_FORMAT);
  if (forced.ok()) CheckAccepted(forced.value());
  auto detected = ReadTraces(json, limits, TraceFormat::kAuto);
  if (detected.ok()) CheckAccepted(detected.value());
  return 0;
}
