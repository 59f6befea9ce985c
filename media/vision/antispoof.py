"""Passive anti-spoofing: a small classifier's "this face is real" score for a face crop.

The default model is converted from ``@vladmandic/human``'s ``antispoof`` (see
``models/PROVENANCE.md``); any ONNX classifier with the same input convention can be
swapped in with ``SMARTCOUNTER_ANTISPOOF_MODEL``. Its threshold is uncalibrated (no spoof
photos were available to calibrate it), so verification never rests on it alone.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


class AntiSpoof:
    def __init__(self, session) -> None:
        self._session = session
        model_input = session.get_inputs()[0]
        self._input = model_input.name
        # TF.js-born models take NHWC; [1, H, W, 3].
        shape = model_input.shape
        self.size = (int(shape[2]), int(shape[1])) if isinstance(shape[1], int) else (128, 128)

    def score(self, bgr: np.ndarray, box: np.ndarray) -> float:
        """The probability that the face in ``box`` (x, y, w, h) is a live face."""
        x, y, w, h = (float(v) for v in box)
        height, width = bgr.shape[:2]
        left, top = max(int(x), 0), max(int(y), 0)
        right, bottom = min(int(x + w), width), min(int(y + h), height)
        if right - left < 2 or bottom - top < 2:
            return 0.0
        crop = Image.fromarray(np.ascontiguousarray(bgr[top:bottom, left:right, ::-1]))
        resized = np.asarray(crop.resize(self.size, Image.BILINEAR), dtype=np.float32) / 255.0
        output = self._session.run(None, {self._input: resized[None]})[0]
        return float(np.asarray(output).reshape(-1)[0])
