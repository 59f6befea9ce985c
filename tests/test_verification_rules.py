"""Verification rules on synthetic timelines: landmarks and embeddings made up frame by
frame, so every branch (challenge passed or timed out, identity change, several faces,
no match, presence changes) is exercised without video."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sessions.verification import (
    FaceSample,
    PresenceWatch,
    Verification,
    VerificationPolicy,
    yaw_of,
)

RNG = np.random.default_rng(7)
PERSON_A = RNG.normal(size=128)
PERSON_B = RNG.normal(size=128)  # independent: cosine near 0 with A


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def landmarks(yaw: float, eye_distance: float = 60.0, x: float = 300.0) -> list[list[float]]:
    """Five points of a face whose nose sits ``yaw`` inter-eye distances right of the
    eyes' midpoint (the subject turned to their left)."""
    right_eye = [x - eye_distance / 2, 200.0]
    left_eye = [x + eye_distance / 2, 200.0]
    nose = [x + yaw * eye_distance, 235.0]
    return [right_eye, left_eye, nose, [x - 20, 270.0], [x + 20, 270.0]]


def sample(at: float, yaw: float = 0.0, person=PERSON_A, faces: int = 1, size: float = 150,
           passive: float = 0.9, noise: float = 0.1) -> FaceSample:
    embedding = unit(person + RNG.normal(scale=noise, size=128))
    return FaceSample(at=at, faces=faces, size=size, landmarks=landmarks(yaw),
                      embedding=embedding, passive=passive)


def verification(policy=None, id_person=PERSON_A, challenge="turn_left") -> Verification:
    rng = random.Random()
    rng.choice = lambda options: challenge  # the "random" challenge, fixed for the test
    return Verification(policy or VerificationPolicy(), unit(id_person), rng=rng)


def run_frames(v: Verification, frames) -> dict:
    for frame in frames:
        v.add(frame)
        if v.finished:
            break
    return v.report()


def test_yaw_grows_when_the_subject_turns_left_and_falls_when_right():
    assert yaw_of(landmarks(0.0)) == pytest.approx(0.0)
    assert yaw_of(landmarks(0.3)) == pytest.approx(0.3)
    assert yaw_of(landmarks(-0.3)) == pytest.approx(-0.3)
    # Scale does not matter: a face twice as large has the same yaw.
    assert yaw_of(landmarks(0.3, eye_distance=120)) == pytest.approx(0.3)
    # Degenerate landmarks give 0, not a division by zero.
    assert yaw_of([[1, 1], [1, 1], [5, 5], [0, 0], [0, 0]]) == 0.0


@pytest.mark.parametrize("kind,turn", [("turn_left", 0.35), ("turn_right", -0.35)])
def test_live_person_who_follows_the_challenge_passes(kind, turn):
    v = verification(challenge=kind)
    frames = [sample(i * 0.2) for i in range(3)]  # steady: baseline, then the challenge
    frames += [sample(0.6 + i * 0.2, yaw=turn * min(1, i / 3)) for i in range(1, 8)]
    report = run_frames(v, frames)
    assert v.challenge is not None and v.challenge.kind == kind
    assert report["status"] == "passed", report
    assert report["challenge"]["state"] == "passed"
    assert report["match"]["passed"] is True and report["liveness"]["passed"] is True
    assert report["reason"] is None
    assert report["frame_times"][0] == 0.0


def test_turning_the_wrong_way_does_not_count_and_times_out():
    policy = VerificationPolicy(challenge_timeout_s=2.0)
    v = verification(policy, challenge="turn_left")
    frames = [sample(i * 0.2, yaw=-0.4 if i > 3 else 0.0) for i in range(30)]
    report = run_frames(v, frames)
    assert report["status"] == "failed"
    assert report["challenge"]["state"] == "failed"
    assert report["challenge"]["reason"] == "timeout"
    assert report["reason"] == "challenge_failed"
    assert report["match"]["passed"] is True  # the person matched; liveness did not


def test_a_still_photo_never_passes_the_challenge_even_without_frames_at_the_end():
    policy = VerificationPolicy(challenge_timeout_s=3.0, window_s=10.0)
    v = verification(policy)
    run_frames(v, [sample(i * 0.2, noise=0.01) for i in range(5)])
    assert not v.finished
    v.tick(2.0)  # the video stalls: time still runs out
    assert not v.finished
    v.tick(4.0)
    report = v.report()
    assert v.finished and report["status"] == "failed"
    assert report["challenge"]["reason"] == "timeout"


