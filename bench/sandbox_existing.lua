-- wrk script: POST JSON deletes of existing profiles user{i}@example.com (--generate N).
-- Thread t of T sends i = t, t + T, t + 2T, ...: every profile at most once, until they run out.
local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
  thread:set("step", 0)
end

function init(args)
  step = tonumber(os.getenv("SANDBOX_THREADS") or "1")
  i = tid - step
end

local token = os.getenv("SANDBOX_TOKEN") or "sandbox-token"

function request()
  i = i + step
  local body = '{"token":"' .. token .. '","db_id":1,"matching":"email","email":"user'
    .. i .. '@example.com"}'
  return wrk.format("POST", "/api/v1.1/profiles/delete", {["Content-Type"] = "application/json"}, body)
end
