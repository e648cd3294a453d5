-- Shared by the wrk scripts: done() prints one "BENCH_RESULT {json}" line that bench/wrk.py parses;
-- "wrapped" counts how often a replaying thread ran out of distinct requests and started over.
local M = {}

function M.done(summary, latency, requests, wrapped)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"wrapped": %d, "requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    wrapped or 0, summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean
  ))
end

return M
