"""Payload models of docs/protocol.md's client → server events (validated with pydantic)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

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


Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Text = Annotated[str, StringConstraints(max_length=1000)]


class Rect(Payload):
    """A rectangle on a page, in fractions of the page's width and height."""

    type: Literal["rect"]
    x: Fraction
    y: Fraction
    w: Fraction
    h: Fraction
    label: Annotated[str, StringConstraints(max_length=200)] | None = None


class Arrow(Payload):
    """An arrow from (x1, y1) to its head at (x2, y2), in fractions of the page."""

    type: Literal["arrow"]
    x1: Fraction
    y1: Fraction
    x2: Fraction
    y2: Fraction
    label: Annotated[str, StringConstraints(max_length=200)] | None = None


Shape = Annotated[Rect | Arrow, Field(discriminator="type")]


class DocumentAnnotate(Payload):
    session_id: SessionId
    document_id: Identifier
    page: Annotated[int, Field(ge=1, le=10_000)]
    shapes: Annotated[list[Shape], Field(max_length=50)]


class RescanRequest(Payload):
    session_id: SessionId
    document_id: Identifier
    reason: Text = ""


class SignatureRequest(Payload):
    session_id: SessionId
    document_id: Identifier
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]


Point = Annotated[list[float], Field(min_length=2, max_length=3)]  # x, y (0–1), t? (ms)


class SignatureSubmit(Payload):
    request_id: Identifier
    # A PNG of the pad, base64 (≤ ~150 KB of image), and/or the strokes as drawn.
    png_base64: Annotated[str, StringConstraints(max_length=200_000)] | None = None
    strokes: Annotated[list[Annotated[list[Point], Field(max_length=2000)]],
                       Field(max_length=200)] | None = None

    @model_validator(mode="after")
    def something_signed(self) -> SignatureSubmit:
        if not self.png_base64 and not self.strokes:
            raise ValueError("png_base64 or strokes is required")
        return self


class CaseDecide(Payload):
    receipt_no: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    decision: Literal["approved", "rejected"]
    reason: Text | None = None
    result_document_ids: Annotated[list[Identifier], Field(max_length=20)] | None = None


class PrintSend(Payload):
    session_id: SessionId
    document_id: Identifier


class PrintDone(Payload):
    job_id: Identifier
    status: Literal["printed", "failed"]


class PrintLookup(Payload):
    receipt_no: Annotated[str, StringConstraints(min_length=1, max_length=40)]


class CallReassign(Payload):
    session_id: SessionId
    staff_id: Identifier | None = None
    department_id: Identifier | None = None
