-- wrk script: POSTs a distinct alert body on every request, counts non-2xx answers, and prints
-- one machine-readable summary line. Used by ingest_bench.sh and load_bench.sh.
--
--   wrk -s bench/alerts.lua URL -- TEMPLATE RUN [MAX_ANSWERS_PER_THREAD DONE_PREFIX]
--
-- TEMPLATE is a request body (written by lib.sh from the captured Alertmanager webhook) with the
-- placeholders @N@ (a label value unique to the request), @FA@ and @FB@ (16-hex-digit
-- fingerprints of its two alerts, unique across runs, threads and requests). RUN (0..255) keeps
-- the bodies of successive wrk runs against one daemon distinct. With MAX_ANSWERS_PER_THREAD,
-- each thread stops once that many answers arrived (requests still in flight are abandoned) and
-- creates the file DONE_PREFIX<thread>: wrk itself runs until its -d duration or a SIGINT, so
-- the caller sends SIGINT once every thread's file exists (lib.sh, bench_wrk_count).

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(args[1], "rb"))
  template = f:read("*a")
  f:close()
  run = tonumber(args[2] or "0")
  limit = tonumber(args[3] or "0")
  done_prefix = args[4]
  sent = 0
  answered = 0
  non2xx = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["User-Agent"] = "Alertmanager/0.25.0"
end

-- Alertmanager's fingerprints are hashes of the label set, so consecutive alerts' fingerprints
-- are far apart; counting up instead would put every new alert next to the last one in the
-- daemon's indexes. x * 2654435761 mod 2^32 is a bijection of 32-bit x (an odd multiplier), so
-- the fingerprints stay unique; the product stays below 2^53, exact in Lua's numbers.
local function scatter(x)
  return (x * 2654435761) % 4294967296
end

function request()
  sent = sent + 1
  local n = sent
  local body = template:gsub("@(%u+)@", function(key)
    if key == "N" then
      return string.format("%d-%d-%d", run, tid, n)
    elseif key == "FA" then
      return string.format("%02x%02x%08x%04x", run, tid, scatter(2 * n), 0)
    else
      return string.format("%02x%02x%08x%04x", run, tid, scatter(2 * n + 1), 0)
    end
  end)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  answered = answered + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
  if limit > 0 and answered == limit then
    wrk.thread:stop()
    if done_prefix then
      assert(io.open(done_prefix .. tid, "w")):close()
    end
  end
end

function done(summary, latency, requests)
  local answers, bad = 0, 0
  for _, t in ipairs(threads) do
    answers = answers + t:get("answered")
    bad = bad + t:get("non2xx")
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "wrk_result answers=%d seconds=%.3f rate=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f non2xx=%d socket_errors=%d\n",
    answers, seconds, answers / seconds, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, bad,
    e.connect + e.read + e.write + e.timeout))
end
