"""What a document upload may be: recognised by its bytes (never by its name or declared
type), fully decoded once to prove it is whole, within the configured limits."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

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


def inspect(path: Path, limits: Limits) -> tuple[str, int | None]:
    """``(content type, pages)`` of an uploaded file, or :class:`Rejected`. Blocking.
    A PDF's pages are counted by PDFium on its own thread (``None`` here)."""
    with path.open("rb") as f:
        head = f.read(16)
    if not head:
        raise Rejected(422, "the file is empty")
    content_type = sniff(head)
    if content_type is None:
        raise Rejected(415, "only JPEG, PNG and PDF files are accepted")
    if content_type == "application/pdf":
        return content_type, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.width * image.height > limits.max_pixels:
                    raise Rejected(
                        413, f"the image has more than {limits.max_pixels} pixels"
                    )
                image.load()  # decodes everything: a truncated file fails here
    except Rejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Rejected(413, f"the image is too large to decode: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise Rejected(422, f"the image is damaged or unreadable: {exc}") from exc
    return content_type, 1


def check_pdf_pages(pages: int, limits: Limits) -> None:
    if pages < 1:
        raise Rejected(422, "the PDF has no pages")
    if pages > limits.max_pdf_pages:
        raise Rejected(
            413, f"the PDF has {pages} pages; at most {limits.max_pdf_pages} are accepted"
        )
