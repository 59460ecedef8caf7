#!/usr/bin/env bash
# Ingest: tracepager's Alertmanager webhook against Debian's prometheus-alertmanager, same run.
#
#   bench/ingest_bench.sh [DURATION [CONNECTIONS [THREADS]]]     (default 10s 16 1)
#
# Starts `tracepager serve` (durable store on: SQLite, fsync on every commit; file trace source;
# log pager; 127.0.0.1; a temp state dir) and a prometheus-alertmanager of its own (own config,
# port and storage in the temp dir, clustering off). Drives each in turn with wrk for DURATION,
# every request a distinct webhook built from the captured Alertmanager notification
# (../shared/fixtures/alertmanager-captured/firing.raw.json, two alerts): tracepager gets the
# notification on POST /api/v1/alerts/alertmanager, Alertmanager the same two alerts as postable
# alerts on POST /api/v2/alerts. A short warm-up precedes each measured run. tracepager keeps
# routing what it accepted after its run; Alertmanager's side starts only once every job is
# routed (so that the CPUs are not shared), and tracepager's CPU time counts until then. Prints
# both request rates, p50/p99 latencies and CPU time per request (the daemon's routing workers
# included), the jobs left unrouted when tracepager's run ended and, last,
# `ingest ratio tracepager/alertmanager: R` (R > 1: tracepager
# ingests faster). Exit 1 if any request failed (non-2xx or socket error), 2 if a tool is missing.
source "$(dirname "$0")/lib.sh"

duration=${1:-10s}
connections=${2:-16}
threads=${3:-1}
bench_require wrk prometheus-alertmanager curl python3

bench_templates
# The queue bound is raised so that a long run measures ingest, not the 503 of a full queue.
tp_prepare "store: {max_queued_jobs: 10000000}"
tp_start
am_start
tp_url="http://127.0.0.1:$TP_PORT/api/v1/alerts/alertmanager"
am_url="http://127.0.0.1:$AM_PORT/api/v2/alerts"
echo "tracepager $("$TRACEPAGER" --version | head -1) on $tp_url; $(prometheus-alertmanager --version 2>&1 | head -1) on $am_url"
echo "wrk: $threads thread(s), $connections connections, $duration per side, $(nproc) CPUs"

bench_wrk "$tp_url" "$BENCH_TMP/tracepager.tmpl" 1 2s "$threads" "$connections" >/dev/null
tp_wait_drained >/dev/null
tp_cpu0=$(bench_cpu_ticks "$TP_PID")
tp=$(bench_wrk "$tp_url" "$BENCH_TMP/tracepager.tmpl" 2 "$duration" "$threads" "$connections")
tp_backlog=$(tp_unfinished_jobs)
# The daemon routes what it accepted after the run too; Alertmanager's side must not share the
# CPUs with that, or a daemon that accepts faster than it routes would slow its rival down.
tp_drain_s=$(tp_wait_drained)
tp_cpu=$(($(bench_cpu_ticks "$TP_PID") - tp_cpu0))
bench_wrk "$am_url" "$BENCH_TMP/alertmanager.tmpl" 1 2s "$threads" "$connections" >/dev/null
am_cpu0=$(bench_cpu_ticks "$AM_PID")
am=$(bench_wrk "$am_url" "$BENCH_TMP/alertmanager.tmpl" 2 "$duration" "$threads" "$connections")
am_cpu=$(($(bench_cpu_ticks "$AM_PID") - am_cpu0))
hz=$(getconf CLK_TCK)

status=0
for side in tracepager alertmanager; do
  if [ "$side" = tracepager ]; then line=$tp cpu=$tp_cpu; else line=$am cpu=$am_cpu; fi
  printf '%-12s %8.1f requests/s (%d alerts/s)  p50 %7.3f ms  p99 %7.3f ms  non-2xx %d  socket errors %d  CPU %.0f us/request\n' \
    "$side" "$(bench_field "$line" rate)" "$(python3 -c "print(round(2*$(bench_field "$line" rate)))")" \
    "$(bench_field "$line" p50_ms)" "$(bench_field "$line" p99_ms)" \
    "$(bench_field "$line" non2xx)" "$(bench_field "$line" socket_errors)" \
    "$(python3 -c "print($cpu / $hz * 1e6 / max(1, $(bench_field "$line" answers)))")"
  if [ "$(bench_field "$line" non2xx)" != 0 ] || [ "$(bench_field "$line" socket_errors)" != 0 ]; then
    status=1
  fi
done
echo "tracepager jobs unfinished when its run ended: $tp_backlog (all routed ${tp_drain_s}s later, before Alertmanager's run)"
python3 -c "print('p99 ratio tracepager/alertmanager: %.2f (below 1: tracepager answers faster)' % ($(bench_field "$tp" p99_ms) / $(bench_field "$am" p99_ms)))"
python3 -c "print('ingest ratio tracepager/alertmanager: %.2f' % ($(bench_field "$tp" rate) / $(bench_field "$am" rate)))"
exit $status
