"""The store's interfaces, one per concern (each consumer depends on the ones it uses):
sessions with their queue and deadline indexes, staff presence with its availability
index, the documents' index, cases, verification results, small records, nodes,
statistics and rate limits. :class:`Store` is all of them, as each engine implements it.

Three implementations, chosen in :mod:`sessions.factory`:
:class:`sessions.sqlite_store.SQLiteStore` (one node, the embedded default: a file under
the data dir), :class:`sessions.redis_store.RedisStore` (many nodes) and
:class:`sessions.memory_store.MemoryStore` (throw-away). Indexes are derived
by the store from the records, in the same atomic step as each write:

- a session is in its department's queue (ordered by ``queue_score``) exactly while its
  state is ``queued``;
- a session with a ``deadline`` is in the deadline index;
- a session is in the live index exactly while it is queued, ringing or connected, and a
  kiosk has at most one live session (creating a second is a :class:`Conflict`, decided
  in the same atomic step on every store: two requests at once, on two nodes, make one);
- a staff member is in each of their departments' availability index (ordered by
  ``idle_since``) exactly while their state is ``available``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from .errors import Conflict
from .presence import Presence
from .records import Case, Document
from .session import Session
from .statistics import Outcome

# Outcomes and samples are kept this long (the dashboard shows the last hour).
STATISTICS_RETENTION_S = 24 * 3600

# Field → the values it must have for a compare-and-set update to go ahead.
Expect = Mapping[str, Sequence[Any]]


def check_expect(raw: Mapping[str, Any], expect: Expect | None, what: str) -> None:
    for name, allowed in (expect or {}).items():
        if raw.get(name) not in allowed:
            raise Conflict(f"{what}: {name} is {raw.get(name)!r}, expected one of {list(allowed)}")


class SessionStore(Protocol):
    async def create_session(self, session: Session) -> None:
        """Store a new session; :class:`Conflict` if the id is taken or its kiosk has a
        live session already (the message names it)."""

    async def kiosk_session(self, kiosk_id: str) -> Session | None:
        """The kiosk's live session, if it has one."""

    async def get_session(self, session_id: str) -> Session | None: ...

    async def get_sessions(self, session_ids: Sequence[str]) -> list[Session | None]:
        """Several sessions at once (None for one that does not exist), in order."""

    async def update_session(
        self, session_id: str, changes: Mapping[str, Any], expect: Expect | None = None
    ) -> Session:
        """Apply ``changes`` atomically if every ``expect`` field has one of its values.

        Raises :class:`NotFound` if there is no such session and :class:`Conflict`
        (naming the current state) if an expectation fails.
        """

    async def queue(self, department_id: str) -> list[str]:
        """Session ids waiting in ``department_id``, head first."""

    async def due_sessions(self, now: float, limit: int = 100) -> list[Session]:
        """Sessions whose deadline is at or before ``now``."""

    async def live_sessions(self) -> list[Session]:
        """Every queued, ringing or connected session."""

    async def reserve(
        self, department_id: str, now: float, expires_at: float
    ) -> tuple[Session, Presence] | None:
        """Atomically offer the first waiting session of the department whose kiosk is
        connected (no ``kiosk_lost_at``) to the longest-idle available staff member who
        has not declined it.

        The session becomes ``ringing`` (``offered_to``, ``offer_expires_at``,
        ``deadline``) and the staff member ``ringing``; both leave their indexes.
        """


class PresenceStore(Protocol):
    async def get_presence(self, staff_id: str) -> Presence | None: ...

    async def put_presence(self, presence: Presence) -> None: ...

    async def update_presence(
        self, staff_id: str, changes: Mapping[str, Any], expect: Expect | None = None
    ) -> Presence:
        """Compare-and-set, as :meth:`SessionStore.update_session`."""

    async def list_presence(self) -> list[Presence]: ...

    async def available_staff(self, department_id: str) -> list[str]:
        """Available staff of the department, longest idle first."""


class DocumentIndex(Protocol):
    async def add_document(self, document: Document) -> None:
        """Index a stored document; raises :class:`Conflict` if the id is taken."""

    async def get_document(self, document_id: str) -> Document | None: ...

    async def session_documents(self, session_id: str) -> list[Document]:
        """The session's documents, oldest first."""


