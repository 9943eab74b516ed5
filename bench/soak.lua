-- bench/soak.lua: wrk cycles through answers that must not make springfield
-- grow: good reads, 404, 405, invalid JSON, over-long names, bodies
-- over the limit, and overwrites of a fixed set of keys.
-- (No HEAD: wrk would wait for the body its Content-Length announces.)
local i = 0
local big = string.rep("x", 70000)          -- over soak.sh's --max-body-bytes 65536
local longname = string.rep("n", 1100)      -- over the 1024-byte name limit
local requests = {
  function() return wrk.format("GET", "/api/v1/flanders") end,
  function() return wrk.format("GET", "/api/v1/nothing/here") end,
  function() return wrk.format("DELETE", "/api/v1/flanders") end,
  function() return wrk.format("POST", "/api/v1/homers/soak", nil, "{\"broken\": [1, 2") end,
  function() return wrk.format("GET", "/api/v1/marges/" .. longname) end,
  function() return wrk.format("POST", "/api/v1/marges/soak", nil, big) end,
  function() return wrk.format("POST", "/api/v1/marges/k" .. (i % 100), nil, "value " .. i) end,
  function() return wrk.format("GET", "/api/v1/marges/k" .. (i % 100)) end,
  function() return wrk.format("GET", "/api/v1/healthcheck") end,
}
request = function()
  i = i + 1
  return requests[(i % #requests) + 1]()
end
