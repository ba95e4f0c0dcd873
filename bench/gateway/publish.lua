-- wrk script: single publishes, one user id per request drawn from 10,000.
-- Reads the API key from HERALD_BENCH_KEY.
local key = os.getenv("HERALD_BENCH_KEY") or ""
local counter = 0

request = function()
  counter = counter + 1
  local body = string.format(
    '{"type":"bench.publish","user_id":"u%d","data":{"n":%d,"text":"hello from the benchmark"}}',
    counter % 10000, counter)
  return wrk.format("POST", "/v1/events", {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
  }, body)
end

local statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
  io.write(string.format("latency_p50_ms=%.3f\n", latency:percentile(50) / 1000))
  io.write(string.format("latency_p99_ms=%.3f\n", latency:percentile(99) / 1000))
  io.write(string.format("requests=%d\n", summary.requests))
  io.write(string.format("non2xx=%d\n", summary.errors.status))
end
