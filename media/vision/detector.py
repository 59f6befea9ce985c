"""YuNet face detector: boxes, five landmarks and a score per face.

The post-processing follows OpenCV's ``FaceDetectorYN`` (4.8+, the 2023mar model) so
that the two agree on the same input: anchor-free heads at strides 8, 16 and 32, score
``sqrt(cls * obj)``, then non-maximum suppression.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STRIDES = (8, 16, 32)
# Landmark order of YuNet's five points.
RIGHT_EYE, LEFT_EYE, NOSE, RIGHT_MOUTH, LEFT_MOUTH = range(5)


@dataclass(frozen=True)
class Face:
    """A face in image coordinates: ``box`` is x, y, width, height; ``landmarks`` five
    (x, y) points (the subject's right eye, left eye, nose tip, right and left mouth
    corners)."""

    box: np.ndarray
    landmarks: np.ndarray
    score: float

    @property
    def size(self) -> float:
        """The shorter side of the box, in pixels."""
        return float(min(self.box[2], self.box[3]))

    @property
    def area(self) -> float:
        return float(self.box[2] * self.box[3])

    def scaled(self, factor: float) -> Face:
        return Face(self.box * factor, self.landmarks * factor, self.score)


def padded_size(height: int, width: int, divisor: int = 32) -> tuple[int, int]:
    return (-(-height // divisor) * divisor, -(-width // divisor) * divisor)


def to_input(bgr: np.ndarray) -> np.ndarray:
    """An HxWx3 uint8 BGR image → the 1x3xH'xW' float blob, zero-padded at the bottom and
    right to multiples of 32 (as OpenCV pads)."""
    height, width = bgr.shape[:2]
    padded_h, padded_w = padded_size(height, width)
    blob = np.zeros((1, 3, padded_h, padded_w), dtype=np.float32)
    blob[0, :, :height, :width] = bgr.transpose(2, 0, 1)
    return blob


def decode(
    outputs: dict[str, np.ndarray], padded_w: int, score_threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw head outputs → boxes (N×4), landmarks (N×5×2), scores (N), before NMS."""
    boxes, landmarks, scores = [], [], []
    for stride in STRIDES:
        cols = padded_w // stride
        cls = np.clip(outputs[f"cls_{stride}"].reshape(-1), 0.0, 1.0)
        obj = np.clip(outputs[f"obj_{stride}"].reshape(-1), 0.0, 1.0)
        score = np.sqrt(cls * obj)
        keep = np.nonzero(score >= score_threshold)[0]
        if keep.size == 0:
            continue
        r, c = np.divmod(keep, cols)
        bbox = outputs[f"bbox_{stride}"].reshape(-1, 4)[keep]
        kps = outputs[f"kps_{stride}"].reshape(-1, 5, 2)[keep]
        cx = (c + bbox[:, 0]) * stride
        cy = (r + bbox[:, 1]) * stride
        w = np.exp(bbox[:, 2]) * stride
        h = np.exp(bbox[:, 3]) * stride
        boxes.append(np.stack([cx - w / 2, cy - h / 2, w, h], axis=1))
        grid = np.stack([c, r], axis=1)[:, None, :]
        landmarks.append((kps + grid) * stride)
        scores.append(score[keep])
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros((0, 5, 2), np.float32), np.zeros(0)
    return np.concatenate(boxes), np.concatenate(landmarks), np.concatenate(scores)


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Indices kept, best first; a box goes if it overlaps a kept one by IoU > threshold."""
    order = np.argsort(-scores, kind="stable")
    x1, y1 = boxes[:, 0], boxes[:, 1]
    x2, y2 = x1 + boxes[:, 2], y1 + boxes[:, 3]
    areas = boxes[:, 2] * boxes[:, 3]
    kept: list[int] = []
    while order.size:
        best = int(order[0])
        kept.append(best)
        rest = order[1:]
        inter_w = np.clip(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0, None)
        inter_h = np.clip(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0, None)
        inter = inter_w * inter_h
        iou = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-9)
        order = rest[iou <= threshold]
    return kept


class FaceDetector:
    """Runs YuNet on an onnxruntime session (thread-safe: ``run`` may be called from
    several worker threads at once)."""

    def __init__(
        self, session, score_threshold: float = 0.7, nms_threshold: float = 0.3
    ) -> None:
        self._session = session
        self._input = session.get_inputs()[0].name
        self._outputs = [o.name for o in session.get_outputs()]
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold

    def detect(self, bgr: np.ndarray) -> list[Face]:
        """Faces in ``bgr`` (HxWx3 uint8), best score first."""
        blob = to_input(bgr)
        raw = self._session.run(self._outputs, {self._input: blob})
        outputs = dict(zip(self._outputs, raw, strict=True))
        boxes, landmarks, scores = decode(outputs, blob.shape[3], self.score_threshold)
        kept = non_max_suppression(boxes, scores, self.nms_threshold)
        return [Face(boxes[i], landmarks[i], float(scores[i])) for i in kept]
