-- wrk script of pbxdesk's API load bench (tests/api-load/run.sh). Each connection is a session
-- that pauses LOAD_PAUSE_MS between its requests, so the load is a rate, not a flood; each
-- request carries one of the logged-in sessions' tokens (LOAD_TOKENS, one a line).
--   LOAD_MODE=list    GET a tenant's users (LOAD_TENANT)
--   LOAD_MODE=create  POST a new user into LOAD_TENANT, a name of its own each time
--   LOAD_MODE=login   POST a login of LOAD_USER / LOAD_PASSWORD (argon2id each time)
-- done() prints one JSON line: rate, latency percentiles, non-2xx answers, socket errors.

local mode = os.getenv("LOAD_MODE") or "list"
local pause = tonumber(os.getenv("LOAD_PAUSE_MS") or "0")
local tenant = os.getenv("LOAD_TENANT") or "acme-dental"
local threads_made = 0
local tokens = {}
local counter = 0

function setup(thread)
  threads_made = threads_made + 1
  thread:set("tid", threads_made)
end

function init(args)
  math.randomseed(tid * 104729 + os.time())
  if mode ~= "login" then
    for line in io.lines(os.getenv("LOAD_TOKENS")) do
      tokens[#tokens + 1] = line
    end
  end
end

function delay()
  if pause == 0 then
    return 0
  end
  return math.random(0, 2 * pause)
end

function request()
  counter = counter + 1
  if mode == "login" then
    local body = string.format('{"username": "%s", "password": "%s"}',
      os.getenv("LOAD_USER"), os.getenv("LOAD_PASSWORD"))
    return wrk.format("POST", "/api/v1/auth/login", { ["Content-Type"] = "application/json" }, body)
  end
  local token = tokens[(counter * 31 + tid * 7919) % #tokens + 1]
  local headers = { ["Authorization"] = "Bearer " .. token }
  if mode == "create" then
    headers["Content-Type"] = "application/json"
    local n = tid .. "x" .. counter
    local body = string.format('{"tenant": "%s", "name": "Load %s", "email": "load%s@load.example"}',
      tenant, n, n)
    return wrk.format("POST", "/api/v1/users", headers, body)
  end
  return wrk.format("GET", "/api/v1/tenants/" .. tenant .. "/users", headers)
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    '{"mode": "%s", "requests": %d, "seconds": %.1f, "per_second": %.1f, "p50_ms": %.1f, ' ..
    '"p90_ms": %.1f, "p99_ms": %.1f, "max_ms": %.1f, "non_2xx": %d, "socket_errors": %d}\n',
    mode, summary.requests, secs, summary.requests / secs, latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect + e.read + e.write + e.timeout))
end
