"""The Redis store: shared state for many nodes.

Records are JSON strings; every write and its index maintenance run in one Lua script,
so each operation is atomic across nodes (see :mod:`sessions.store` for the indexes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError, WatchError

from .errors import Conflict, NotFound
from .presence import Presence
from .session import Session
from .statistics import Outcome
from .store import STATISTICS_RETENTION_S, Expect, check_expect

_LIB = r"""
local function is_null(v) return v == nil or v == cjson.null end

local function index_session(p, s, old)
  if old and old.department_id ~= s.department_id then
    redis.call('ZREM', p .. ':q:' .. old.department_id, s.id)
  end
  if s.state == 'queued' then
    redis.call('ZADD', p .. ':q:' .. s.department_id, s.queue_score, s.id)
  else
    redis.call('ZREM', p .. ':q:' .. s.department_id, s.id)
  end
  if s.state == 'queued' or s.state == 'ringing' or s.state == 'connected' then
    redis.call('SADD', p .. ':live', s.id)
  else
    redis.call('SREM', p .. ':live', s.id)
  end
  if is_null(s.deadline) then
    redis.call('ZREM', p .. ':dl', s.id)
  else
    redis.call('ZADD', p .. ':dl', s.deadline, s.id)
  end
end

local function index_presence(p, pr, old)
  if old then
    for _, d in ipairs(old.departments) do redis.call('ZREM', p .. ':av:' .. d, old.staff_id) end
  end
  if pr.state == 'available' then
    for _, d in ipairs(pr.departments) do
      redis.call('ZADD', p .. ':av:' .. d, pr.idle_since, pr.staff_id)
    end
  end
  redis.call('SADD', p .. ':staff', pr.staff_id)
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
"""

_CREATE_SESSION = (
    _LIB
    + r"""
local p, key = ARGV[1], KEYS[1]
if redis.call('EXISTS', key) == 1 then return 'conflict:session exists' end
local s = cjson.decode(ARGV[2])
redis.call('SET', key, ARGV[2])
index_session(p, s, nil)
return 'ok'
"""
)

_UPDATE = (
    _LIB
    + r"""
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
"""
)

_PUT_PRESENCE = (
    _LIB
    + r"""
local p, key = ARGV[1], KEYS[1]
local raw = redis.call('GET', key)
local old = nil
if raw then old = cjson.decode(raw) end
redis.call('SET', key, ARGV[2])
index_presence(p, cjson.decode(ARGV[2]), old)
return 'ok'
"""
)

_RESERVE = (
    _LIB
    + r"""
local p, dept, now, expires = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local staff = redis.call('ZRANGE', p .. ':av:' .. dept, 0, -1)
if #staff == 0 then return nil end
local queue = redis.call('ZRANGE', p .. ':q:' .. dept, 0, 199)
for _, sid in ipairs(queue) do
  local raw = redis.call('GET', p .. ':s:' .. sid)
  if raw then
    local s = cjson.decode(raw)
    local declined = {}
    if type(s.declined_by) == 'table' then
      for _, d in ipairs(s.declined_by) do declined[d] = true end
    end
    for _, staff_id in ipairs(staff) do
      if not declined[staff_id] then
        local pkey = p .. ':p:' .. staff_id
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
        redis.call('SET', p .. ':s:' .. sid, s_out)
        redis.call('SET', pkey, pr_out)
        index_session(p, s, s)
        index_presence(p, pr, old_pr)
        return {s_out, pr_out}
      end
    end
  end
end
return nil
"""
)

# The record and its place in the session's list, both or neither.
_ADD_DOCUMENT = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
return 1
"""