def test_staff_mode_waits_for_the_button_and_fails_at_the_window_end_without_it():
    policy = VerificationPolicy(challenge_mode="staff", window_s=3.0)
    v = verification(policy)
    run_frames(v, [sample(i * 0.2) for i in range(10)])
    assert v.challenge is None and not v.finished
    v.tick(3.0)
    report = v.report()
    assert report["status"] == "failed" and report["reason"] == "no_challenge"

    v = verification(VerificationPolicy(challenge_mode="staff"))
    run_frames(v, [sample(i * 0.2) for i in range(4)])
    v.issue_challenge("turn_right", 0.8)
    report = run_frames(v, [sample(1.0 + i * 0.2, yaw=-0.4) for i in range(4)])
    assert report["status"] == "passed", report


def test_someone_else_than_the_id_holder_fails_the_match_only():
    v = verification(id_person=PERSON_B)
    frames = [sample(i * 0.2, yaw=0.4 if i > 4 else 0.0) for i in range(10)]
    report = run_frames(v, frames)
    assert report["status"] == "failed"
    assert report["reason"] == "no_match"
    assert report["match"]["passed"] is False and report["match"]["score"] < 0.363
    assert report["liveness"]["passed"] is True


def test_identity_changing_within_the_window_fails_consistency():
    v = verification()
    frames = [sample(i * 0.2) for i in range(4)]
    frames += [sample(0.8 + i * 0.2, yaw=0.4, person=PERSON_B) for i in range(6)]
    report = run_frames(v, frames)
    assert report["status"] == "failed"
    assert report["reason"] == "identity_changed"
    assert report["liveness"]["consistency"]["passed"] is False


def test_a_second_face_in_the_picture_fails_consistency():
    v = verification()
    frames = [sample(i * 0.2, faces=2 if i == 5 else 1, yaw=0.4 if i > 4 else 0.0)
              for i in range(10)]
    report = run_frames(v, frames)
    assert report["status"] == "failed" and report["reason"] == "several_faces"
    assert report["liveness"]["consistency"]["several_faces_frames"] == 1


def test_too_small_or_missing_faces_are_not_usable_frames():
    policy = VerificationPolicy(window_s=2.0)
    v = verification(policy)
    frames = [sample(i * 0.2, size=40) for i in range(5)]
    frames += [FaceSample(at=1.0 + i * 0.2, faces=0) for i in range(6)]
    report = run_frames(v, frames)
    assert report["status"] == "failed"
    assert report["reason"] == "no_face"
    assert report["face_present"] is False
    assert report["liveness"]["consistency"]["usable_frames"] == 0


def test_low_passive_score_fails_liveness_even_when_everything_else_passes():
    v = verification()
    frames = [sample(i * 0.2, passive=0.1, yaw=0.4 if i > 4 else 0.0) for i in range(10)]
    report = run_frames(v, frames)
    assert report["status"] == "failed" and report["reason"] == "passive_liveness_failed"
    assert report["liveness"]["challenge_passed"] is True


def test_pending_reports_carry_no_decision_until_enough_frames():
    v = verification()
    v.add(sample(0.0))
    report = v.report()
    assert report["status"] == "pending"
    assert report["match"]["passed"] is None and report["liveness"]["passed"] is None
    assert report["face_present"] is True


def test_presence_warns_after_confirmed_changes_only():
    policy = VerificationPolicy(presence_confirmations=2)
    watch = PresenceWatch(policy, unit(PERSON_A))
    assert watch.check(sample(0)) is None
    assert watch.check(FaceSample(at=2, faces=0)) is None  # one miss: no warning yet
    assert watch.check(sample(4)) is None  # back: the streak resets
    assert watch.check(FaceSample(at=6, faces=0)) is None
    assert watch.check(FaceSample(at=8, faces=0)) == "absent"
    assert watch.check(sample(10, person=PERSON_B)) is None
    assert watch.check(sample(12, person=PERSON_B)) == "changed"
    assert watch.check(sample(14)) is None
    assert watch.check(sample(16)) == "present"


def test_a_refused_id_gives_a_failed_report_of_the_usual_shape():
    v = verification()
    v.refuse("id_no_face")
    report = v.report()
    assert report["status"] == "failed" and report["reason"] == "id_no_face"
    assert report["match"] == {"score": None, "threshold": 0.363, "passed": False}
    assert report["liveness"]["passed"] is False
    assert report["liveness"]["consistency"]["frames"] == 0
