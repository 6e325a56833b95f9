-- L2 (bench/l2/run.sh): counts every answer that is not 2xx and prints one JSON line
-- with the figures wrk measured. wrk's own "Non-2xx or 3xx" line misses 3xx answers.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non2xx")
  end
  local e = summary.errors
  io.write(string.format(
    'L2-JSON {"requests": %d, "seconds": %.3f, "bytes": %d, "connect": %d, ' ..
    '"read": %d, "write": %d, "timeout": %d, "status_errors": %d, "non2xx": %d, ' ..
    '"mean_ms": %.2f, "p50_ms": %.2f, "p90_ms": %.2f, "p95_ms": %.2f, ' ..
    '"p99_ms": %.2f, "max_ms": %.2f}\n',
    summary.requests, summary.duration / 1e6, summary.bytes, e.connect, e.read,
    e.write, e.timeout, e.status, bad, latency.mean / 1e3,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
    latency:percentile(95) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3))
end
