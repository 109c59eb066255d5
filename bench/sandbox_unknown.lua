-- wrk script: POST JSON deletes of emails no profile has (the sandbox answers not-found).
-- Each wrk thread numbers its own addresses, so no two requests send the same one.
local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local n = 0
local token = os.getenv("SANDBOX_TOKEN") or "sandbox-token"

function request()
  n = n + 1
  local body = '{"token":"' .. token .. '","db_id":1,"matching":"email","email":"nobody-'
    .. tid .. '-' .. n .. '@example.com"}'
  return wrk.format("POST", "/api/v1.1/profiles/delete", {["Content-Type"] = "application/json"}, body)
end
