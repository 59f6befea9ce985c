"""Page images of stored documents: a JPEG or PNG is one page (EXIF orientation
applied), a PDF has its pages rendered by PDFium. Rendered on first request at one of a
few widths and kept on disk beside the originals, keyed by the original's sha256.

All of it is CPU work, never on the event loop: images on this module's threads (their
cost is bounded by the pixel limit), PDFs in the sandbox's worker processes
(:mod:`document_share.sandbox`): a PDF's pages are first checked for the cost of their
content (:mod:`document_share.drawing_cost`), but no check sees every cost of drawing
one, so the worker's limits stay.
"""

from __future__ import annotations

import asyncio
import io
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pikepdf
import pypdfium2
from PIL import Image, ImageOps

from sessions.files import write_atomic

from . import drawing_cost
from .sandbox import RenderSandbox, Unprocessable

# Widths a page is served at (a request for ``w`` gets the next one up): a handful of
# cached files per page, whatever widths clients ask for.
WIDTHS = (120, 240, 480, 960, 1600, 2400)
FULL_WIDTH = WIDTHS[-1]
THUMBNAIL_WIDTH = 240
PDF_DPI = 150
# What one page may ask PDFium to parse (drawing_cost): about 0.4 s of a worker's core
# for plain content at the most, a tenth of that for forms; real pages need far less.
MOST_CONTENT_BYTES = 8 * 1024 * 1024
MOST_FORMS_DRAWN = 20_000
MOST_TILES = 10_000_000  # laid in about 0.1 s; a fine hatching over a page needs 10**5


class PageError(ValueError):
    pass


def served_width(requested: int | None) -> int:
    if requested is None:
        return FULL_WIDTH
    return next((w for w in WIDTHS if w >= requested), FULL_WIDTH)


def count_pdf_pages(path: Path) -> int:
    """Raises :class:`PageError` for a file PDFium cannot open or a page that asks too
    much of it (:func:`check_drawing_cost`). Run in a sandbox worker for an untrusted
    file."""
    check_drawing_cost(path)
    try:
        pdf = pypdfium2.PdfDocument(str(path))
    except pypdfium2.PdfiumError as exc:
        raise PageError(f"the PDF cannot be read: {exc}") from exc
    try:
        return len(pdf)
    finally:
        pdf.close()


def check_drawing_cost(path: Path) -> None:
    """Refuses, before PDFium parses any page, one whose drawing would cost more than
    the limits above."""
    try:
        costs = drawing_cost.page_costs(path)
    except drawing_cost.DrawsItself as exc:
        raise PageError(str(exc)) from exc
    except pikepdf.PdfError as exc:
        raise PageError(f"the PDF cannot be read: {exc}") from exc
    for number, cost in enumerate(costs, 1):
        if cost.forms_drawn > MOST_FORMS_DRAWN:
            raise PageError(f"page {number} draws {cost.forms_drawn:,} forms; "
                            f"at most {MOST_FORMS_DRAWN:,} are drawn")
        if cost.tiles > MOST_TILES:
            raise PageError(f"page {number} fills {cost.tiles:,} pattern tiles; "
                            f"at most {MOST_TILES:,} are laid")
        if cost.content_bytes > MOST_CONTENT_BYTES:
            raise PageError(f"page {number} has {cost.content_bytes:,} bytes of content to draw; "
                            f"at most {MOST_CONTENT_BYTES:,} are drawn")


def _render_pdf_page(path: Path, number: int, width: int, max_pixels: int) -> Image.Image:
    pdf = pypdfium2.PdfDocument(str(path))
    try:
        if not 1 <= number <= len(pdf):
            raise PageError(f"the document has no page {number}")
        page = pdf[number - 1]
        try:
            page_w, page_h = page.get_size()  # points
            scale = min(PDF_DPI / 72, width / max(page_w, 1))
            if page_w * page_h * scale * scale > max_pixels:
                scale = (max_pixels / max(page_w * page_h, 1)) ** 0.5
            return page.render(scale=scale).to_pil().copy()  # detached from PDFium's bitmap
        finally:
            page.close()
    finally:
        pdf.close()


def render_pdf_page_png(path: Path, number: int, width: int, max_pixels: int) -> bytes:
    """Page ``number`` of a PDF as PNG bytes (run in a sandbox worker:
    :mod:`document_share.sandbox`)."""
    return _png(_render_pdf_page(path, number, width, max_pixels))


def _render_image(path: Path, width: int, max_pixels: int) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image: Image.Image = Image.open(path)
        if image.width * image.height > max_pixels:
            raise PageError("the image has too many pixels")
        if image.format == "JPEG":
            image.draft("RGB", (width, width * 4))  # decode at a reduced scale when small
        image = ImageOps.exif_transpose(image)
    if image.width > width:
        height = max(1, round(image.height * width / image.width))
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    return image.convert("RGB") if image.mode not in ("RGB", "RGBA", "L", "LA") else image


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", optimize=False, compress_level=3)
    return out.getvalue()


class PageRenderer:
    def __init__(self, cache_dir: Path, max_pixels: int, sandbox: RenderSandbox,
                 image_workers: int = 2) -> None:
        self.cache_dir = cache_dir
        self.max_pixels = max_pixels
        self.sandbox = sandbox
        cache_dir.mkdir(parents=True, exist_ok=True)
        self._images = ThreadPoolExecutor(image_workers, thread_name_prefix="pages")

    async def _pdf(self, session_id: str, job: str, *args) -> int | bytes:
        try:
            return await self.sandbox.run(session_id, job, *args)
        except Unprocessable as exc:
            raise PageError(str(exc)) from exc

    async def pdf_pages(self, path: Path, session_id: str) -> int:
        """The pages of ``session_id``'s PDF (:class:`PageError` if it cannot be read
        within the sandbox's limits)."""
        pages = await self._pdf(session_id, "count", path)
        assert isinstance(pages, int), "the sandbox passes only an int as a count's result"
        return pages

    async def pdf_page_png(self, path: Path, session_id: str, number: int, width: int) -> bytes:
        png = await self._pdf(session_id, "render", path, number, width, self.max_pixels)
        assert isinstance(png, bytes), "the sandbox passes only PNG bytes as a render's result"
        return png

    def cached(self, sha256: str, number: int, width: int) -> Path:
        return self.cache_dir / sha256[:2] / sha256 / f"{number}-{width}.png"

    async def keep(self, sha256: str, number: int, width: int, png: bytes) -> None:
        """Cache a page image made elsewhere (an upload's thumbnail)."""
        target = self.cached(sha256, number, width)
        await asyncio.get_running_loop().run_in_executor(
            self._images, write_atomic, target, png
        )

    async def page(
        self, source: Path, sha256: str, content_type: str, number: int, width: int,
        session_id: str,
    ) -> Path:
        """The PNG file of page ``number`` at ``width`` (a :data:`WIDTHS` value) of a
        document of ``session_id`` (whose turn it is in the PDF sandbox)."""
        target = self.cached(sha256, number, width)
        if target.exists():
            return target
        loop = asyncio.get_running_loop()
        if content_type == "application/pdf":
            data = await self.pdf_page_png(source, session_id, number, width)
        elif number != 1:
            raise PageError(f"the document has no page {number}")
        else:
            image = await loop.run_in_executor(
                self._images, _render_image, source, width, self.max_pixels
            )
            data = await loop.run_in_executor(self._images, _png, image)
        await loop.run_in_executor(self._images, write_atomic, target, data)
        return target

    def close(self) -> None:
        self._images.shutdown(wait=True, cancel_futures=True)
        self.sandbox.close()
