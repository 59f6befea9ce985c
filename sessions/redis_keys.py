"""Every key the Redis store writes, in one table: ``PREFIX:NAME[:PART...]`` (NAME one of
the constants below), the prefix
being the deployment's (``SMARTCOUNTER_REDIS_PREFIX``). The Lua scripts
(:mod:`sessions.redis_scripts`) build the same names from the same table.

| name | type | holds |
|---|---|---|
| ``s:SESSION`` | string | a session (JSON) |
| ``q:DEPARTMENT`` | sorted set | queued sessions by queue score |
| ``live`` | set | sessions queued, ringing or connected |
| ``dl`` | sorted set | sessions by deadline |
| ``kl:KIOSK`` | string | the kiosk's live session (one at most) |
| ``p:STAFF`` | string | a staff member's presence (JSON) |
| ``av:DEPARTMENT`` | sorted set | available staff by idle-since |
| ``staff`` | set | every staff member with a presence |
| ``doc:DOCUMENT`` | string | a document's index entry (JSON) |
| ``sdocs:SESSION`` | list | the session's document ids, oldest first |
| ``ver:SESSION`` | string | the latest verification result (JSON) |
| ``rec:KIND:ID`` | string | a small record (JSON; see ``RecordStore``) |
| ``nodes`` | hash | node id → its last beat (JSON) |
| ``case:RECEIPT`` | string | an application (JSON) |
| ``cases:STATE`` | sorted set | receipt numbers by submission time |
| ``scases:SESSION`` | set | the session's receipt numbers |
| ``out:DEPARTMENT`` | sorted set | call outcomes by time |
| ``outseen:SESSION:KIND`` | string, expires | an outcome already counted |
| ``samples:DEPARTMENT`` | sorted set | per-minute queue samples |
| ``hits:KEY`` | string, expires | a rate-limit counter |

Beside the store: socket.io's channel ``PREFIX:sio`` and the nodes' request channels of
:mod:`signaling.node_link`.
"""

from __future__ import annotations

SESSION = "s"
QUEUE = "q"
LIVE = "live"
DEADLINES = "dl"
KIOSK_LIVE = "kl"
PRESENCE = "p"
AVAILABLE = "av"
STAFF = "staff"
DOCUMENT = "doc"
SESSION_DOCUMENTS = "sdocs"
VERIFICATION = "ver"
RECORD = "rec"
NODES = "nodes"
CASE = "case"
CASES_BY_STATE = "cases"
SESSION_CASES = "scases"
OUTCOMES = "out"
OUTCOME_SEEN = "outseen"
SAMPLES = "samples"
HITS = "hits"

# For the scripts: name → its table entry.
NAMES = {name: value for name, value in globals().items() if name.isupper()}