# The case, its state index and its session's list, all or none.
_CREATE_CASE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
return 1
"""

# Once per session and kind (a retried step adds nothing), and a day's worth kept.
_RECORD_OUTCOME = """
if redis.call('SET', KEYS[2], 1, 'NX', 'EX', ARGV[4]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
return 1
"""

# cjson turns an empty JSON array into an empty object; these fields are lists.
_LIST_FIELDS = ("declined_by", "departments")


def _decode(raw: str | bytes) -> dict[str, Any]:
    rec = json.loads(raw)
    for name in _LIST_FIELDS:
        if rec.get(name) == {}:
            rec[name] = []
    return rec


_PUT_RECORD_IF = (
    _LIB
    + r"""
local raw = redis.call('GET', KEYS[1])
if not raw then return 'conflict:' .. ARGV[3] .. ' does not exist' end
local err = check_expect(cjson.decode(raw), cjson.decode(ARGV[2]), ARGV[3])
if err then return err end
redis.call('SET', KEYS[1], ARGV[1])
return 'ok'
"""
)


_DROP_NODE = r"""
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local before = cjson.decode(ARGV[2])
if before ~= cjson.null and (tonumber(cjson.decode(raw).seen) or 0) >= before then
  return 0
end
return redis.call('HDEL', KEYS[1], ARGV[1])
"""


def connect(url: str, max_connections: int = 100, wait_s: float = 10.0) -> aioredis.Redis:
    """A client whose pool makes a command wait up to ``wait_s`` for a free connection
    when all ``max_connections`` are busy (redis-py's default pool fails at once, which
    under load turned a busy moment into refused events and half-done operations)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, decode_responses=True, max_connections=max_connections, timeout=wait_s
    )
    return aioredis.Redis.from_pool(pool)


def _raise_for(result: str, what: str) -> None:
    if result == "not_found":
        raise NotFound(f"no {what}")
    if result.startswith("conflict:"):
        raise Conflict(result.removeprefix("conflict:"))


