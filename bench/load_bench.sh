#!/usr/bin/env bash
# Load: a bounded wrk run against the Alertmanager webhook with the durable store on; no errors,
# and resident memory after ALERTS alerts within a stated bound of the memory after the first
# thousand.
#
#   bench/load_bench.sh [ALERTS [CONNECTIONS [THREADS]]]     (default 1000000 16 1)
#
# One `tracepager serve` (durable store: SQLite, fsync on every commit; file trace source; log
# pager; 127.0.0.1; temp state dir) gets distinct webhooks built from the captured Alertmanager
# notification (two alerts each). First the first 1000 alerts; once the queue is empty (every
# job routed) the daemon's VmRSS is read from /proc. Then the rest, up to ALERTS; VmRSS is read
# when the last answer arrived and again once the queue is empty. Prints both figures and the
# ratio, and, last, `load: PASS` or `load: FAIL (why)`. It passes when every request got a 2xx
# (no non-2xx answer, no socket error) and RSS after ALERTS <= RSS_BOUND x RSS after the first
# thousand (default RSS_BOUND=1.5; the default max_queued_jobs of 100000 and pacing above 50000
# apply: a daemon whose workers fall behind answers more slowly, and 503 once its queue is full,
# which fails the run). Exit 0 on PASS, 1 on FAIL.
source "$(dirname "$0")/lib.sh"

alerts=${1:-1000000}
connections=${2:-16}
threads=${3:-1}
bound=${RSS_BOUND:-1.5}
bench_require wrk curl python3
if ((alerts < 2000)); then
  echo "load: ALERTS must be at least 2000" >&2
  exit 2
fi

bench_templates
tp_prepare ""
tp_start
url="http://127.0.0.1:$TP_PORT/api/v1/alerts/alertmanager"
echo "tracepager $("$TRACEPAGER" --version | head -1) on $url; wrk $threads thread(s), $connections connections, $(nproc) CPUs"
start=$(date +%s)

# 2 alerts per request; every thread stops after its share of answers.
first=$(bench_wrk_count "$url" "$BENCH_TMP/tracepager.tmpl" 1 1 "$connections" 500)
tp_wait_drained >/dev/null
rss_first=$(bench_rss_kib "$TP_PID")
first_alerts=$((2 * $(bench_field "$first" answers)))
echo "first $first_alerts alerts: $first"
echo "  VmRSS after the first $first_alerts alerts (queue empty): $rss_first KiB"

per_thread=$(((alerts - 1000) / 2 / threads))
rest=$(bench_wrk_count "$url" "$BENCH_TMP/tracepager.tmpl" 2 "$threads" "$connections" "$per_thread")
rss_end=$(bench_rss_kib "$TP_PID")
tp_wait_drained >/dev/null
rss_drained=$(bench_rss_kib "$TP_PID")
elapsed=$(($(date +%s) - start))
sent=$((first_alerts + 2 * $(bench_field "$rest" answers)))
echo "next $((sent - first_alerts)) alerts: $rest"
echo "  VmRSS when the last answer arrived: $rss_end KiB; once the queue was empty: $rss_drained KiB"
peak=$rss_end
if ((rss_drained > peak)); then peak=$rss_drained; fi
ratio=$(python3 -c "print('%.2f' % ($peak / $rss_first))")
echo "alerts acknowledged: $sent in ${elapsed}s (both phases, routing included)"
echo "rss ratio after $sent alerts / after the first $first_alerts: $ratio (bound $bound)"

why=()
for line in "$first" "$rest"; do
  if [ "$(bench_field "$line" non2xx)" != 0 ]; then why+=("non-2xx answers"); fi
  if [ "$(bench_field "$line" socket_errors)" != 0 ]; then why+=("socket errors"); fi
done
if ! python3 -c "import sys; sys.exit(0 if $ratio <= $bound else 1)"; then why+=("RSS ratio $ratio > $bound"); fi
if ((sent < alerts)); then why+=("only $sent of $alerts alerts acknowledged"); fi
if [ ${#why[@]} -eq 0 ]; then
  echo "load: PASS"
else
  echo "load: FAIL (${why[*]})"
  exit 1
fi
