-- wrk script: POST pre-signed webhook deliveries, each thread its own share of the lines of a file
-- ("<signature>\t<body>"), never repeating one until its share runs out; prints a JSON summary.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  bodies, signatures = {}, {}
  local nthreads = tonumber(args[2])
  local n = 0
  for line in io.lines(args[1]) do
    if n % nthreads == id then
      local tab = string.find(line, "\t", 1, true)
      table.insert(signatures, string.sub(line, 1, tab - 1))
      table.insert(bodies, string.sub(line, tab + 1))
    end
    n = n + 1
  end
  index, sent, wrapped = 0, 0, 0
end

function request()
  index = index + 1
  if index > #bodies then index, wrapped = 1, 1 end
  sent = sent + 1
  local headers = {["Content-Type"] = "application/json", ["X-Hub-Signature-256"] = signatures[index],
                   ["X-Forwarded-Proto"] = "https"}
  return wrk.format("POST", "/webhooks/whatsapp", headers, bodies[index])
end

function done(summary, latency, requests)
  local sent, wrapped, per_thread = 0, 0, {}
  for _, thread in ipairs(threads) do
    sent = sent + thread:get("sent")
    wrapped = math.max(wrapped, thread:get("wrapped"))
    table.insert(per_thread, tostring(thread:get("sent")))
  end
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"sent": %d, "wrapped": %d, "per_thread": [%s]}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), sent, wrapped, table.concat(per_thread, ",")))
end
