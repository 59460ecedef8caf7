#!/usr/bin/env bash
# Webhook-to-page latency, p50 and p99, against a bare loopback POST round trip, same run.
#
#   bench/page_latency_bench.sh [COUNT]     (default 300 probes, after 20 warm-up probes)
#
# Starts `tracepager serve` (durable store on; file trace source holding the trace the captured
# alert names; log pager, the local fake pager, fsyncing each page line; 127.0.0.1; temp state
# dir; storm_window 0 so that every probe is an incident of its own and gets its own page) and
# runs build/bench/page_latency_bench against it (see that file for what is timed).
source "$(dirname "$0")/lib.sh"

count=${1:-300}
probe=${PAGE_LATENCY_BENCH:-$BUILD_DIR/bench/page_latency_bench}
bench_require python3
if [ ! -x "$probe" ]; then
  echo "bench: missing $probe (build it: cmake --build build --target page_latency_bench)" >&2
  exit 2
fi
bench_templates
tp_prepare "alerts: {storm_window: 0ms}"
tp_start
echo "tracepager $("$TRACEPAGER" --version | head -1) on 127.0.0.1:$TP_PORT, $(nproc) CPUs"
"$probe" --port "$TP_PORT" --pages "$BENCH_TMP/tp/pages.jsonl" --body "$BENCH_TMP/probe.tmpl" \
  --count "$count"
