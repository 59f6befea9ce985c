"""Identity verification during a call: the kiosk's video sampled densely for a window
(liveness and match against the ID photo), then sparsely to warn the staff if the
verified person leaves or someone else sits down.

Frames come from the media hub's decoded side branch; the models run in the vision
pool; the rules are :mod:`sessions.verification`. The staff member hears
``verification.update`` (live, then the result) and ``verification.presence``; the kiosk
hears ``verification.challenge``. The result is stored with the session and appended to
its audit trail before the final update is sent.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from av import VideoFrame

from sessions.errors import BadRequest, Conflict, Unavailable
from sessions.notifier import Notifier
from sessions.records import Document
from sessions.session import Session
from sessions.store import VerificationStore
from sessions.verification import (
    FaceSample,
    PresenceWatch,
    Verification,
    VerificationPolicy,
)

from ..errors import MediaError
from ..peer import MediaHub
from ..sampler import FrameSampler
from .analyzer import Analysis, FaceAnalyzer, IdPhotoError, VisionPool, jpeg

logger = logging.getLogger(__name__)

Recorder = Callable[..., Awaitable[None]]
# How often a verification looks at the clock when no frame comes (video stalled).
TICK_S = 0.5
LIVE_CROP_INTERVAL_S = 1.0


def data_url(crop: np.ndarray) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg(crop)).decode()


def to_sample(analysis: Analysis, at: float) -> FaceSample:
    face = analysis.largest
    if face is None:
        return FaceSample(at=at, faces=0)
    return FaceSample(
        at=at,
        faces=len(analysis.faces),
        size=face.size,
        landmarks=face.landmarks.tolist(),
        embedding=analysis.embedding,
        passive=analysis.passive,
    )


@dataclass
class Run:
    """One session's verification, then its presence watch."""

    session: Session
    verification: Verification
    id_document: Document
    id_crop: str
    started_at: float
    started_wall: float
    sampler: FrameSampler | None = None
    task: asyncio.Task | None = None
    presence: PresenceWatch | None = None
    live_crop_at: float = -LIVE_CROP_INTERVAL_S
    notified_challenge: object | None = None
    last_live_crop: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Verifier:
    def __init__(
        self,
        hub: MediaHub,
        store: VerificationStore,
        notifier: Notifier,
        record: Recorder,
        policy: VerificationPolicy,
        pool: VisionPool,
        analyzer: FaceAnalyzer | None,
        unavailable_reason: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hub = hub
        self.store = store
        self.notifier = notifier
        self.record = record
        self.policy = policy
        self.pool = pool
        self.analyzer = analyzer
        self.unavailable_reason = unavailable_reason or "the face models are not loaded"
        self.clock = clock
        self._runs: dict[str, Run] = {}
        # Read by the metrics collector when scraped: results by (status, reason), and the
        # durations of recent frame analyses (seconds, in the pool).
        self.outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
        self.analysis_seconds: collections.deque[float] = collections.deque(maxlen=512)

    @property
    def available(self) -> bool:
        return self.analyzer is not None

    @property
    def watched_sessions(self) -> list[str]:
        """Sessions with a verification or presence watch running on this node."""
        return list(self._runs)

    def ensure_available(self) -> None:
        self._analyzer()

    def _analyzer(self) -> FaceAnalyzer:
        if self.analyzer is None:
            raise Unavailable(f"identity verification is unavailable: {self.unavailable_reason}")
        return self.analyzer

    async def start(self, session: Session, id_document: Document, image: bytes) -> None:
        """Begin verifying ``session``'s caller against the ID document's photo; a run
        already going is replaced. Raises :class:`BadRequest` if the ID shows no usable
        face (the staff also hears it as a failed update)."""
        analyzer = self._analyzer()
        media = self.hub.get(session.id)
        if media is None:
            raise Conflict("the call's media is not connected yet")
        try:
            id_face = await self.pool.run(analyzer.id_face, image)
        except IdPhotoError as exc:
            await self._refuse_id(session, id_document, exc)
            raise BadRequest(str(exc)) from exc
        await self.stop(session.id, reason="restarted")
        run = Run(
            session=session,
            verification=Verification(self.policy, id_face.embedding),
            id_document=id_document,
            id_crop=data_url(id_face.crop),
            started_at=self.clock(),
            started_wall=time.time(),
        )
        self._runs[session.id] = run
        await self.record(
            session.id, "verification.started",
            id_document_id=id_document.document_id, id_sha256=id_document.sha256,
            models=[m.public() for m in analyzer.models],
        )
        run.task = asyncio.create_task(self._verify(run), name=f"verify-{session.id}")
        await self._send_update(run, run.verification.report(), with_id_face=True)

    async def challenge(self, session: Session, kind: str) -> None:
        run = self._runs.get(session.id)
        if run is None or run.verification.finished:
            raise Conflict("no verification is in progress for this call")
        run.verification.issue_challenge(kind, self.clock() - run.started_at)
        await self._announce_challenge(run)

    async def stop(self, session_id: str, reason: str = "call_ended") -> None:
        """End the session's verification or presence watch; a verification still
        undecided is recorded as interrupted."""
        run = self._runs.pop(session_id, None)
        if run is None:
            return
        if not run.verification.finished:
            await self.record(session_id, "verification.interrupted", reason=reason)
        if run.task is not None and run.task is not asyncio.current_task():
            run.task.cancel()
            await asyncio.wait([run.task])
        if run.sampler is not None:
            await run.sampler.close()

    async def close(self) -> None:
        for session_id in list(self._runs):
            await self.stop(session_id)

    # -- the dense window --------------------------------------------------------

    async def _verify(self, run: Run) -> None:
        try:
            await self._sample_until(
                run, self.policy.sample_fps, self._on_verify_frame, run.done, self._tick
            )
            await self._finish(run)
            run.presence = PresenceWatch(self.policy, self._reference(run))
            await self._sample_until(
                run, self.policy.presence_fps, self._on_presence_frame, asyncio.Event()
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("verification of %s failed", run.session.id)

    def _tick(self, run: Run) -> None:
        run.verification.tick(self.clock() - run.started_at)
        if run.verification.finished:
            run.done.set()

    async def _sample_until(
        self, run: Run, fps: float, handler: Callable[[Run, VideoFrame], Awaitable[None]],
        until: asyncio.Event, tick: Callable[[Run], None] | None = None,
    ) -> None:
        """Feed ``handler`` frames at ``fps`` until ``until`` is set, following the kiosk
        through reconnects (a new track means a new sampler), calling ``tick`` between
        frames so that time runs out even when no frame comes."""
        try:
            while not until.is_set():
                if run.sampler is None or run.sampler.ended:
                    if run.sampler is not None:
                        await run.sampler.close()
                        run.sampler = None
                    media = self.hub.get(run.session.id)
                    if media is not None:
                        with contextlib.suppress(MediaError):
                            run.sampler = media.sample(
                                "kiosk", fps, lambda frame: handler(run, frame)
                            )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(until.wait(), TICK_S)
                if tick is not None and not until.is_set():
                    tick(run)
        finally:
            if run.sampler is not None:
                await run.sampler.close()
                run.sampler = None

    async def _analyze(self, frame: VideoFrame, passive: bool) -> Analysis:
        analyzer = self._analyzer()

        def work() -> Analysis:
            started = time.perf_counter()
            analysis = analyzer.analyze(frame.to_ndarray(format="bgr24"), passive=passive)
            self.analysis_seconds.append(time.perf_counter() - started)
            return analysis

        return await self.pool.run(work)

    async def _on_verify_frame(self, run: Run, frame: VideoFrame) -> None:
        if run.done.is_set():
            return
        analysis = await self._analyze(frame, passive=True)
        now = self.clock() - run.started_at
        run.verification.add(to_sample(analysis, now))
        if run.verification.finished:
            run.done.set()
            return
        await self._announce_challenge(run)
        report = run.verification.report()
        if analysis.crop is not None and now - run.live_crop_at >= LIVE_CROP_INTERVAL_S:
            run.live_crop_at = now
            report["live_face"] = data_url(analysis.crop)
            run.last_live_crop = report["live_face"]
        await self._send_update(run, report)

    async def _announce_challenge(self, run: Run) -> None:
        challenge = run.verification.challenge
        if challenge is None or challenge is run.notified_challenge:
            return
        run.notified_challenge = challenge
        await self.record(run.session.id, "verification.challenge", challenge=challenge.kind)
        await self.notifier.to_kiosk(
            run.session.kiosk_id,
            "verification.challenge",
            {
                "session_id": run.session.id,
                "challenge": challenge.kind,
                "timeout_s": self.policy.challenge_timeout_s,
            },
        )

    def _reference(self, run: Run) -> np.ndarray:
        embeddings = run.verification.embeddings()
        if not embeddings:
            return run.verification.id_embedding
        stacked = np.stack(embeddings)
        mean = stacked.mean(axis=0)
        return mean / max(float(np.linalg.norm(mean)), 1e-12)

    async def _finish(self, run: Run) -> None:
        report = run.verification.report()
        analyzer = self._analyzer()
        result = {
            **report,
            "session_id": run.session.id,
            "started_at": run.started_wall,
            "finished_at": time.time(),
            "id_document_id": run.id_document.document_id,
            "id_sha256": run.id_document.sha256,
            "models": [m.public() for m in analyzer.models],
            "policy": {
                "challenge_mode": self.policy.challenge_mode,
                "yaw_change": self.policy.yaw_change,
                "identity_threshold": self.policy.identity_threshold,
                "min_face_px": self.policy.min_face_px,
                "window_s": self.policy.window_s,
            },
        }
        await self.store.put_verification(run.session.id, result)
        await self._record_result(result)
        await self._send_update(
            run, {**report, "live_face": run.last_live_crop}, with_id_face=True
        )
        logger.info(
            "verification of %s %s (%s)", run.session.id, report["status"], report.get("reason")
        )

    # -- the sparse presence watch -----------------------------------------------

    async def _on_presence_frame(self, run: Run, frame: VideoFrame) -> None:
        analysis = await self._analyze(frame, passive=False)
        assert run.presence is not None
        changed = run.presence.check(to_sample(analysis, self.clock() - run.started_at))
        if changed is None:
            return
        await self.record(run.session.id, "verification.presence", state=changed)
        await self.notifier.to_staff(
            run.session.staff_id or "",
            "verification.presence",
            {"session_id": run.session.id, "state": changed, "at": time.time()},
        )

    async def _send_update(
        self, run: Run, report: dict[str, Any], with_id_face: bool = False
    ) -> None:
        """The ID face crop goes with the first and the final update only (it does not
        change; the console keeps it)."""
        payload = {"session_id": run.session.id, **report}
        if with_id_face:
            payload["id_face"] = run.id_crop
        payload.pop("frame_times", None)
        if run.session.staff_id:
            await self.notifier.to_staff(run.session.staff_id, "verification.update", payload)

    async def _refuse_id(
        self, session: Session, id_document: Document, exc: IdPhotoError
    ) -> None:
        """The ID gave no usable face: a failed result of the usual shape, with the ID
        problem as its reason."""
        verification = Verification(self.policy, np.zeros(128, dtype=np.float32))
        verification.refuse(exc.reason)
        result = {
            **verification.report(),
            "session_id": session.id,
            "message": str(exc),
            "id_document_id": id_document.document_id,
            "id_sha256": id_document.sha256,
            "finished_at": time.time(),
        }
        await self.store.put_verification(session.id, result)
        await self._record_result(result)
        if session.staff_id:
            update = {k: v for k, v in result.items() if k != "frame_times"}
            await self.notifier.to_staff(session.staff_id, "verification.update", update)

    async def _record_result(self, result: dict[str, Any]) -> None:
        self.outcomes[(result["status"], result.get("reason") or "")] += 1
        data = {k: v for k, v in result.items() if k != "session_id"}
        await self.record(result["session_id"], "verification.completed", **data)
