-- wrk script for bench/intake.py (wrk 4.x, LuaJIT).
--
--   wrk -t2 -c16 -d5s --latency -s bench/intake.lua URL -- REQUESTS_FILE THREADS
--
-- REQUESTS_FILE holds one pre-signed request a line: key TAB signature TAB body
-- (bodies are one-line JSON). Thread i of THREADS takes lines i, i+THREADS,
-- i+2*THREADS, ... and sends them in turn, so no two threads share a key and a
-- thread repeats a key only once it has sent its whole slice (counted, and
-- reported as "repeated": a repeat is a duplicate, cheaper for the server).
-- Every request is formatted once in init(); request() only hands it out.
--
-- done() prints one line: "WRK_JSON {...}" (latencies in microseconds).

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local path, nthreads = args[1], tonumber(args[2])
  prepared = {}
  issued = 0
  local line_no = 0
  for line in io.lines(path) do
    if line_no % nthreads == id then
      local key, signature, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
      prepared[#prepared + 1] = wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["X-Fake-Delivery"] = key,
        ["X-Fake-Signature"] = signature,
      }, body)
    end
    line_no = line_no + 1
  end
  slice = #prepared
  if slice == 0 then
    error("no request for thread " .. id .. " in " .. path)
  end
end

function request()
  issued = issued + 1
  return prepared[(issued - 1) % slice + 1]
end

function done(summary, latency, requests)
  local issued_total, repeated, slices = 0, 0, 0
  for _, thread in ipairs(threads) do
    local sent, size = thread:get("issued"), thread:get("slice")
    issued_total = issued_total + sent
    slices = slices + size
    if sent > size then
      repeated = repeated + (sent - size)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, "write": %d, '
      .. '"status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, '
      .. '"mean_us": %.1f, "issued": %d, "prepared": %d, "repeated": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, issued_total, slices, repeated))
end
