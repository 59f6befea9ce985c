"""One image through the models: the faces in it, and for the largest one its
embedding, aligned crop and anti-spoofing score. Synchronous and thread-safe: it runs in
the vision worker pool (:class:`VisionPool`), never on the event loop."""

from __future__ import annotations

import asyncio
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .antispoof import AntiSpoof
from .detector import Face, FaceDetector
from .embedder import FaceEmbedder, align
from .models import DETECTOR, EMBEDDER, ModelInfo, check_models, open_session

# An ID face smaller than this share of the largest one is a ghost image, not a person.
SECOND_FACE_RATIO = 0.5
MAX_ID_PIXELS = 40_000_000


class IdPhotoError(ValueError):
    """The ID document cannot give a face; ``reason`` is a stable code for clients."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Analysis:
    faces: list[Face]
    embedding: np.ndarray | None = None
    passive: float | None = None
    crop: np.ndarray | None = None  # the largest face aligned, 112×112 BGR uint8

    @property
    def largest(self) -> Face | None:
        return max(self.faces, key=lambda f: f.area) if self.faces else None


def decode_image(data: bytes) -> np.ndarray:
    """JPEG or PNG bytes → BGR uint8, EXIF orientation applied."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_ID_PIXELS:
                raise IdPhotoError("unreadable_image", "the image has too many pixels")
            upright = ImageOps.exif_transpose(image).convert("RGB")
            return np.ascontiguousarray(np.asarray(upright)[..., ::-1])
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise IdPhotoError("unreadable_image", f"the ID image cannot be read: {exc}") from exc


def jpeg(bgr: np.ndarray, quality: int = 85) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(bgr[..., ::-1])).save(out, "JPEG", quality=quality)
    return out.getvalue()


def _downscale(bgr: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    height, width = bgr.shape[:2]
    factor = max(height, width) / max_side
    if factor <= 1:
        return bgr, 1.0
    size = (max(1, round(width / factor)), max(1, round(height / factor)))
    small = Image.fromarray(bgr).resize(size, Image.Resampling.BILINEAR)
    return np.asarray(small), factor


class FaceAnalyzer:
    def __init__(
        self,
        detector: FaceDetector,
        embedder: FaceEmbedder,
        antispoof: AntiSpoof,
        models: list[ModelInfo],
        detect_max_side: int = 640,
    ) -> None:
        self.detector = detector
        self.embedder = embedder
        self.antispoof = antispoof
        self.models = models
        self.detect_max_side = detect_max_side

    @classmethod
    def load(
        cls, models_dir: Path, antispoof_path: Path, threads: int = 1,
        detect_score: float = 0.7,
    ) -> FaceAnalyzer:
        """Raises :class:`media.vision.models.ModelError` if a model is unusable."""
        infos = check_models(models_dir, antispoof_path)
        by_name = {info.name: info for info in infos}
        return cls(
            FaceDetector(open_session(by_name[DETECTOR.name].path, threads), detect_score),
            FaceEmbedder(open_session(by_name[EMBEDDER.name].path, threads)),
            AntiSpoof(open_session(antispoof_path, threads)),
            infos,
        )

    def detect(self, bgr: np.ndarray) -> list[Face]:
        small, factor = _downscale(bgr, self.detect_max_side)
        faces = self.detector.detect(small)
        return [f.scaled(factor) for f in faces] if factor != 1.0 else faces

    def analyze(self, bgr: np.ndarray, passive: bool = True) -> Analysis:
        """Detection, then embedding (and anti-spoofing when ``passive``) of the largest
        face."""
        faces = self.detect(bgr)
        if not faces:
            return Analysis(faces)
        face = max(faces, key=lambda f: f.area)
        crop = align(bgr, face.landmarks)
        embedding = self.embedder.embed_aligned(crop[None])[0]
        score = self.antispoof.score(bgr, face.box) if passive else None
        return Analysis(faces, embedding, score, np.clip(crop, 0, 255).astype(np.uint8))

    def id_face(self, data: bytes) -> Analysis:
        """The face on an ID document's image: the largest, if it is clearly the only
        person (a much smaller ghost image is allowed)."""
        bgr = decode_image(data)
        analysis = self.analyze(bgr, passive=False)
        largest = analysis.largest
        if largest is None:
            raise IdPhotoError("id_no_face", "no face was found on the ID document")
        others = [f for f in analysis.faces if f is not largest]
        if any(f.area >= SECOND_FACE_RATIO * largest.area for f in others):
            raise IdPhotoError(
                "id_several_faces", "the ID document shows several faces of similar size"
            )
        return analysis


class VisionPool:
    """The worker threads the models run on (onnxruntime releases the GIL while it
    computes, so threads give real parallelism), each model run using ``threads``
    intra-op threads."""

    def __init__(self, workers: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vision")

    async def run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
