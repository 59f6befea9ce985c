"""Identity verification rules: is the caller live, and the person on the ID card?

Plain logic over what the face models saw in each sampled frame (:class:`FaceSample`);
the models and the sampling live in ``media.vision``. Liveness rests on three checks,
none of them alone:

- passive: an anti-spoofing model's score (uncalibrated here: no spoof photos exist to
  calibrate it on, so it is one vote, not the decision);
- challenge: asked to turn the head left or right, the face's yaw (read from its
  landmarks) must change that way within the timeout: a photo or a replayed clip cannot
  follow a random instruction;
- consistency: exactly one face, large enough, the same identity in every frame.

The match is the median cosine similarity between the ID photo's embedding and the live
face's, against SFace's published threshold.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CHALLENGES = ("turn_left", "turn_right")
# Landmark order (YuNet): the subject's right eye, left eye, nose tip, right and left
# mouth corners, as (x, y) in image coordinates.
RIGHT_EYE, LEFT_EYE, NOSE = 0, 1, 2


@dataclass(frozen=True)
class VerificationPolicy:
    # SFace's cosine threshold from OpenCV Zoo (chosen there on LFW for ~99.6% accuracy).
    match_threshold: float = 0.363
    # The passive model's own default cut-off; uncalibrated on spoofs (see docs).
    passive_threshold: float = 0.5
    # Same-person threshold between frames of one window: the same face a fraction of a
    # second apart scores far above the match threshold; a different person far below.
    identity_threshold: float = 0.5
    # The face's shorter box side in the sampled frame: below ~64 px SFace degrades.
    min_face_px: float = 64.0
    sample_fps: float = 5.0
    window_s: float = 10.0
    min_frames: int = 5
    # Frames without a usable face tolerated (a blink, a motion blur) as a share.
    max_missing_ratio: float = 0.3
    # "auto": the server asks a random head turn once the face is steady; "staff": only
    # when the staff member presses the button.
    challenge_mode: str = "auto"
    challenge_timeout_s: float = 6.0
    # Yaw proxy change (nose offset from the eyes' midpoint, in inter-eye distances)
    # a real head turn of ~20° produces; a still face jitters by < 0.05.
    yaw_change: float = 0.25
    baseline_frames: int = 3
    presence_fps: float = 0.5
    # Consecutive presence checks that must agree before the staff is warned.
    presence_confirmations: int = 2


@dataclass(frozen=True)
class FaceSample:
    """One sampled frame as the models saw it (the largest face's measurements)."""

    at: float  # seconds since the verification started
    faces: int
    size: float | None = None
    landmarks: Sequence[Sequence[float]] | None = None
    embedding: np.ndarray | None = None
    passive: float | None = None


def _embedding(sample: FaceSample) -> np.ndarray:
    """A usable sample's embedding (only those are kept in :attr:`Verification.good`)."""
    assert sample.embedding is not None, "a usable sample has an embedding"
    return sample.embedding


def _landmarks(sample: FaceSample) -> Sequence[Sequence[float]]:
    """A usable sample's landmarks (only those are kept in :attr:`Verification.good`)."""
    assert sample.landmarks is not None, "a usable sample has landmarks"
    return sample.landmarks


def yaw_of(landmarks: Sequence[Sequence[float]]) -> float:
    """Horizontal offset of the nose from the eyes' midpoint, in inter-eye distances.

    0 when facing the camera; grows when the subject turns to their left (the nose moves
    to the image's right in an unmirrored camera picture), falls when they turn right.
    """
    right_eye, left_eye, nose = landmarks[RIGHT_EYE], landmarks[LEFT_EYE], landmarks[NOSE]
    inter_eye = float(np.hypot(left_eye[0] - right_eye[0], left_eye[1] - right_eye[1]))
    if inter_eye < 1e-6:
        return 0.0
    return (nose[0] - (right_eye[0] + left_eye[0]) / 2) / inter_eye


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@dataclass
class Challenge:
    kind: str
    issued_at: float
    baseline_yaw: float
    passed: bool | None = None
    yaw_change: float = 0.0
    decided_at: float | None = None
    reason: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "state": "issued" if self.passed is None else "passed" if self.passed else "failed",
            "yaw_change": _round(self.yaw_change),
            "reason": self.reason,
        }


