"""Crop geometry and heatmap decoding: the arithmetic every keypoint passes through."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from posetrack_cli.core.geometry import apply_affine, boxes_to_windows, crop_transforms, invert_affine
from posetrack_cli.models.heatmaps import decode_heatmaps, flip_back, merge_flip


def gaussian_heatmap(h: int, w: int, x0: float, y0: float, sigma: float = 2.0) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.exp(-((xs - x0) ** 2 + (ys - y0) ** 2) / (2 * sigma**2))


def test_decode_recovers_subpixel_peak_within_0_3_px() -> None:
    rng = np.random.default_rng(0)
    peaks = rng.uniform([2, 2], [46, 62], size=(200, 2))  # (x, y) inside a 48x64 heatmap
    heat = np.stack([gaussian_heatmap(64, 48, x, y) for x, y in peaks])[None]  # (1, 200, 64, 48)
    coords, scores = decode_heatmaps(torch.from_numpy(heat))
    err = np.abs(coords[0].numpy() - peaks)
    assert err.max() <= 0.3, f"worst axis error {err.max():.3f} px"
    # Plain arg-max would be off by up to 0.5: the quarter shift must actually be applied.
    assert np.abs(np.round(peaks) - peaks).max() > 0.45
    assert np.all(scores.numpy() > 0.88)


def test_decode_at_border_keeps_argmax() -> None:
    heat = torch.zeros(1, 1, 8, 8)
    heat[0, 0, 0, 7] = 1.0  # top-right corner: no neighbour on two sides
    coords, scores = decode_heatmaps(heat)
    assert coords[0, 0].tolist() == [7.0, 0.0]
    assert scores[0, 0].item() == 1.0


def test_decode_shifts_only_strictly_inside_as_msra() -> None:
    """MSRA's get_final_preds refines only where 1 < x < W-1 and 1 < y < H-1, both axes or neither."""
    heat = torch.zeros(1, 3, 8, 8)
    heat[0, 0, 4, 1], heat[0, 0, 4, 2] = 1.0, 0.5  # x = 1: a right neighbour exists, but no shift
    heat[0, 1, 1, 4], heat[0, 1, 1, 5] = 1.0, 0.5  # y = 1: no shift on x either
    heat[0, 2, 4, 2], heat[0, 2, 4, 3], heat[0, 2, 5, 2] = 1.0, 0.5, 0.5  # inside: both shift
    coords, _ = decode_heatmaps(heat)
    assert coords[0].tolist() == [[1.0, 4.0], [4.0, 1.0], [2.25, 4.25]]


def test_windows_pad_to_aspect_and_enlarge() -> None:
    centers, sizes = boxes_to_windows(np.array([[10, 20, 110, 320], [0, 0, 400, 100]]), 0.75)
    np.testing.assert_allclose(centers, [[60, 170], [200, 50]])
    # Tall box: width padded to 0.75 * 300; wide box: height padded to 400 / 0.75; both x1.25.
    np.testing.assert_allclose(sizes, [[225 * 1.25, 300 * 1.25], [400 * 1.25, 400 / 0.75 * 1.25]], rtol=1e-6)


def test_crop_and_inverse_round_trip_within_1e_3_px() -> None:
    rng = np.random.default_rng(1)
    boxes = np.sort(rng.uniform(0, 1000, size=(50, 2, 2)), axis=1).reshape(50, 4)[:, [0, 2, 1, 3]]
    centers, sizes = boxes_to_windows(boxes, 192 / 256)
    mats = crop_transforms(centers, sizes, (192, 256), rotations=rng.uniform(-40, 40, 50))
    points = rng.uniform(0, 1000, size=(50, 17, 2))
    back = apply_affine(apply_affine(points, mats), invert_affine(mats))
    assert np.abs(back - points).max() < 1e-3


def test_crop_matrix_agrees_with_warp_affine_pixels() -> None:
    """A bright dot lands in the crop where the matrix says it does."""
    frame = np.zeros((480, 640, 3), np.uint8)
    dot = np.array([400.0, 150.0])
    cv2.circle(frame, (400, 150), 3, (255, 255, 255), -1)
    centers, sizes = boxes_to_windows(np.array([[300, 50, 500, 350]]), 0.75)
    mat = crop_transforms(centers, sizes, (192, 256))
    crop = cv2.warpAffine(frame, mat[0], (192, 256), flags=cv2.INTER_LINEAR)
    ys, xs = np.nonzero(crop[..., 0] > 0)
    w = crop[ys, xs, 0].astype(float)
    found = np.array([(xs * w).sum() / w.sum(), (ys * w).sum() / w.sum()])
    expected = apply_affine(dot[None, None], mat)[0, 0]
    assert np.abs(found - expected).max() < 0.2


def test_flip_back_mirrors_and_swaps_channels() -> None:
    heat = torch.zeros(1, 3, 4, 6)
    heat[0, 1, 2, 1] = 1.0  # channel 1 ("left"), column 1
    perm = torch.tensor([0, 2, 1])  # channels 1 and 2 are a left/right pair
    back = flip_back(heat, perm)
    assert back[0, 2, 2, 4] == 1.0 and back.sum() == 1.0  # right channel, column 6-1-1
    merged = merge_flip(torch.zeros_like(heat), heat, perm)
    assert merged[0, 2, 2, 5] == 0.5  # shifted one column right, averaged