class RedisStore:
    durable = True  # with the persistence the README asks for (appendfsync always)
    shared = True  # several nodes: live state belongs to whichever node holds it

    def __init__(self, url: str, prefix: str = "sc") -> None:
        self.prefix = prefix
        self._redis = connect(url)
        self._create_session = self._redis.register_script(_CREATE_SESSION)
        self._update = self._redis.register_script(_UPDATE)
        self._put_presence = self._redis.register_script(_PUT_PRESENCE)
        self._reserve = self._redis.register_script(_RESERVE)
        self._add_document = self._redis.register_script(_ADD_DOCUMENT)
        self._create_case = self._redis.register_script(_CREATE_CASE)
        self._record_outcome = self._redis.register_script(_RECORD_OUTCOME)
        self._put_record_if = self._redis.register_script(_PUT_RECORD_IF)
        self._drop_node = self._redis.register_script(_DROP_NODE)

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()

    async def durability_problem(self) -> str | None:
        """Redis answers a write once it is in its append-only file and, with
        ``appendfsync always``, fsynced: the only setting under which an acknowledged
        ``case.submit`` survives Redis (or its machine) crashing."""
        try:
            config = await self._redis.config_get("appendonly")
            config |= await self._redis.config_get("appendfsync")
        except ResponseError as exc:  # CONFIG renamed or disabled (managed Redis)
            return (f"cannot read Redis's persistence settings ({exc}); make sure it runs "
                    "with appendonly yes and appendfsync always")
        if config.get("appendonly") != "yes" or config.get("appendfsync") != "always":
            return (f"Redis runs with appendonly {config.get('appendonly')}, appendfsync "
                    f"{config.get('appendfsync')}: a crash of Redis loses writes already "
                    "acknowledged (receipts, decisions); set appendonly yes and "
                    "appendfsync always")
        return None

    async def create_session(self, session: Session) -> None:
        result = await self._create_session(
            keys=[self._key("s", session.id)],
            args=[self.prefix, json.dumps(session.to_dict())],
        )
        _raise_for(result, f"session {session.id}")

    async def get_session(self, session_id: str) -> Session | None:
        raw = await self._redis.get(self._key("s", session_id))
        return Session.from_dict(_decode(raw)) if raw is not None else None

    async def get_sessions(self, session_ids: Sequence[str]) -> list[Session | None]:
        if not session_ids:
            return []
        raws = await self._redis.mget([self._key("s", i) for i in session_ids])
        return [Session.from_dict(_decode(raw)) if raw is not None else None for raw in raws]

    async def _cas(self, kind: str, key: str, changes: Mapping[str, Any], expect: Expect | None):
        result = await self._update(
            keys=[key],
            args=[
                self.prefix,
                json.dumps(dict(changes)),
                json.dumps({k: list(v) for k, v in (expect or {}).items()}),
                kind,
            ],
        )
        _raise_for(result, key)
        return _decode(result)

    async def update_session(
        self, session_id: str, changes: Mapping[str, Any], expect: Expect | None = None
    ) -> Session:
        rec = await self._cas("session", self._key("s", session_id), changes, expect)
        return Session.from_dict(rec)

    async def queue(self, department_id: str) -> list[str]:
        return await self._redis.zrange(self._key("q", department_id), 0, -1)

    async def due_sessions(self, now: float, limit: int = 100) -> list[Session]:
        ids = await self._redis.zrangebyscore(self._key("dl"), "-inf", now, start=0, num=limit)
        if not ids:
            return []
        raws = await self._redis.mget([self._key("s", sid) for sid in ids])
        return [Session.from_dict(_decode(raw)) for raw in raws if raw is not None]

    async def live_sessions(self) -> list[Session]:
        ids = sorted(await self._redis.smembers(self._key("live")))
        if not ids:
            return []
        raws = await self._redis.mget([self._key("s", sid) for sid in ids])
        return [Session.from_dict(_decode(raw)) for raw in raws if raw is not None]

    async def reserve(
        self, department_id: str, now: float, expires_at: float
    ) -> tuple[Session, Presence] | None:
        result = await self._reserve(keys=[], args=[self.prefix, department_id, now, expires_at])
        if not result:
            return None
        session_raw, presence_raw = result
        return Session.from_dict(_decode(session_raw)), Presence.from_dict(_decode(presence_raw))

    async def get_presence(self, staff_id: str) -> Presence | None:
        raw = await self._redis.get(self._key("p", staff_id))
        return Presence.from_dict(_decode(raw)) if raw is not None else None

    async def put_presence(self, presence: Presence) -> None:
        await self._put_presence(
            keys=[self._key("p", presence.staff_id)],
            args=[self.prefix, json.dumps(presence.to_dict())],
        )

    async def update_presence(
        self, staff_id: str, changes: Mapping[str, Any], expect: Expect | None = None
    ) -> Presence:
        rec = await self._cas("presence", self._key("p", staff_id), changes, expect)
        return Presence.from_dict(rec)

    async def list_presence(self) -> list[Presence]:
        ids = sorted(await self._redis.smembers(self._key("staff")))
        if not ids:
            return []
        raws = await self._redis.mget([self._key("p", sid) for sid in ids])
        return [Presence.from_dict(_decode(raw)) for raw in raws if raw is not None]

    async def available_staff(self, department_id: str) -> list[str]:
        return await self._redis.zrange(self._key("av", department_id), 0, -1)

    # Documents and verification results are written whole and never merged in Lua, so
    # they go through Python's json (cjson would turn their empty lists into objects).

    async def add_document(self, document: Mapping[str, Any]) -> None:
        document_id = document["document_id"]
        created = await self._add_document(
            keys=[self._key("doc", document_id), self._key("sdocs", document["session_id"])],
            args=[json.dumps(dict(document)), document_id],
        )
        if not created:
            raise Conflict(f"document {document_id} exists")

    async def get_document(self, document_id: str) -> dict[str, Any] | None:
        raw = await self._redis.get(self._key("doc", document_id))
        return json.loads(raw) if raw is not None else None

    async def session_documents(self, session_id: str) -> list[dict[str, Any]]:
        ids = await self._redis.lrange(self._key("sdocs", session_id), 0, -1)
        if not ids:
            return []
        raws = await self._redis.mget([self._key("doc", i) for i in ids])
        return [json.loads(raw) for raw in raws if raw is not None]

    async def put_verification(self, session_id: str, result: Mapping[str, Any]) -> None:
        await self._redis.set(self._key("ver", session_id), json.dumps(dict(result)))

    async def get_verification(self, session_id: str) -> dict[str, Any] | None:
        raw = await self._redis.get(self._key("ver", session_id))
        return json.loads(raw) if raw is not None else None

    async def put_record(
        self, kind: str, record_id: str, record: Mapping[str, Any], create: bool = False,
        expect: Expect | None = None,
    ) -> None:
        if expect is not None:
            result = await self._put_record_if(
                keys=[self._key("rec", kind, record_id)],
                args=[json.dumps(dict(record)), json.dumps(dict(expect)),
                      f"{kind} {record_id}"],
            )
            _raise_for(result, f"{kind} {record_id}")
            return
        stored = await self._redis.set(
            self._key("rec", kind, record_id), json.dumps(dict(record)), nx=create or None
        )
        if create and not stored:
            raise Conflict(f"{kind} {record_id} exists")

    async def get_record(self, kind: str, record_id: str) -> dict[str, Any] | None:
        raw = await self._redis.get(self._key("rec", kind, record_id))
        return json.loads(raw) if raw is not None else None

    async def delete_record(self, kind: str, record_id: str) -> None:
        await self._redis.delete(self._key("rec", kind, record_id))

    async def beat_node(self, node_id: str, info: Mapping[str, Any]) -> bool:
        return bool(await self._redis.hset(self._key("nodes"), node_id, json.dumps(dict(info))))

    async def nodes(self) -> dict[str, dict[str, Any]]:
        raw = await self._redis.hgetall(self._key("nodes"))
        return {node_id: json.loads(info) for node_id, info in raw.items()}

    async def drop_node(self, node_id: str, seen_before: float | None = None) -> bool:
        return bool(await self._drop_node(
            keys=[self._key("nodes")], args=[node_id, json.dumps(seen_before)]))

    async def create_case(self, case: Mapping[str, Any]) -> None:
        receipt_no = case["receipt_no"]
        created = await self._create_case(
            keys=[
                self._key("case", receipt_no),
                self._key("cases", case["state"]),
                self._key("scases", case["session_id"]),
            ],
            args=[json.dumps(dict(case)), receipt_no, case["submitted_at"]],
        )
        if not created:
            raise Conflict(f"case {receipt_no} exists")

    async def get_case(self, receipt_no: str) -> dict[str, Any] | None:
        raw = await self._redis.get(self._key("case", receipt_no))
        return json.loads(raw) if raw is not None else None

    async def update_case(
        self, receipt_no: str, changes: Mapping[str, Any], expect: Expect | None = None
    ) -> dict[str, Any]:
        key = self._key("case", receipt_no)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None:
                        raise NotFound(f"no case {receipt_no}")
                    case = json.loads(raw)
                    check_expect(case, expect, f"case {receipt_no}")
                    updated = {**case, **changes}
                    pipe.multi()
                    pipe.set(key, json.dumps(updated))
                    if updated["state"] != case["state"]:
                        pipe.zrem(self._key("cases", case["state"]), receipt_no)
                        pipe.zadd(
                            self._key("cases", updated["state"]),
                            {receipt_no: updated["submitted_at"]},
                        )
                    await pipe.execute()
                    return updated
                except WatchError:
                    continue

    async def _cases_by_ids(self, ids: list[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        raws = await self._redis.mget([self._key("case", i) for i in ids])
        return [json.loads(raw) for raw in raws if raw is not None]

    async def cases(self, state: str) -> list[dict[str, Any]]:
        return await self._cases_by_ids(await self._redis.zrange(self._key("cases", state), 0, -1))

    async def session_cases(self, session_id: str) -> list[dict[str, Any]]:
        found = await self._cases_by_ids(
            sorted(await self._redis.smembers(self._key("scases", session_id)))
        )
        return sorted(found, key=lambda c: (c["submitted_at"], c["receipt_no"]))

    async def record_outcome(
        self, department_id: str, session_id: str, kind: str, wait_s: float, at: float
    ) -> None:
        await self._record_outcome(
            keys=[self._key("out", department_id), self._key("outseen", session_id, kind)],
            args=[json.dumps([session_id, kind, wait_s]), at, at - STATISTICS_RETENTION_S,
                  int(STATISTICS_RETENTION_S)],
        )

    async def outcomes(self, department_id: str, since: float) -> list[Outcome]:
        entries = await self._redis.zrangebyscore(
            self._key("out", department_id), f"({since}", "+inf", withscores=True
        )
        found = []
        for member, at in entries:
            _, kind, wait_s = json.loads(member)
            found.append(Outcome(kind, float(wait_s), float(at)))
        return found

    async def record_sample(
        self, department_id: str, minute: int, waiting: int, longest_wait_s: float
    ) -> None:
        key = self._key("samples", department_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, minute, minute)
            pipe.zadd(key, {json.dumps([minute, waiting, longest_wait_s]): minute})
            pipe.zremrangebyscore(key, "-inf", minute - STATISTICS_RETENTION_S // 60)
            await pipe.execute()

    async def samples(self, department_id: str, since_minute: int) -> list[dict[str, Any]]:
        entries = await self._redis.zrangebyscore(
            self._key("samples", department_id), since_minute, "+inf"
        )
        found = []
        for member in entries:
            minute, waiting, longest = json.loads(member)
            found.append({"minute": minute, "waiting": waiting, "longest_wait_s": longest})
        return found

    async def hit(self, key: str, window_s: float, now: float) -> int:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(self._key("hits", key))
            pipe.expire(self._key("hits", key), max(1, round(window_s)), nx=True)
            count, _ = await pipe.execute()
        return int(count)

    async def reset_hits(self, key: str) -> None:
        await self._redis.delete(self._key("hits", key))