class VerificationStore(Protocol):
    async def put_verification(self, session_id: str, result: Mapping[str, Any]) -> None:
        """Store the session's latest identity verification result (replacing any)."""

    async def get_verification(self, session_id: str) -> dict[str, Any] | None: ...


class RecordStore(Protocol):
    """Small records by kind and id: signature requests and signatures, print jobs,
    sign-in lockouts, which node holds a socket or a call's media."""

    async def put_record(
        self, kind: str, record_id: str, record: Mapping[str, Any], create: bool = False,
        expect: Expect | None = None,
    ) -> None:
        """Store a whole record; with ``create``, raise :class:`Conflict` if it exists;
        with ``expect``, if it does not exist or its fields do not match
        (compare-and-set)."""

    async def get_record(self, kind: str, record_id: str) -> dict[str, Any] | None: ...

    async def delete_record(self, kind: str, record_id: str) -> None:
        """Forget a record (no error if there is none)."""


class CaseStore(Protocol):
    async def create_case(self, case: Case) -> None:
        """A new application, keyed by ``receipt_no`` (:class:`Conflict` if taken), in
        the index of its ``state``."""

    async def get_case(self, receipt_no: str) -> Case | None: ...

    async def update_case(
        self, receipt_no: str, changes: Mapping[str, Any], expect: Expect | None = None
    ) -> Case:
        """Compare-and-set of the case's fields (JSON values, as :meth:`Case.to_dict`
        has them), as :meth:`SessionStore.update_session`; the state index follows."""

    async def cases(self, state: str) -> list[Case]:
        """Cases in ``state``, oldest submission first."""

    async def session_cases(self, session_id: str) -> list[Case]: ...


class NodeStore(Protocol):
    async def beat_node(self, node_id: str, info: Mapping[str, Any]) -> bool:
        """A node says it is alive: ``info`` (its ``seen`` time, media address, ...)
        replaces what it said before. True when the node was not registered (new, or
        dropped meanwhile)."""

    async def nodes(self) -> dict[str, dict[str, Any]]:
        """Every node that has beaten and not been dropped, by id."""

    async def drop_node(self, node_id: str, seen_before: float | None = None) -> bool:
        """Remove a node (stopped, or found dead: only if its ``seen`` is before
        ``seen_before``, checked in the same atomic step); True for the one caller that
        removed it, so that exactly one node recovers a dead node's work."""


class StatsStore(Protocol):
    async def record_outcome(
        self, department_id: str, session_id: str, kind: str, wait_s: float, at: float
    ) -> None:
        """Count a call that left its department's queue (once per session and kind);
        outcomes older than a day are dropped."""

    async def outcomes(self, department_id: str, since: float) -> list[Outcome]:
        """The department's outcomes after ``since``, oldest first."""

    async def record_sample(
        self, department_id: str, minute: int, waiting: int, longest_wait_s: float
    ) -> None:
        """The queue as seen in one minute (several nodes: the last write wins)."""

    async def samples(self, department_id: str, since_minute: int) -> list[dict[str, Any]]:
        """``[{"minute", "waiting", "longest_wait_s"}]`` from ``since_minute`` on."""


class RateLimits(Protocol):
    async def hit(self, key: str, window_s: float, now: float) -> int:
        """Count one event under ``key`` (failed sign-ins, say); the count starts again
        ``window_s`` after its first event. Returns the count including this one."""

    async def reset_hits(self, key: str) -> None: ...


class Store(SessionStore, PresenceStore, DocumentIndex, VerificationStore, RecordStore,
            CaseStore, NodeStore, StatsStore, RateLimits, Protocol):
    # Whether what is acknowledged outlives the process, and whether other nodes share
    # this store (then live state is theirs too: a restarting node re-derives nothing).
    durable: bool
    shared: bool

    async def ping(self) -> None:
        """Raise if the store cannot serve requests."""

    async def durability_problem(self) -> str | None:
        """Why an acknowledged write might not survive a crash of the store, or None."""

    async def close(self) -> None: ...
