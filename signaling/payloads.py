"""Payload models of PROTOCOL.md's client → server events (validated with pydantic)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

SessionId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,128}$")]
Sdp = Annotated[str, StringConstraints(min_length=10, max_length=64 * 1024)]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class Payload(BaseModel):
    # Unknown fields are ignored (clients may be newer than the server).
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


class CallRequest(Payload):
    service_id: Identifier
    language: Literal["en", "zh-Hant", "zh-Hans"] = "zh-Hant"


class SessionRef(Payload):
    session_id: SessionId


class RtcOffer(Payload):
    session_id: SessionId
    sdp: Sdp
    type: Literal["offer"]


class PresenceSet(Payload):
    state: Literal["available", "away"]


class Empty(Payload):
    pass


class Login(Payload):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


def describe(exc: ValidationError) -> str:
    """A one-line message naming the first invalid field."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "payload"
    return f"{where}: {err.get('msg', 'invalid')}"


class MonitorStart(Payload):
    session_id: SessionId
    mode: Literal["silent", "whisper", "barge"]


class MonitorOffer(RtcOffer):
    purpose: Literal["monitor"]


class VerificationStart(Payload):
    session_id: SessionId
    id_document_id: Identifier


class VerificationChallenge(Payload):
    session_id: SessionId
    challenge: Literal["turn_left", "turn_right", "blink"]
