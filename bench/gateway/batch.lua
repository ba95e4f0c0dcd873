-- wrk: batches, POST /v1/events/batch with HERALD_BENCH_BATCH events each.
local key = os.getenv("HERALD_BENCH_KEY") or ""
local size = tonumber(os.getenv("HERALD_BENCH_BATCH") or "100")
local headers = {
  ["Authorization"] = "Bearer " .. key,
  ["Content-Type"] = "application/json",
}

-- As in publish.lua: the requests (100 different batches, 10,000 users
-- between them at the default size) are built once per thread.
local pool, counter, npool = {}, 0, 100

init = function(args)
  local n = 0
  for b = 1, npool do
    local items = {}
    for i = 1, size do
      n = n + 1
      items[i] = string.format(
        '{"type":"bench.batch","user_id":"u%d","data":{"n":%d,"text":"hello from the benchmark"}}',
        n % 10000, n)
    end
    pool[b] = wrk.format("POST", "/v1/events/batch", headers,
                         '{"events":[' .. table.concat(items, ",") .. ']}')
  end
end

request = function()
  counter = counter % npool + 1
  return pool[counter]
end

done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format("requests=%d\n", summary.requests))
  io.write(string.format("rps=%.0f\n", summary.requests / secs))
  io.write(string.format("events_per_s=%.0f\n", summary.requests * size / secs))
  io.write(string.format("non2xx=%d\n", summary.errors.status))
  io.write(string.format("p50_ms=%.2f\n", latency:percentile(50) / 1000))
  io.write(string.format("p99_ms=%.2f\n", latency:percentile(99) / 1000))
end
