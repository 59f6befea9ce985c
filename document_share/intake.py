"""What a document upload may be: recognised by its bytes (never by its name or declared
type), fully decoded once to prove it is whole, within the configured limits."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

KINDS = ("id_card", "form", "supporting")
_SIGNATURES = {
    b"\xff\xd8\xff": "image/jpeg",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"%PDF-": "application/pdf",
}


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000  # per image, and per rendered PDF page
    max_pdf_pages: int = 50


class Rejected(ValueError):
    """An upload refused; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def sniff(head: bytes) -> str | None:
    for signature, content_type in _SIGNATURES.items():
        if head.startswith(signature):
            return content_type
    return None


@dataclass(frozen=True)
class Inspection:
    content_type: str
    pages: int | None  # a PDF's pages are counted by PDFium, in the sandbox
    thumbnail: bytes | None = None  # an image's first-page thumbnail (PNG), made in passing


def inspect(path: Path, limits: Limits, thumbnail_width: int) -> Inspection:
    """What an uploaded file is, or :class:`Rejected`. Blocking. An image is decoded in
    full once (a truncated file fails), and that decoded picture also gives the page's
    thumbnail, upright (EXIF orientation applied)."""
    with path.open("rb") as f:
        head = f.read(16)
    if not head:
        raise Rejected(422, "the file is empty")
    content_type = sniff(head)
    if content_type is None:
        raise Rejected(415, "only JPEG, PNG and PDF files are accepted")
    if content_type == "application/pdf":
        return Inspection(content_type, None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.width * image.height > limits.max_pixels:
                    raise Rejected(
                        413, f"the image has more than {limits.max_pixels} pixels"
                    )
                image.load()  # decodes everything: a truncated file fails here
                thumbnail = _thumbnail(image, thumbnail_width)
    except Rejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Rejected(413, f"the image is too large to decode: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise Rejected(422, f"the image is damaged or unreadable: {exc}") from exc
    return Inspection(content_type, 1, thumbnail)


def _thumbnail(image: Image.Image, width: int) -> bytes:
    upright = ImageOps.exif_transpose(image)
    if upright.width > width:
        height = max(1, round(upright.height * width / upright.width))
        upright = upright.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=2.0)
    if upright.mode not in ("RGB", "RGBA", "L", "LA"):
        upright = upright.convert("RGB")
    out = io.BytesIO()
    upright.save(out, "PNG", compress_level=3)
    return out.getvalue()


def check_pdf_pages(pages: int, limits: Limits) -> None:
    if pages < 1:
        raise Rejected(422, "the PDF has no pages")
    if pages > limits.max_pdf_pages:
        raise Rejected(
            413, f"the PDF has {pages} pages; at most {limits.max_pdf_pages} are accepted"
        )
