-- wrk script for bench/p5_http.sh and bench/p10_cache.sh: each request reads
-- one of N keys at random, GET <prefix>1 .. <prefix>N.
--   wrk ... -s bench/wrk_keys.lua URL -- N [prefix]   (prefix default /share-links/count/article/)
-- The N requests are formatted once per wrk thread (init), and request() only
-- picks one: formatting a request per call (wrk.format) costs wrk about 1 us
-- per request here, CPU the bridge under test then does not get on a 2-core
-- machine, while the baselines' clients pay no such cost (GET /healthz is a
-- fixed request; pgbench's "\set k random(1, N)" is compiled C).
local reqs = {}

function init(args)
  local n = tonumber(args[1]) or 100
  local prefix = args[2] or "/share-links/count/article/"
  math.randomseed(os.time())
  for k = 1, n do
    reqs[k] = wrk.format("GET", prefix .. k)
  end
end

function request()
  return reqs[math.random(1, #reqs)]
end
