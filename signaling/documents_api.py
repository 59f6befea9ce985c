"""Document upload and download (docs/protocol.md ``/sessions/{sid}/documents``,
``/documents/{id}``). Uploads stream to disk and are filed by
:class:`document_share.filing.DocumentFiling` (checked, durable, announced) before the
201 answer; a refused upload leaves nothing behind."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import BodyPartReader, web

from document_share.filing import DocumentFiling, Unreadable
from document_share.intake import Rejected
from document_share.pages import THUMBNAIL_WIDTH, PageError, served_width
from document_share.storage import TooLarge, Upload
from sessions.records import Document
from sessions.session import Session

from .http_common import ApiError, json_error, may_see, require, signed_or_required
from .keys import NODE, SERVICES
from .rate_limit import RateLimiter
from .signed_urls import UrlSigner

CHUNK = 256 * 1024
STALL_S = 30.0  # the longest an upload may send nothing
PRIVATE_FILE_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"}
logger = logging.getLogger(__name__)


def public_document(document: Document) -> dict[str, Any]:
    return {
        key: getattr(document, key)
        for key in ("document_id", "kind", "sha256", "pages", "content_type", "size", "created_at")
    }


def purged() -> web.Response:
    return json_error("not_found", "deleted under the retention policy; its sha256 stays on "
                      "record", status=410)


def rejected(status: int, message: str) -> web.Response:
    """An upload refused for what it is (400, 408, 409, 413, 415, 422)."""
    return json_error("bad_request" if status != 409 else "conflict", message, status)


async def _receive_file(part: BodyPartReader, upload: Upload) -> None:
    while chunk := await _unstalled(part.read_chunk(CHUNK)):
        await asyncio.to_thread(upload.write, chunk)


async def _unstalled(read):
    """A read of the upload's body, or 408 when no data comes for ``STALL_S``: a client
    trickling a byte now and then would hold the handler (and its file) for ever."""
    try:
        async with asyncio.timeout(STALL_S):
            return await read
    except TimeoutError:
        raise Rejected(408, f"the upload stalled: no data for {STALL_S:g} s") from None


async def upload_document(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    who = await require(request, "kiosk")
    # Limits first, before any work; their refusals at the limit's pace.
    uploads, unreadable = request.app[UPLOAD_LIMIT], request.app[UNREADABLE_LIMIT]
    if not uploads.allow(who.id):
        await uploads.hold(who.id, most=uploads.burst)
        return json_error("rate_limited", "too many uploads from this kiosk; wait a minute")
    if unreadable.spent(who.id):
        await uploads.hold(who.id, most=uploads.burst)
        return json_error("rate_limited", "too many documents from this kiosk could not be "
                          "read; wait a few minutes")
    session = await services.store.get_session(request.match_info["sid"])
    if session is None:
        return json_error("not_found", "no such session")
    if session.kiosk_id != who.id:
        return json_error("forbidden", "this session belongs to another kiosk")
    if not session.live:
        return rejected(409, f"the session is {session.state}; documents can no longer be added")
    if not request.content_type.startswith("multipart/"):
        return rejected(400, "send the document as multipart/form-data with 'file' and 'kind'")
    filing = request.app[FILING]
    upload = filing.begin()
    try:
        kind = await _receive(request, upload)
        document = await filing.file(session, upload, kind)
    except TooLarge as exc:
        upload.discard()
        services.metrics.uploads.labels("413").inc()
        return rejected(413, str(exc))
    except Rejected as exc:
        upload.discard()
        if isinstance(exc, Unreadable):
            unreadable.allow(who.id)
        services.metrics.uploads.labels(str(exc.status)).inc()
        return rejected(exc.status, str(exc))
    except (ValueError, AssertionError) as exc:  # aiohttp's multipart parser on bad framing
        upload.discard()
        return rejected(400, f"malformed multipart body: {exc}")
    except BaseException:
        upload.discard()
        raise
    services.metrics.uploads.labels("201").inc()
    services.metrics.upload_bytes.observe(upload.size)
    return web.json_response(
        {k: getattr(document, k) for k in ("document_id", "sha256", "pages", "kind")},
        status=201
    )


async def _receive(request: web.Request, upload: Upload) -> str | None:
    """The multipart body: its 'file' written to ``upload``; its 'kind', as sent."""
    kind: str | None = None
    got_file = False
    reader = await request.multipart()
    while (part := await _unstalled(reader.next())) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "kind":
            kind = (await _unstalled(part.read(decode=True)))[:64].decode(
                "utf-8", "replace").strip()
        elif part.name == "file" and not got_file:
            got_file = True
            await _receive_file(part, upload)
        else:
            await part.release()
    if not got_file:
        raise Rejected(400, "the 'file' field is missing")
    return kind


def announcer(app: web.Application) -> Callable[[Session, Document], Awaitable[None]]:
    """How a filed document reaches the officer of its session: ``document.added``."""
    async def announce(session: Session, document: Document) -> None:
        if session.staff_id:
            await app[NODE].notifier.to_staff(session.staff_id, "document.added", {
                "session_id": session.id,
                "document_id": document.document_id,
                "kind": document.kind,
                "pages": document.pages,
                "sha256": document.sha256,
                "thumbnail_url": page_url(app[SERVICES].signer, document.document_id, 1,
                                          THUMBNAIL_WIDTH),
            })

    return announce


def page_url(signer: UrlSigner, document_id: str, page: int, width: int) -> str:
    """A signed URL of a page image, loadable by ``<img>`` for a few minutes."""
    return signer.sign(f"/api/v1/documents/{document_id}/pages/{page}.png", w=width)


async def get_document(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    document, _ = await _readable_document(request)
    path = services.blobs.path_of(document.sha256)
    if not path.exists():
        return purged()
    return web.FileResponse(
        path,
        headers=PRIVATE_FILE_HEADERS | {"Content-Type": document.content_type},
    )


async def _readable_document(request: web.Request) -> tuple[Document, Session]:
    """The document the URL names, if the caller may read it: by bearer token, or by a
    valid signature on this very URL; else :class:`ApiError`."""
    services = request.app[SERVICES]
    who = await signed_or_required(request)
    document = await services.store.get_document(request.match_info["document_id"])
    session = await services.store.get_session(document.session_id) if document else None
    if document is None or session is None:
        raise ApiError("not_found", "no such document")
    if who is not None and not may_see(who, session):
        raise ApiError("forbidden", "this document belongs to another session")
    return document, session


async def get_page(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    document, _ = await _readable_document(request)
    try:
        number = int(request.match_info["page"])
        width = served_width(int(request.query["w"]) if "w" in request.query else None)
    except ValueError:
        return json_error("bad_request", "page and w must be whole numbers")
    if not 1 <= number <= document.pages:
        return json_error("not_found", f"the document has {document.pages} page(s)")
    try:
        path = await services.renderer.page(
            services.blobs.path_of(document.sha256), document.sha256,
            document.content_type, number, width, document.session_id,
        )
    except PageError as exc:
        return json_error("not_found", str(exc))
    except FileNotFoundError:
        return purged()
    return web.FileResponse(path, headers=PRIVATE_FILE_HEADERS | {"Content-Type": "image/png"})


UPLOAD_LIMIT: web.AppKey[RateLimiter] = web.AppKey("upload_limit")
UNREADABLE_LIMIT: web.AppKey[RateLimiter] = web.AppKey("unreadable_upload_limit")
FILING: web.AppKey[DocumentFiling] = web.AppKey("document_filing")


def add_document_routes(app: web.Application) -> None:
    # A scanner feeds a page every few seconds; a kiosk sending more is broken or hostile.
    per_minute = app[SERVICES].uploads_per_minute
    app[UPLOAD_LIMIT] = RateLimiter(per_minute=per_minute, burst=max(1, int(per_minute * 2 / 3)))
    # Each PDF the sandbox gives up on cost it seconds of a worker; a scanner's files
    # are readable, so a kiosk sending several that are not is refused for a while.
    app[UNREADABLE_LIMIT] = RateLimiter(per_minute=1, burst=3)
    services = app[SERVICES]
    app[FILING] = DocumentFiling(services.store, services.audit, services.blobs,
                                 services.renderer, services.upload_limits, announcer(app))
    app.router.add_post("/api/v1/sessions/{sid}/documents", upload_document)
    app.router.add_get("/api/v1/documents/{document_id}", get_document)
    app.router.add_get(r"/api/v1/documents/{document_id}/pages/{page:\d+}.png", get_page)
