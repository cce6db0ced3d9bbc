"""The wrk Lua script the HTTP benchmarks share: one distinct bearer token per request (each wrk
thread takes every n-th line of a tokens file), or a plain GET; a JSON line of counts and latency
percentiles at the end, which the benchmarks parse."""

WRK_SCRIPT = r"""
-- args: path, body ("" for GET), tokens file ("" for none), threads
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

local requests, next_one = {}, 0
function init(args)
  local path, body, file, count = args[1], args[2], args[3], tonumber(args[4])
  if file == "" then
    requests[1] = wrk.format("GET", path)
    return
  end
  local k = 0
  for token in io.lines(file) do
    if k % count == id then
      local headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
      requests[#requests + 1] = wrk.format("POST", path, headers, body)
    end
    k = k + 1
  end
end

function request()
  next_one = next_one % #requests + 1
  return requests[next_one]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""
