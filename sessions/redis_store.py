"""The Redis store: shared state for many nodes.

Records are JSON strings; every write and its index maintenance run in one Lua script
(:mod:`sessions.redis_scripts`), so each operation is atomic across nodes (see
:mod:`sessions.store` for the indexes); every key name is in :mod:`sessions.redis_keys`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError, WatchError

from . import redis_keys as k
from . import redis_scripts as scripts
from .errors import Conflict, NotFound
from .presence import Presence
from .records import Case, Document
from .session import Session
from .statistics import Outcome
from .store import STATISTICS_RETENTION_S, Expect, check_expect

# cjson turns an empty JSON array into an empty object; these fields are lists.
_LIST_FIELDS = ("declined_by", "departments")


def _decode(raw: str | bytes) -> dict[str, Any]:
    rec = json.loads(raw)
    for name in _LIST_FIELDS:
        if rec.get(name) == {}:
            rec[name] = []
    return rec


# The client decodes replies (``decode_responses=True`` in :func:`connect`): what
# redis-py types as ``bytes | str`` is a str here.
def _str(reply: bytes | str) -> str:
    if not isinstance(reply, str):
        raise TypeError(f"expected a decoded Redis reply, got {type(reply).__name__}")
    return reply


def _strs(replies: Iterable[Any]) -> list[str]:
    """Members of a reply (a list or set of strings: no scores)."""
    return [_str(reply) for reply in replies]


def _scored(replies: Iterable[Any]) -> list[tuple[str, float]]:
    """(member, score) pairs of a sorted-set reply read ``withscores``."""
    return [(_str(member), float(score)) for member, score in replies]


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
        self._create_session = self._redis.register_script(scripts.CREATE_SESSION)
        self._update = self._redis.register_script(scripts.UPDATE)
        self._put_presence = self._redis.register_script(scripts.PUT_PRESENCE)
        self._reserve = self._redis.register_script(scripts.RESERVE)
        self._add_document = self._redis.register_script(scripts.ADD_DOCUMENT)
        self._create_case = self._redis.register_script(scripts.CREATE_CASE)
        self._record_outcome = self._redis.register_script(scripts.RECORD_OUTCOME)
        self._put_record_if = self._redis.register_script(scripts.PUT_RECORD_IF)
        self._drop_node = self._redis.register_script(scripts.DROP_NODE)

    def _key(self, name: str, *parts: str) -> str:
        """The key of table entry ``name`` (see :mod:`sessions.redis_keys`)."""
        return ":".join((self.prefix, name, *parts))

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
            keys=[self._key(k.SESSION, session.id)],
            args=[self.prefix, json.dumps(session.to_dict())],
        )
        _raise_for(result, f"session {session.id}")

    async def kiosk_session(self, kiosk_id: str) -> Session | None:
        session_id = await self._redis.get(self._key(k.KIOSK_LIVE, kiosk_id))
        session = await self.get_session(_str(session_id)) if session_id else None
        return session if session is not None and session.live else None

    async def get_session(self, session_id: str) -> Session | None:
        raw = await self._redis.get(self._key(k.SESSION, session_id))
        return Session.from_dict(_decode(raw)) if raw is not None else None

    async def get_sessions(self, session_ids: Sequence[str]) -> list[Session | None]:
        if not session_ids:
            return []
        raws = await self._redis.mget([self._key(k.SESSION, i) for i in session_ids])
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
        rec = await self._cas("session", self._key(k.SESSION, session_id), changes, expect)
        return Session.from_dict(rec)

    async def queue(self, department_id: str) -> list[str]:
        return _strs(await self._redis.zrange(self._key(k.QUEUE, department_id), 0, -1))

    async def due_sessions(self, now: float, limit: int = 100) -> list[Session]:
        ids = _strs(await self._redis.zrangebyscore(
            self._key(k.DEADLINES), "-inf", now, start=0, num=limit))
        if not ids:
            return []
        raws = await self._redis.mget([self._key(k.SESSION, sid) for sid in ids])
        return [Session.from_dict(_decode(raw)) for raw in raws if raw is not None]

    async def live_sessions(self) -> list[Session]:
        ids = sorted(_strs(await self._redis.smembers(self._key(k.LIVE))))
        if not ids:
            return []
        raws = await self._redis.mget([self._key(k.SESSION, sid) for sid in ids])
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
        raw = await self._redis.get(self._key(k.PRESENCE, staff_id))
        return Presence.from_dict(_decode(raw)) if raw is not None else None

    async def put_presence(self, presence: Presence) -> None:
        await self._put_presence(
            keys=[self._key(k.PRESENCE, presence.staff_id)],
            args=[self.prefix, json.dumps(presence.to_dict())],
        )

    async def update_presence(
        self, staff_id: str, changes: Mapping[str, Any], expect: Expect | None = None
    ) -> Presence:
        rec = await self._cas("presence", self._key(k.PRESENCE, staff_id), changes, expect)
        return Presence.from_dict(rec)

    async def list_presence(self) -> list[Presence]:
        ids = sorted(_strs(await self._redis.smembers(self._key(k.STAFF))))
        if not ids:
            return []
        raws = await self._redis.mget([self._key(k.PRESENCE, sid) for sid in ids])
        return [Presence.from_dict(_decode(raw)) for raw in raws if raw is not None]

    async def available_staff(self, department_id: str) -> list[str]:
        return _strs(await self._redis.zrange(self._key(k.AVAILABLE, department_id), 0, -1))

    # Documents and verification results are written whole and never merged in Lua, so
    # they go through Python's json (cjson would turn their empty lists into objects).

    async def add_document(self, document: Document) -> None:
        document_id = document.document_id
        created = await self._add_document(
            keys=[self._key(k.DOCUMENT, document_id),
                  self._key(k.SESSION_DOCUMENTS, document.session_id)],
            args=[json.dumps(document.to_dict()), document_id],
        )
        if not created:
            raise Conflict(f"document {document_id} exists")

    async def get_document(self, document_id: str) -> Document | None:
        raw = await self._redis.get(self._key(k.DOCUMENT, document_id))
        return Document.from_dict(json.loads(raw)) if raw is not None else None

    async def session_documents(self, session_id: str) -> list[Document]:
        ids = _strs(
            await self._redis.lrange(self._key(k.SESSION_DOCUMENTS, session_id), 0, -1))
        if not ids:
            return []
        raws = await self._redis.mget([self._key(k.DOCUMENT, i) for i in ids])
        return [Document.from_dict(json.loads(raw)) for raw in raws if raw is not None]

    async def put_verification(self, session_id: str, result: Mapping[str, Any]) -> None:
        await self._redis.set(self._key(k.VERIFICATION, session_id), json.dumps(dict(result)))

    async def get_verification(self, session_id: str) -> dict[str, Any] | None:
        raw = await self._redis.get(self._key(k.VERIFICATION, session_id))
        return json.loads(raw) if raw is not None else None

    async def put_record(
        self, kind: str, record_id: str, record: Mapping[str, Any], create: bool = False,
        expect: Expect | None = None,
    ) -> None:
        if expect is not None:
            result = await self._put_record_if(
                keys=[self._key(k.RECORD, kind, record_id)],
                args=[json.dumps(dict(record)), json.dumps(dict(expect)),
                      f"{kind} {record_id}"],
            )
            _raise_for(result, f"{kind} {record_id}")
            return
        stored = await self._redis.set(
            self._key(k.RECORD, kind, record_id), json.dumps(dict(record)), nx=create
        )
        if create and not stored:
            raise Conflict(f"{kind} {record_id} exists")

    async def get_record(self, kind: str, record_id: str) -> dict[str, Any] | None:
        raw = await self._redis.get(self._key(k.RECORD, kind, record_id))
        return json.loads(raw) if raw is not None else None

    async def delete_record(self, kind: str, record_id: str) -> None:
        await self._redis.delete(self._key(k.RECORD, kind, record_id))

    async def beat_node(self, node_id: str, info: Mapping[str, Any]) -> bool:
        return bool(await self._redis.hset(self._key(k.NODES), node_id, json.dumps(dict(info))))

    async def nodes(self) -> dict[str, dict[str, Any]]:
        raw = await self._redis.hgetall(self._key(k.NODES))
        return {_str(node_id): json.loads(info) for node_id, info in raw.items()}

    async def drop_node(self, node_id: str, seen_before: float | None = None) -> bool:
        return bool(await self._drop_node(
            keys=[self._key(k.NODES)], args=[node_id, json.dumps(seen_before)]))

    async def create_case(self, case: Case) -> None:
        receipt_no = case.receipt_no
        created = await self._create_case(
            keys=[
                self._key(k.CASE, receipt_no),
                self._key(k.CASES_BY_STATE, case.state),
                self._key(k.SESSION_CASES, case.session_id),
            ],
            args=[json.dumps(case.to_dict()), receipt_no, case.submitted_at],
        )
        if not created:
            raise Conflict(f"case {receipt_no} exists")

    async def get_case(self, receipt_no: str) -> Case | None:
        raw = await self._redis.get(self._key(k.CASE, receipt_no))
        return Case.from_dict(json.loads(raw)) if raw is not None else None

    async def update_case(
        self, receipt_no: str, changes: Mapping[str, Any], expect: Expect | None = None
    ) -> Case:
        key = self._key(k.CASE, receipt_no)
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
                        pipe.zrem(self._key(k.CASES_BY_STATE, case["state"]), receipt_no)
                        pipe.zadd(
                            self._key(k.CASES_BY_STATE, updated["state"]),
                            {receipt_no: updated["submitted_at"]},
                        )
                    await pipe.execute()
                    return Case.from_dict(updated)
                except WatchError:
                    continue

    async def _cases_by_ids(self, ids: list[str]) -> list[Case]:
        if not ids:
            return []
        raws = await self._redis.mget([self._key(k.CASE, i) for i in ids])
        return [Case.from_dict(json.loads(raw)) for raw in raws if raw is not None]

    async def cases(self, state: str) -> list[Case]:
        return await self._cases_by_ids(
            _strs(await self._redis.zrange(self._key(k.CASES_BY_STATE, state), 0, -1)))

    async def session_cases(self, session_id: str) -> list[Case]:
        found = await self._cases_by_ids(
            sorted(_strs(await self._redis.smembers(self._key(k.SESSION_CASES, session_id))))
        )
        return sorted(found, key=lambda c: (c.submitted_at, c.receipt_no))

    async def record_outcome(
        self, department_id: str, session_id: str, kind: str, wait_s: float, at: float
    ) -> None:
        await self._record_outcome(
            keys=[self._key(k.OUTCOMES, department_id),
                  self._key(k.OUTCOME_SEEN, session_id, kind)],
            args=[json.dumps([session_id, kind, wait_s]), at, at - STATISTICS_RETENTION_S,
                  int(STATISTICS_RETENTION_S)],
        )

    async def outcomes(self, department_id: str, since: float) -> list[Outcome]:
        entries = await self._redis.zrangebyscore(
            self._key(k.OUTCOMES, department_id), f"({since}", "+inf", withscores=True
        )
        found = []
        for member, at in _scored(entries):
            _, kind, wait_s = json.loads(member)
            found.append(Outcome(kind, float(wait_s), at))
        return found

    async def record_sample(
        self, department_id: str, minute: int, waiting: int, longest_wait_s: float
    ) -> None:
        key = self._key(k.SAMPLES, department_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, minute, minute)
            pipe.zadd(key, {json.dumps([minute, waiting, longest_wait_s]): minute})
            pipe.zremrangebyscore(key, "-inf", minute - STATISTICS_RETENTION_S // 60)
            await pipe.execute()

    async def samples(self, department_id: str, since_minute: int) -> list[dict[str, Any]]:
        entries = await self._redis.zrangebyscore(
            self._key(k.SAMPLES, department_id), since_minute, "+inf"
        )
        found = []
        for member in _strs(entries):
            minute, waiting, longest = json.loads(member)
            found.append({"minute": minute, "waiting": waiting, "longest_wait_s": longest})
        return found

    async def hit(self, key: str, window_s: float, now: float) -> int:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(self._key(k.HITS, key))
            pipe.expire(self._key(k.HITS, key), max(1, round(window_s)), nx=True)
            count, _ = await pipe.execute()
        return int(count)

    async def reset_hits(self, key: str) -> None:
        await self._redis.delete(self._key(k.HITS, key))
