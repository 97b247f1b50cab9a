-- wrk script: GET one path as the TLS proxy forwards it; prints the same JSON summary as wrk_signed.lua.
function init(args)
  path = args[1]
end

function request()
  return wrk.format("GET", path, {["X-Forwarded-Proto"] = "https"})
end

function done(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
