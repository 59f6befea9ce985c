"""The session a log line is about, carried in a context variable so every layer's logs
name it without passing it around (set where a request or event names a session)."""

from __future__ import annotations

import contextvars

session_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "session_id", default=None
)


def bind_session(session_id: str | None) -> None:
    """Name the session for the rest of this task (an event, a request)."""
    session_id_var.set(session_id)