@dataclass
class Verification:
    """One verification window: feed it samples, read updates and the final result."""

    policy: VerificationPolicy
    id_embedding: np.ndarray
    rng: random.Random = field(default_factory=random.SystemRandom)
    frames: int = 0
    good: list[FaceSample] = field(default_factory=list)
    missing: int = 0
    several_faces: int = 0
    identity_scores: list[float] = field(default_factory=list)
    challenge: Challenge | None = None
    finished: bool = False
    reason: str | None = None
    refused: str | None = None
    last_face_present: bool = False

    def refuse(self, reason: str) -> None:
        """End before any frame: the ID could not be used (``reason`` says why)."""
        self.finished, self.refused = True, reason

    def add(self, sample: FaceSample) -> None:
        if self.finished:
            return
        self.frames += 1
        usable = (
            sample.faces >= 1
            and sample.embedding is not None
            and sample.landmarks is not None
            and (sample.size or 0.0) >= self.policy.min_face_px
        )
        self.last_face_present = sample.faces >= 1
        if sample.faces > 1:
            self.several_faces += 1
        if not usable:
            self.missing += 1
        else:
            if self.good:
                self.identity_scores.append(
                    cosine(_embedding(self.good[0]), _embedding(sample)))
            self.good.append(sample)
            self._follow_challenge(sample)
        if (
            self.challenge is None
            and self.policy.challenge_mode == "auto"
            and len(self.good) >= self.policy.baseline_frames
        ):
            self.issue_challenge(self.rng.choice(CHALLENGES), sample.at)
        self._check_end(sample.at)

    def issue_challenge(self, kind: str, at: float) -> Challenge:
        """Ask for a head turn (again, if one was asked already: the new one counts)."""
        if kind not in CHALLENGES:
            raise ValueError(f"unknown challenge {kind!r}")
        yaws = [yaw_of(_landmarks(s)) for s in self.good[-self.policy.baseline_frames :]]
        self.challenge = Challenge(kind, at, _median(yaws) or 0.0)
        return self.challenge

    def tick(self, at: float) -> None:
        """Let time pass without a frame (the video may have stopped)."""
        if not self.finished:
            self._check_end(at)

    def _follow_challenge(self, sample: FaceSample) -> None:
        challenge = self.challenge
        if challenge is None or challenge.passed is not None or not self.good:
            return
        change = yaw_of(_landmarks(sample)) - challenge.baseline_yaw
        signed = change if challenge.kind == "turn_left" else -change
        challenge.yaw_change = max(challenge.yaw_change, signed)
        if signed >= self.policy.yaw_change:
            challenge.passed, challenge.decided_at = True, sample.at

    def _check_end(self, at: float) -> None:
        challenge = self.challenge
        if (
            challenge is not None
            and challenge.passed is None
            and at - challenge.issued_at >= self.policy.challenge_timeout_s
        ):
            challenge.passed, challenge.decided_at = False, at
            challenge.reason = "timeout"
        challenge_done = challenge is not None and challenge.passed is not None
        if challenge_done and len(self.good) >= self.policy.min_frames:
            self.finished = True
        elif at >= self.policy.window_s:
            self.finished = True
            if challenge is None:
                self.reason = "no_challenge"
            elif challenge.passed is None:
                challenge.passed, challenge.decided_at = False, at
                challenge.reason = "timeout"

    # -- reading -------------------------------------------------------------------

    def embeddings(self) -> list[np.ndarray]:
        """The embeddings of the usable frames, in order."""
        return [_embedding(s) for s in self.good]

    def match_score(self) -> float | None:
        return _median([cosine(self.id_embedding, e) for e in self.embeddings()])

    def passive_score(self) -> float | None:
        return _median([s.passive for s in self.good if s.passive is not None])

    def consistency(self) -> dict[str, Any]:
        policy = self.policy
        enough = len(self.good) >= policy.min_frames
        missing_ok = self.frames > 0 and self.missing / self.frames <= policy.max_missing_ratio
        same_person = all(score >= policy.identity_threshold for score in self.identity_scores)
        return {
            "passed": enough and missing_ok and same_person and self.several_faces == 0,
            "frames": self.frames,
            "usable_frames": len(self.good),
            "missing_frames": self.missing,
            "several_faces_frames": self.several_faces,
            "identity_min": _round(min(self.identity_scores, default=None)),
        }

    def _failure_reason(self, match: bool, passive: bool, challenge: bool,
                        consistency: dict[str, Any]) -> str | None:
        if self.refused:
            return self.refused
        if not self.good:
            return "no_face"
        if self.reason:
            return self.reason
        if not consistency["passed"]:
            if consistency["several_faces_frames"]:
                return "several_faces"
            if consistency["usable_frames"] < self.policy.min_frames:
                return "face_not_steady"
            if (consistency["identity_min"] or 1.0) < self.policy.identity_threshold:
                return "identity_changed"
            return "face_not_steady"
        if not challenge:
            return "challenge_failed"
        if not passive:
            return "passive_liveness_failed"
        if not match:
            return "no_match"
        return None

    def report(self) -> dict[str, Any]:
        """The state so far (``pending``) or, once finished, the decision."""
        policy = self.policy
        match_score, passive_score = self.match_score(), self.passive_score()
        consistency = self.consistency()
        decided = self.finished or len(self.good) >= policy.min_frames
        match_passed = (
            match_score >= policy.match_threshold if decided and match_score is not None
            else (False if self.finished else None)
        )
        passive_passed = (
            passive_score >= policy.passive_threshold if decided and passive_score is not None
            else (False if self.finished else None)
        )
        challenge_passed = self.challenge.passed if self.challenge else (
            False if self.finished else None
        )
        liveness_passed: bool | None = None
        if self.finished:
            liveness_passed = bool(passive_passed and challenge_passed and consistency["passed"])
        report: dict[str, Any] = {
            "status": "pending",
            "face_present": self.last_face_present,
            "match": {
                "score": _round(match_score),
                "threshold": policy.match_threshold,
                "passed": match_passed,
            },
            "liveness": {
                "score": _round(passive_score),
                "threshold": policy.passive_threshold,
                "passed": liveness_passed,
                "passive_passed": passive_passed,
                "challenge_passed": challenge_passed,
                "consistency": consistency,
            },
        }
        if self.challenge:
            report["challenge"] = self.challenge.public()
        if self.finished:
            overall = bool(match_passed and liveness_passed)
            report["status"] = "passed" if overall else "failed"
            report["reason"] = self._failure_reason(
                bool(match_passed), bool(passive_passed), bool(challenge_passed), consistency
            )
            report["frame_times"] = [round(s.at, 3) for s in self.good]
        return report


@dataclass
class PresenceWatch:
    """After verification: is the verified person still the one in front of the kiosk?
    Reports ``present``, ``absent`` or ``changed`` when a new state has held for
    ``presence_confirmations`` checks in a row."""

    policy: VerificationPolicy
    reference: np.ndarray
    state: str = "present"
    _candidate: str | None = None
    _streak: int = 0

    def check(self, sample: FaceSample) -> str | None:
        """The new state, if it just changed."""
        if sample.faces == 0 or sample.embedding is None:
            seen = "absent"
        elif cosine(self.reference, sample.embedding) < self.policy.match_threshold:
            seen = "changed"
        else:
            seen = "present"
        if seen == self.state:
            self._candidate, self._streak = None, 0
            return None
        if seen != self._candidate:
            self._candidate, self._streak = seen, 0
        self._streak += 1
        if self._streak >= self.policy.presence_confirmations:
            self.state, self._candidate, self._streak = seen, None, 0
            return seen
        return None
