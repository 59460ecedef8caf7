# Shared by the daemon benchmarks (ingest_bench.sh, load_bench.sh, page_latency_bench.sh):
# a tracepager daemon and a prometheus-alertmanager of our own in a temp dir, on 127.0.0.1,
# and the wrk request templates built from the captured Alertmanager webhook. Sourced, not run.
#
# Inputs (environment): BUILD_DIR (default <repo>/build), TRACEPAGER (the binary; default
# $BUILD_DIR/daemon/tracepager),
# TRACEPAGER_FIXTURES (default <repo>/../shared/fixtures). Everything the functions start is
# stopped, and the temp dir removed, on exit (BENCH_KEEP=1 keeps the dir for a look).

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$REPO_DIR/build}
TRACEPAGER=${TRACEPAGER:-$BUILD_DIR/daemon/tracepager}
TRACEPAGER_FIXTURES=${TRACEPAGER_FIXTURES:-$REPO_DIR/../shared/fixtures}
CAPTURED=$TRACEPAGER_FIXTURES/alertmanager-captured
# The trace id the captured alerts carry (trace_id annotation, traceparent).
CAPTURED_TRACE_ID=4bf92f3577b34da6a3ce929d0e0e4736

bench_require() {
  local missing=()
  [ -x "$TRACEPAGER" ] || missing+=("$TRACEPAGER (build it: cmake --build build, or set TRACEPAGER)")
  [ -f "$CAPTURED/firing.raw.json" ] || missing+=("$CAPTURED/firing.raw.json (set TRACEPAGER_FIXTURES)")
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || missing+=("$tool (scripts/setup installs it)")
  done
  if [ ${#missing[@]} -ne 0 ]; then
    printf 'bench: missing %s\n' "${missing[@]}" >&2
    exit 2
  fi
}

BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/tracepager-bench.XXXXXX")
BENCH_PIDS=()
bench_cleanup() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${BENCH_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "${BENCH_KEEP:-}" = "1" ]; then
    echo "bench: kept $BENCH_TMP" >&2
  else
    rm -rf "$BENCH_TMP"
  fi
}
trap bench_cleanup EXIT

# A free loopback TCP port (bound and released; good enough on a machine we control).
bench_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits up to $2 seconds for the regex $1 to appear in file $3; prints the first match.
bench_wait_log() {
  local regex=$1 seconds=$2 file=$3 i
  for ((i = 0; i < seconds * 20; i++)); do
    if grep -oE "$regex" "$file" 2>/dev/null | head -1 | grep .; then return 0; fi
    sleep 0.05
  done
  echo "bench: timed out waiting for /$regex/ in $file:" >&2
  tail -20 "$file" >&2
  return 1
}

# Writes the daemon's files into $BENCH_TMP/tp: registry, the example trace under the captured
# trace id, and a config with the durable store on, the file trace source and the log pager.
# $1: extra YAML appended to the config (top-level sections).
tp_prepare() {
  local d=$BENCH_TMP/tp
  mkdir -p "$d/traces"
  cat >"$d/registry.yaml" <<'YAML'
default_team: platform
teams:
  platform: {}
  web: {}
  checkout: {}
  payments: {}
services:
  frontend: {team: web}
  checkout: {team: checkout}
  payment: {team: payments}
  postgresql/payments: {team: platform}
YAML
  sed "s/5b8efff798038103d269b633813fc60c/$CAPTURED_TRACE_ID/g" \
    "$REPO_DIR/etc/examples/traces/checkout-payment-db.otlp.json" >"$d/traces/checkout.json"
  cat >"$d/tracepager.yaml" <<YAML
server:
  listen: ["127.0.0.1:0"]
state_dir: state
registry: {path: registry.yaml}
trace_source: {type: file, dir: traces}
pager: {type: log, path: pages.jsonl}
${1:-}
YAML
}

# Starts the daemon on the prepared config; sets TP_PID and TP_PORT.
tp_start() {
  local d=$BENCH_TMP/tp
  "$TRACEPAGER" serve --config "$d/tracepager.yaml" >"$d/daemon.log" 2>&1 &
  TP_PID=$!
  BENCH_PIDS+=("$TP_PID")
  local listen
  listen=$(bench_wait_log 'serve_ready listen=127\.0\.0\.1:[0-9]+' 30 "$d/daemon.log")
  TP_PORT=${listen##*:}
}

# Jobs the daemon has not finished routing: waiting in the queue or in the intake log, plus in
# flight (from /metrics; the gauges are refreshed on the workers' wake-ups).
tp_unfinished_jobs() {
  curl -sf "http://127.0.0.1:$TP_PORT/metrics" |
    awk '/^tracepager_jobs_(queued|in_flight) / {n += $2} END {printf "%d\n", n}'
}

# Waits until every job the daemon accepted is routed; prints the seconds it took. Gives up
# (exit 1) after $1 seconds (default 300): a daemon that stops routing must not hang the bench.
tp_wait_drained() {
  local limit=${1:-300} start=$SECONDS
  until [ "$(tp_unfinished_jobs)" = 0 ]; do
    if ((SECONDS - start >= limit)); then
      echo "bench: jobs still unfinished after ${limit}s" >&2
      return 1
    fi
    sleep 0.2
  done
  echo $((SECONDS - start))
}

tp_stop() {
  kill -TERM "$TP_PID" 2>/dev/null || true
  wait "$TP_PID" 2>/dev/null || true
}

# Resident memory of a process in KiB (VmRSS from /proc).
bench_rss_kib() {
  awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

# CPU time (user + system) a process used so far, in clock ticks (/proc/<pid>/stat).
bench_cpu_ticks() {
  # Fields after the ")" that ends the command name: utime and stime are the 12th and 13th.
  sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

# Starts Debian's prometheus-alertmanager with its own config (one receiver that notifies
# nobody), storage in the temp dir, clustering off, on a free loopback port; sets AM_PID, AM_PORT.
am_start() {
  local d=$BENCH_TMP/am
  mkdir -p "$d/data"
  cat >"$d/alertmanager.yml" <<'YAML'
route:
  receiver: nobody
  group_by: [team]
receivers:
  - name: nobody
YAML
  AM_PORT=$(bench_free_port)
  prometheus-alertmanager --config.file="$d/alertmanager.yml" --storage.path="$d/data" \
    --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= \
    >"$d/alertmanager.log" 2>&1 &
  AM_PID=$!
  BENCH_PIDS+=("$AM_PID")
  local i
  for ((i = 0; i < 600; i++)); do
    if curl -sf "http://127.0.0.1:$AM_PORT/-/ready" >/dev/null 2>&1; then return 0; fi
    sleep 0.05
  done
  echo "bench: prometheus-alertmanager did not become ready:" >&2
  tail -20 "$d/alertmanager.log" >&2
  return 1
}

# Request templates for alerts.lua from the captured firing webhook (two alerts): each request
# gets a label instance="bench-<run>-<thread>-<n>" and fingerprints of its own, so every alert
# is a new one to both daemons. $BENCH_TMP/tracepager.tmpl is the webhook body (Alertmanager's
# notification, version 4); $BENCH_TMP/alertmanager.tmpl is the same alerts as the JSON array
# of postable alerts that Alertmanager's /api/v2/alerts takes (what Prometheus sends it).
bench_templates() {
  python3 - "$CAPTURED/firing.raw.json" "$BENCH_TMP" <<'PY'
import json, sys
src, out = sys.argv[1], sys.argv[2]
hook = json.load(open(src, encoding="utf-8"))
fps = ["@FA@", "@FB@"]
postable = []
for i, alert in enumerate(hook["alerts"]):
    labels = dict(alert["labels"])
    labels["instance"] = "bench-@N@"
    alert["labels"] = dict(sorted(labels.items()))
    alert["fingerprint"] = fps[i]
    postable.append({"labels": alert["labels"], "annotations": alert["annotations"],
                     "startsAt": alert["startsAt"], "generatorURL": alert["generatorURL"]})
def dump(doc):
    # Compact like Go's encoder, & escaped as Go does, non-ASCII as raw UTF-8.
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).replace("&", "\\u0026") + "\n"
open(out + "/tracepager.tmpl", "w", encoding="utf-8").write(dump(hook))
open(out + "/alertmanager.tmpl", "w", encoding="utf-8").write(dump(postable))
# One alert (the captured checkout error alert), fingerprint @FP@: page_latency_bench's probe.
single = dict(hook, alerts=[dict(hook["alerts"][0], fingerprint="@FP@")])
single["alerts"][0]["labels"] = {k: v for k, v in single["alerts"][0]["labels"].items() if k != "instance"}
open(out + "/probe.tmpl", "w", encoding="utf-8").write(dump(single))
PY
}

# Runs wrk with alerts.lua for a time; prints its wrk_result line. $1 URL, $2 template, $3 run
# number, $4 duration (e.g. 10s), $5 threads, $6 connections.
bench_wrk() {
  wrk --timeout 10s -t "$5" -c "$6" -d "$4" -s "$BENCH_DIR/alerts.lua" "$1" -- "$2" "$3" 0 |
    grep '^wrk_result'
}

# Runs wrk with alerts.lua until each of $4 threads got $6 answers; prints its wrk_result line.
# $1 URL, $2 template, $3 run number, $4 threads, $5 connections, $6 answers per thread.
bench_wrk_count() {
  local prefix=$BENCH_TMP/wrk-done-$3-
  wrk --timeout 10s -t "$4" -c "$5" -d 24h -s "$BENCH_DIR/alerts.lua" "$1" -- "$2" "$3" "$6" \
    "$prefix" >"$BENCH_TMP/wrk-$3.out" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$(find "$BENCH_TMP" -maxdepth 1 -name "wrk-done-$3-*" | wc -l)" -ge "$4" ]; then
      kill -INT "$pid"
      break
    fi
    sleep 0.1
  done
  wait "$pid" || true
  grep '^wrk_result' "$BENCH_TMP/wrk-$3.out" || {
    cat "$BENCH_TMP/wrk-$3.out" >&2
    return 1
  }
}

# Field $2 of a wrk_result line $1, e.g. bench_field "$line" rate.
bench_field() {
  local f
  for f in $1; do
    if [ "${f%%=*}" = "$2" ]; then
      echo "${f#*=}"
      return 0
    fi
  done
  return 1
}
