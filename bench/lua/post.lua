-- wrk script: send one prepared request over and over, then print a JSON summary line.
-- BENCH_REQUEST names a file: "METHOD /path" on the first line, "Name: value" header lines, a blank line,
-- then the body (everything after the blank line, sent as is).

local request_file = assert(os.getenv("BENCH_REQUEST"), "BENCH_REQUEST is not set: name the request file")
local f = assert(io.open(request_file, "rb"))
local method, target = f:read("*l"):match("^(%S+) (%S+)$")
wrk.method = method
wrk.path = target
while true do
  local line = f:read("*l")
  if line == nil or line == "" then break end
  local name, value = line:match("^([^:]+):%s*(.*)$")
  wrk.headers[name] = value
end
wrk.body = f:read("*a")
f:close()

local summary = dofile(os.getenv("BENCH_LUA_DIR") .. "/summary.lua")
done = summary.done
