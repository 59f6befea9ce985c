"""Passive anti-spoofing: a small classifier's "this face is live" score for a face crop.

The default is ``liveness_human.onnx`` (LivenessNet, trained against replayed
recordings); ``antispoof_human.onnx`` (trained against computer-made faces) ships beside
it. Both come from ``@vladmandic/human`` (see ``models/PROVENANCE.md``) and take its
crop: the face box enlarged 1.4× about its centre, squared, black outside the frame,
RGB in 0–1, NHWC; element 0 of the output is the score. Any ONNX classifier with that
convention can be swapped in with ``SMARTCOUNTER_ANTISPOOF_MODEL``. Thresholds are
uncalibrated (no spoof photos were available), so verification never rests on it alone.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

BOX_SCALE = 1.4


def square_crop(rgb: np.ndarray, box: np.ndarray, scale: float = BOX_SCALE) -> np.ndarray:
    """The box enlarged ``scale``× about its centre and squared on its longer side, cut
    from ``rgb`` with black where it leaves the frame."""
    x, y, w, h = (float(v) for v in box)
    side = round(max(w, h) * scale)
    left, top = round(x + w / 2 - side / 2), round(y + h / 2 - side / 2)
    crop = np.zeros((side, side, 3), dtype=np.uint8)
    height, width = rgb.shape[:2]
    src_l, src_t = max(left, 0), max(top, 0)
    src_r, src_b = min(left + side, width), min(top + side, height)
    if src_r > src_l and src_b > src_t:
        crop[src_t - top : src_b - top, src_l - left : src_r - left] = rgb[src_t:src_b, src_l:src_r]
    return crop


class AntiSpoof:
    def __init__(self, session) -> None:
        self._session = session
        model_input = session.get_inputs()[0]
        self._input = model_input.name
        _, height, width, _ = model_input.shape  # NHWC
        self.size = (int(width), int(height))

    def score(self, bgr: np.ndarray, box: np.ndarray) -> float:
        """The probability that the face in ``box`` (x, y, w, h) is live."""
        crop = square_crop(bgr[..., ::-1], box)
        if crop.shape[0] < 2:
            return 0.0
        resized = Image.fromarray(crop).resize(self.size, Image.Resampling.BILINEAR)
        batch = (np.asarray(resized, dtype=np.float32) / 255.0)[None]
        output = self._session.run(None, {self._input: batch})[0]
        return float(np.asarray(output).reshape(-1)[0])
