"""The Redis store's Lua scripts: each write and its index maintenance in one script, so
every operation is atomic across nodes. Key names come from :mod:`sessions.redis_keys`
(``$QUEUE`` and the like below are its table's entries); the scripts get the prefix as
their first argument.
"""

from __future__ import annotations

from string import Template

from .redis_keys import NAMES


def _script(source: str) -> str:
    return Template(source).substitute(NAMES)


LIB = _script(r"""
local function is_null(v) return v == nil or v == cjson.null end

local function is_live(s)
  return s.state == 'queued' or s.state == 'ringing' or s.state == 'connected'
end

-- The kiosk's live session other than this one, if any (its id and state).
local function other_live(p, s)
  local live = redis.call('GET', p .. ':$KIOSK_LIVE:' .. s.kiosk_id)
  if not live or live == s.id then return nil end
  local raw = redis.call('GET', p .. ':$SESSION:' .. live)
  if not raw then return nil end
  local other = cjson.decode(raw)
  if is_live(other) then return live, other.state end
  return nil
end

local function index_session(p, s, old)
  if old and old.department_id ~= s.department_id then
    redis.call('ZREM', p .. ':$QUEUE:' .. old.department_id, s.id)
  end
  if s.state == 'queued' then
    redis.call('ZADD', p .. ':$QUEUE:' .. s.department_id, s.queue_score, s.id)
  else
    redis.call('ZREM', p .. ':$QUEUE:' .. s.department_id, s.id)
  end
  local kiosk = p .. ':$KIOSK_LIVE:' .. s.kiosk_id
  if is_live(s) then
    redis.call('SADD', p .. ':$LIVE', s.id)
    redis.call('SET', kiosk, s.id)
  else
    redis.call('SREM', p .. ':$LIVE', s.id)
    if redis.call('GET', kiosk) == s.id then redis.call('DEL', kiosk) end
  end
  if is_null(s.deadline) then
    redis.call('ZREM', p .. ':$DEADLINES', s.id)
  else
    redis.call('ZADD', p .. ':$DEADLINES', s.deadline, s.id)
  end
end

local function index_presence(p, pr, old)
  if old then
    for _, d in ipairs(old.departments) do
      redis.call('ZREM', p .. ':$AVAILABLE:' .. d, old.staff_id)
    end
  end
  if pr.state == 'available' then
    for _, d in ipairs(pr.departments) do
      redis.call('ZADD', p .. ':$AVAILABLE:' .. d, pr.idle_since, pr.staff_id)
    end
  end
  redis.call('SADD', p .. ':$STAFF', pr.staff_id)
end

local function check_expect(rec, expect, what)
  for field, allowed in pairs(expect) do
    local cur = rec[field]
    local ok = false
    for _, v in ipairs(allowed) do
      if (is_null(v) and is_null(cur)) or cur == v then ok = true end
    end
    if not ok then
      return 'conflict:' .. what .. ': ' .. field .. ' is ' .. tostring(cur)
    end
  end
  return nil
end
""")

CREATE_SESSION = LIB + _script(r"""
local p, key = ARGV[1], KEYS[1]
if redis.call('EXISTS', key) == 1 then return 'conflict:session exists' end
local s = cjson.decode(ARGV[2])
if is_live(s) then
  local live, state = other_live(p, s)
  if live then
    return 'conflict:this kiosk is already in session ' .. live .. ' (' .. state .. ')'
  end
end
redis.call('SET', key, ARGV[2])
index_session(p, s, nil)
return 'ok'
""")

UPDATE = LIB + _script(r"""
local p, key, kind = ARGV[1], KEYS[1], ARGV[4]
local raw = redis.call('GET', key)
if not raw then return 'not_found' end
local rec = cjson.decode(raw)
local old = cjson.decode(raw)
local err = check_expect(rec, cjson.decode(ARGV[3]), kind)
if err then return err end
for k, v in pairs(cjson.decode(ARGV[2])) do rec[k] = v end
local out = cjson.encode(rec)
redis.call('SET', key, out)
if kind == 'session' then index_session(p, rec, old) else index_presence(p, rec, old) end
return out
""")

PUT_PRESENCE = LIB + _script(r"""
local p, key = ARGV[1], KEYS[1]
local raw = redis.call('GET', key)
local old = nil
if raw then old = cjson.decode(raw) end
redis.call('SET', key, ARGV[2])
index_presence(p, cjson.decode(ARGV[2]), old)
return 'ok'
""")

RESERVE = LIB + _script(r"""
local p, dept, now, expires = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local staff = redis.call('ZRANGE', p .. ':$AVAILABLE:' .. dept, 0, -1)
if #staff == 0 then return nil end
local queue = redis.call('ZRANGE', p .. ':$QUEUE:' .. dept, 0, 199)
for _, sid in ipairs(queue) do
  local raw = redis.call('GET', p .. ':$SESSION:' .. sid)
  local s = raw and cjson.decode(raw)
  if s and is_null(s.kiosk_lost_at) then  -- a kiosk that is away answers no one
    local declined = {}
    if type(s.declined_by) == 'table' then
      for _, d in ipairs(s.declined_by) do declined[d] = true end
    end
    for _, staff_id in ipairs(staff) do
      if not declined[staff_id] then
        local pkey = p .. ':$PRESENCE:' .. staff_id
        local pr = cjson.decode(redis.call('GET', pkey))
        local old_pr = cjson.decode(redis.call('GET', pkey))
        s.state = 'ringing'
        s.offered_to = staff_id
        s.offer_expires_at = expires
        s.deadline = expires
        pr.state = 'ringing'
        pr.since = now
        pr.session_id = sid
        pr.reason = cjson.null
        local s_out, pr_out = cjson.encode(s), cjson.encode(pr)
        redis.call('SET', p .. ':$SESSION:' .. sid, s_out)
        redis.call('SET', pkey, pr_out)
        index_session(p, s, s)
        index_presence(p, pr, old_pr)
        return {s_out, pr_out}
      end
    end
  end
end
return nil
""")

# The record and its place in the session's list, both or neither.
ADD_DOCUMENT = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
return 1
"""

# The case, its state index and its session's list, all or none.
CREATE_CASE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
return 1
"""

# Once per session and kind (a retried step adds nothing), and a day's worth kept.
RECORD_OUTCOME = """
if redis.call('SET', KEYS[2], 1, 'NX', 'EX', ARGV[4]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
return 1
"""

PUT_RECORD_IF = LIB + _script(r"""
local raw = redis.call('GET', KEYS[1])
if not raw then return 'conflict:' .. ARGV[3] .. ' does not exist' end
local err = check_expect(cjson.decode(raw), cjson.decode(ARGV[2]), ARGV[3])
if err then return err end
redis.call('SET', KEYS[1], ARGV[1])
return 'ok'
""")


DROP_NODE = r"""
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local before = cjson.decode(ARGV[2])
if before ~= cjson.null and (tonumber(cjson.decode(raw).seen) or 0) >= before then
  return 0
end
return redis.call('HDEL', KEYS[1], ARGV[1])
"""


