-- wrk script: POST XML deletes of emails no profile has (the sandbox answers not-found).
local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local n = 0
local token = os.getenv("SANDBOX_TOKEN") or "sandbox-token"

function request()
  n = n + 1
  local body = "<xml><token>" .. token .. "</token><db_id>1</db_id><matching>email</matching>"
    .. "<email>nobody-" .. tid .. "-" .. n .. "@example.com</email></xml>"
  return wrk.format("POST", "/api/v1.1/profiles/delete", {["Content-Type"] = "application/xml"}, body)
end
