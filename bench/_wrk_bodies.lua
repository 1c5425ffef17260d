-- wrk script for bench/receiver.py: cycles through pre-signed requests read from a file
-- (one "signature<TAB>path<TAB>body" line each), so every webhook delivery is distinct.
local requests = {}
local next_index = 0

function init(args)
  for line in io.lines(args[1]) do
    local signature, path, body = line:match("^(%S+)\t(%S+)\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", path,
      {["X-Hub-Signature-256"] = signature, ["Content-Type"] = "application/json"}, body)
  end
end

function request()
  next_index = next_index + 1
  if next_index > #requests then next_index = 1 end
  return requests[next_index]
end
