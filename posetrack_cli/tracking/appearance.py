"""A cheap appearance cue with no weights: the colour histogram of each person's torso.

Used by the tracker only where motion alone cannot decide: to break a tie between two lost tracks
and to veto re-identifying someone after a long gap when the clothes do not match. The torso
(between the shoulders and the hips) is the part of a person whose colour changes least with pose,
and it is sampled on a fixed grid inside the shoulder-hip quadrilateral, so a histogram costs the
same for a small or a large person and never reads the background beside the body.
"""

from __future__ import annotations

import numpy as np

# COCO-17 indices of the torso's corners, in order around it: left shoulder, right shoulder,
# right hip, left hip.
TORSO = (5, 6, 12, 11)
BINS_PER_CHANNEL = 4  # 4 x 4 x 4 = 64 colour bins: coarse enough that lighting noise stays in its bin
_SHIFT = 8 - 2  # uint8 value >> 6: its bin of 4
HISTOGRAM_BINS = BINS_PER_CHANNEL ** 3
GRID = 12  # 12 x 12 sample points inside the torso
_INSET = 0.15  # keep the samples off the torso's outline (arms and background are near it)
_U, _V = (g.ravel() for g in np.meshgrid(*[np.linspace(_INSET, 1 - _INSET, GRID, dtype=np.float32)] * 2))
# (4, G*G): weight of left shoulder, right shoulder, right hip, left hip at each sample point
_WEIGHTS = np.stack([(1 - _U) * (1 - _V), _U * (1 - _V), _U * _V, (1 - _U) * _V])


def torso_histograms(image: np.ndarray, keypoints: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Normalised colour histograms ``(N, 64)`` float32 of each pose's torso in ``image``.

    Args:
        image: ``(H, W, 3)`` uint8 frame the poses were estimated in.
        keypoints: ``(N, K, 2)`` COCO-order keypoints in frame pixels.
        valid: ``(N, K)`` bool, joints confident enough to use.

    Returns:
        ``(N, 64)``; a row is NaN where a torso corner is not valid (no histogram for that pose).
    """
    n = len(keypoints)
    bins = HISTOGRAM_BINS
    out = np.full((n, bins), np.nan, np.float32)
    ok = valid[:, list(TORSO)].all(1) if n else np.zeros(0, bool)
    if not ok.any():
        return out
    corners = keypoints[ok][:, list(TORSO)]  # (n, 4, 2): ls, rs, rh, lh
    # Bilinear weights of the four corners at each sample point: (n, 4, 2) x (4, G*G) -> (n, G*G, 2).
    points = np.rint(np.einsum("nck,cs->nsk", corners, _WEIGHTS)).astype(np.intp)
    h, w = image.shape[:2]
    xs, ys = np.clip(points[..., 0], 0, w - 1), np.clip(points[..., 1], 0, h - 1)
    colours = (image[ys, xs] >> _SHIFT).astype(np.intp)  # (n, G*G, 3) bin of each channel
    index = (colours[..., 0] * BINS_PER_CHANNEL + colours[..., 1]) * BINS_PER_CHANNEL + colours[..., 2]
    index += np.arange(len(index))[:, None] * bins  # one run of bins per pose
    counts = np.bincount(index.ravel(), minlength=len(index) * bins).reshape(len(index), bins)
    out[ok] = counts / index.shape[1]
    return out


def histogram_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bhattacharyya (Hellinger) distance ``(M, N)`` in ``[0, 1]`` between normalised histograms
    ``a (M, B)`` and ``b (N, B)``: 0 for the same colours, 1 for colours with nothing in common.
    NaN where either histogram is missing."""
    overlap = np.sqrt(np.maximum(a, 0)) @ np.sqrt(np.maximum(b, 0)).T  # (M, N), NaN rows propagate
    return np.asarray(np.sqrt(np.clip(1.0 - overlap, 0.0, 1.0)), np.float32)
