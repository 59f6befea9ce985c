"""Filing an uploaded document with its session: what the bytes are (recognised and
fully decoded once; a PDF counted and its first page drawn in the sandbox), then
durable (file fsynced, audit event fsynced, index written) before the caller is
answered, then announced to the officer. A refused upload leaves nothing behind."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from sessions.audit import AuditLog
from sessions.projection import document_event
from sessions.records import Document, new_id
from sessions.session import Session
from sessions.store import Store

from .intake import KINDS, Limits, Rejected, check_pdf_pages, inspect
from .pages import THUMBNAIL_WIDTH, PageError, PageRenderer
from .storage import Blobs, Upload


class Unreadable(Rejected):
    """A PDF the sandbox could not read within its limits (422): it cost a worker's
    time, which the caller may want to count against the sender."""

    def __init__(self, message: str) -> None:
        super().__init__(422, message)


class DocumentFiling:
    def __init__(self, store: Store, audit: AuditLog, blobs: Blobs,
                 renderer: PageRenderer, limits: Limits,
                 announce: Callable[[Session, Document], Awaitable[None]]) -> None:
        self.store, self.audit, self.blobs = store, audit, blobs
        self.renderer, self.limits, self.announce = renderer, limits, announce

    def begin(self) -> Upload:
        """Where an upload's bytes go while they arrive (no bigger than the limit)."""
        return self.blobs.begin(self.limits.max_bytes)

    async def file(self, session: Session, upload: Upload, kind: str | None) -> Document:
        """The document ``upload`` holds, filed with ``session``; raises
        :class:`Rejected` (the upload discarded) when it is not accepted."""
        try:
            if kind not in KINDS:
                raise Rejected(400, f"kind must be one of {', '.join(KINDS)}")
            sha256 = await asyncio.to_thread(upload.finish)
            inspection = await asyncio.to_thread(inspect, upload.path, self.limits,
                                                 THUMBNAIL_WIDTH)
            pages, thumbnail = inspection.pages, inspection.thumbnail
            if pages is None:  # a PDF: counted and its first page drawn, in the sandbox
                try:
                    pages = await self.renderer.pdf_pages(upload.path, session.id)
                    check_pdf_pages(pages, self.limits)
                    thumbnail = await self.renderer.pdf_page_png(
                        upload.path, session.id, 1, THUMBNAIL_WIDTH)
                except PageError as exc:
                    raise Unreadable(str(exc)) from exc
            await asyncio.to_thread(self.blobs.commit, upload, sha256)
        except BaseException:
            upload.discard()
            raise
        document = Document(
            document_id=new_id("doc"), session_id=session.id, kiosk_id=session.kiosk_id,
            kind=kind, sha256=sha256, pages=pages, content_type=inspection.content_type,
            size=upload.size, created_at=time.time(),
        )
        await self.audit.append(session.id, "document.added", document_event(document))
        await self.store.add_document(document)
        if thumbnail is not None:  # shown on the console at once
            await self.renderer.keep(sha256, 1, THUMBNAIL_WIDTH, thumbnail)
        await self.announce(session, document)
        return document
