-- wrk script: replay a file of distinct pre-signed POSTs (LiveKit webhooks), each thread its own slice.
-- BENCH_REQUESTS names the file: pairs of lines, the Authorization header value, then the one-line body.
-- BENCH_THREADS must equal wrk's -t. A thread that runs out of its slice starts it again (the service
-- answers those repeats as duplicates); bench/ sizes the file so that does not happen and reports it if it does.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local requests = {}
local index = 0
wrapped = 0

function init(args)
  local total_threads = tonumber((assert(os.getenv("BENCH_THREADS"), "BENCH_THREADS is not set")))
  local request_file = assert(os.getenv("BENCH_REQUESTS"), "BENCH_REQUESTS is not set")
  local f = assert(io.open(request_file, "rb"))
  local all_auths, all_bodies = {}, {}
  while true do
    local auth = f:read("*l")
    if auth == nil or auth == "" then break end
    table.insert(all_auths, auth)
    table.insert(all_bodies, (assert(f:read("*l"), "a request without a body")))
  end
  f:close()
  -- contiguous slices: one room's events stay on one thread, as LiveKit sends them roughly in order
  local per_thread = math.floor(#all_auths / total_threads)
  local first = thread_id * per_thread + 1
  for i = first, first + per_thread - 1 do
    -- formatted once here, so the load generator spends its CPU on sending
    local headers = {["Authorization"] = all_auths[i], ["Content-Type"] = "application/json"}
    table.insert(requests, wrk.format("POST", nil, headers, all_bodies[i]))
  end
end

function request()
  index = index + 1
  if index > #requests then
    index = 1
    wrapped = wrapped + 1
  end
  return requests[index]
end

local summary = dofile(os.getenv("BENCH_LUA_DIR") .. "/summary.lua")
function done(s, latency, wrk_requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + (thread:get("wrapped") or 0)
  end
  summary.done(s, latency, wrk_requests, total)
end
