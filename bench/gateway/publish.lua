-- wrk: single publishes, POST /v1/events, user ids spread over 10,000 users.
-- HERALD_BENCH_KEY is the API key; HERALD_BENCH_RATE, when set, paces the
-- requests so that all threads (HERALD_BENCH_THREADS) together send that
-- many per second (wrk has no rate option; see bench/gateway/run).
local key = os.getenv("HERALD_BENCH_KEY") or ""
local rate = tonumber(os.getenv("HERALD_BENCH_RATE") or "0")
local users = 10000
local headers = {
  ["Authorization"] = "Bearer " .. key,
  ["Content-Type"] = "application/json",
}

-- The requests are built once per thread, one per user, and sent in turn:
-- formatting a body in Lua for every request would make wrk, which shares
-- the cores with the gateway and the broker, the costliest process of the
-- run.  Every publish still gets its own event id from the gateway.
local pool, counter = {}, 0

init = function(args)
  for u = 1, users do
    pool[u] = wrk.format("POST", "/v1/events", headers, string.format(
      '{"type":"bench.publish","user_id":"u%d","data":{"n":%d,"text":"hello from the benchmark"}}',
      u - 1, u))
  end
end

request = function()
  counter = counter % users + 1
  return pool[counter]
end

if rate > 0 then
  -- wrk calls delay() before each request of a connection (after the
  -- previous answer).  The thread keeps one schedule of send slots, rate /
  -- threads per second, and each request waits for the next free slot: the
  -- offered rate is the target whatever the round trip, as long as a
  -- connection is free for every slot.  A gateway that falls behind is not
  -- caught up with a burst (the slot is never earlier than now).
  local ffi = require("ffi")
  ffi.cdef([[
    typedef struct { long tv_sec; long tv_nsec; } herald_timespec;
    int clock_gettime(int clk, herald_timespec *ts);
  ]])
  local ts = ffi.new("herald_timespec")
  local function now_ms()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
  end
  local threads = tonumber(os.getenv("HERALD_BENCH_THREADS") or "1")
  local period = threads * 1000 / rate
  local next_slot = 0
  delay = function()
    local now = now_ms()
    local slot = next_slot > now and next_slot or now
    next_slot = slot + period
    return math.floor(slot - now + 0.5)
  end
end

done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format("requests=%d\n", summary.requests))
  io.write(string.format("rps=%.0f\n", summary.requests / secs))
  io.write(string.format("non2xx=%d\n", summary.errors.status))
  io.write(string.format("socket_errors=%d\n", summary.errors.connect + summary.errors.read +
                         summary.errors.write + summary.errors.timeout))
  io.write(string.format("p50_ms=%.2f\n", latency:percentile(50) / 1000))
  io.write(string.format("p99_ms=%.2f\n", latency:percentile(99) / 1000))
  io.write(string.format("max_ms=%.2f\n", latency.max / 1000))
end
