"""SFace face embedding: five-point alignment to a 112×112 crop, then a 128-d vector
compared by cosine similarity.

Alignment reproduces OpenCV's ``FaceRecognizerSF.alignCrop``: a similarity transform
(Umeyama's least-squares estimate) from the detected landmarks to ArcFace's reference
points, then bilinear sampling. Written in numpy because it is twenty lines and keeps
OpenCV out of the serving path.
"""

from __future__ import annotations

import functools

import numpy as np

CROP_SIZE = 112
# Where the five landmarks land in the aligned 112×112 crop (ArcFace's template).
REFERENCE_POINTS = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2×3 matrix of the rotation + uniform scale + translation that best maps
    ``src`` points onto ``dst`` (Umeyama 1991)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(covariance)
    d = np.ones(2)
    if np.linalg.det(covariance) < 0:
        d[1] = -1
    rotation = u @ np.diag(d) @ vt
    variance = (src_c**2).sum() / len(src)
    scale = (s * d).sum() / variance if variance > 0 else 1.0
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - matrix[:, :2] @ src_mean
    return matrix


@functools.cache
def _grid(size: int) -> np.ndarray:
    return np.mgrid[0:size, 0:size].astype(np.float32)


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Bilinear ``size``×``size`` sampling of ``image`` through the forward affine
    ``matrix`` (source → destination), pixel centres at integer coordinates, zeros
    outside (as ``cv2.warpAffine`` with ``INTER_LINEAR`` and a constant border).

    Only the patch of ``image`` the output samples from is copied and padded, so the
    cost depends on the face, not on the frame."""
    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2].astype(np.float32)
    ys, xs = _grid(size)
    src_x = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    src_y = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    x0, y0 = np.floor(src_x).astype(np.int64), np.floor(src_y).astype(np.int64)
    fx, fy = (src_x - x0)[..., None], (src_y - y0)[..., None]
    height, width = image.shape[:2]
    # The patch [left, right) × [top, bottom) of image coordinates, one pixel of zeros
    # around it standing for "outside the image".
    left, top = int(x0.min()) - 1, int(y0.min()) - 1
    right, bottom = int(x0.max()) + 3, int(y0.max()) + 3
    patch = np.zeros((bottom - top, right - left, image.shape[2]), dtype=np.float32)
    inner_l, inner_t = max(left, 0), max(top, 0)
    inner_r, inner_b = min(right, width), min(bottom, height)
    if inner_r > inner_l and inner_b > inner_t:
        patch[inner_t - top : inner_b - top, inner_l - left : inner_r - left] = image[
            inner_t:inner_b, inner_l:inner_r
        ]
    stride = patch.shape[1]
    flat = patch.reshape(-1, patch.shape[2])
    index = ((y0 - top) * stride + (x0 - left)).reshape(-1)

    def at(offset: int) -> np.ndarray:
        return np.take(flat, index + offset, axis=0).reshape(size, size, -1)

    top_row = at(0) * (1 - fx) + at(1) * fx
    bottom_row = at(stride) * (1 - fx) + at(stride + 1) * fx
    return top_row * (1 - fy) + bottom_row * fy


def align(bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The 112×112×3 float32 aligned BGR crop of the face with these landmarks."""
    matrix = similarity_transform(landmarks, REFERENCE_POINTS)
    return warp_affine(bgr, matrix, CROP_SIZE).astype(np.float32)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


class FaceEmbedder:
    def __init__(self, session) -> None:
        self._session = session
        self._input = session.get_inputs()[0].name

    def embed_aligned(self, crops: np.ndarray) -> np.ndarray:
        """Aligned BGR crops (N×112×112×3) → unit-length embeddings (N×128)."""
        blob = np.ascontiguousarray(crops[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
        vectors = np.concatenate(
            [self._session.run(None, {self._input: blob[i : i + 1]})[0] for i in range(len(blob))]
        )
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
