"""Top-down crop geometry: person box -> crop window -> affine maps between frame and crop.

Pure vectorised numpy functions. Pixel convention: pixel centres at integer coordinates (OpenCV's
``warpAffine``). The crop convention is the one the released SimpleBaseline checkpoints were trained
with (MSRA ``get_affine_transform``): the window centre maps to ``(W/2, H/2)`` of the output and one
uniform scale maps the window width onto ``W``. Keeping it exactly is what lets released weights
reach their published accuracy; it is expressed here in pixels, without MSRA's hidden ``pixel_std``.
"""

from __future__ import annotations

import numpy as np

from posetrack_cli.core.paper import CROP_PADDING


def boxes_to_windows(
    boxes: np.ndarray, aspect_ratio: float, padding: float = CROP_PADDING
) -> tuple[np.ndarray, np.ndarray]:
    """Crop windows for person boxes.

    Each box is padded to the model's aspect ratio (``width / height`` of its input) around its
    centre, then enlarged by ``padding`` (the paper's 1.25) so limbs near the box edge stay inside.

    Args:
        boxes: ``(N, 4)`` xyxy in frame pixels.
        aspect_ratio: model input ``width / height`` (0.75 for 256x192).
        padding: enlargement factor of the padded box.

    Returns:
        centers ``(N, 2)`` and sizes ``(N, 2)`` (width, height) of the windows, float32.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    centers = (boxes[:, :2] + boxes[:, 2:]) * 0.5
    w = np.maximum(boxes[:, 2] - boxes[:, 0], 1e-3)
    h = np.maximum(boxes[:, 3] - boxes[:, 1], 1e-3)
    wider = w > aspect_ratio * h
    h = np.where(wider, w / aspect_ratio, h)
    w = np.where(wider, w, h * aspect_ratio)
    sizes = np.stack([w, h], axis=1) * padding
    return centers.astype(np.float32), sizes.astype(np.float32)


def crop_transforms(
    centers: np.ndarray,
    sizes: np.ndarray,
    output_size: tuple[int, int],
    rotations: np.ndarray | None = None,
) -> np.ndarray:
    """Affine maps from frame pixels to crop pixels.

    ``q = o + s * R(-theta) @ (p - c)`` with ``o = (W/2, H/2)`` and ``s = W / window_width``.
    The crop shows the window turned by ``theta`` degrees (used by training augmentation).

    Args:
        centers: ``(N, 2)`` window centres in frame pixels.
        sizes: ``(N, 2)`` window (width, height); only the width sets the scale, as the window has
            the output's aspect ratio.
        output_size: ``(W, H)`` of the crop (or of the heatmap, for the heatmap-to-frame map).
        rotations: ``(N,)`` degrees, or None for no rotation.

    Returns:
        ``(N, 2, 3)`` float64 matrices for ``cv2.warpAffine`` (frame -> crop).
    """
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    n = centers.shape[0]
    out_w, out_h = output_size
    scale = out_w / sizes[:, 0]  # (N,)
    theta = np.zeros(n) if rotations is None else np.deg2rad(np.asarray(rotations, np.float64))
    cos, sin = np.cos(-theta) * scale, np.sin(-theta) * scale
    mats = np.empty((n, 2, 3), dtype=np.float64)
    mats[:, 0, 0], mats[:, 0, 1] = cos, -sin
    mats[:, 1, 0], mats[:, 1, 1] = sin, cos
    linear = mats[:, :, :2]  # (N, 2, 2)
    mats[:, :, 2] = np.array([out_w / 2.0, out_h / 2.0]) - np.einsum("nij,nj->ni", linear, centers)
    return mats


def invert_affine(mats: np.ndarray) -> np.ndarray:
    """Inverse of each ``(N, 2, 3)`` affine map."""
    mats = np.asarray(mats, dtype=np.float64)
    linear_inv = np.linalg.inv(mats[:, :, :2])  # (N, 2, 2)
    out = np.empty_like(mats)
    out[:, :, :2] = linear_inv
    out[:, :, 2] = -np.einsum("nij,nj->ni", linear_inv, mats[:, :, 2])
    return out


def apply_affine(points: np.ndarray, mats: np.ndarray) -> np.ndarray:
    """Map points ``(N, K, 2)`` through per-row affine maps ``(N, 2, 3)``; returns ``(N, K, 2)``."""
    points = np.asarray(points, dtype=np.float64)
    mapped: np.ndarray = np.einsum("nij,nkj->nki", mats[:, :, :2], points) + mats[:, None, :, 2]
    return mapped


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip ``(N, 4)`` xyxy boxes to the frame ``[0, width-1] x [0, height-1]``."""
    boxes = np.asarray(boxes, dtype=np.float32).copy()
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width - 1)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height - 1)
    return boxes
