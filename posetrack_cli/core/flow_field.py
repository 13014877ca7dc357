"""Dense optical flow as the tracker and the flow boxes consume it, and what computes it.

The estimators themselves (OpenCV DIS, torchvision RAFT) live in :mod:`posetrack_cli.models.flow`;
this module holds only the field and the protocol, so the tracking code depends on no model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class FlowField:
    """Dense flow from one frame to the next.

    Attributes:
        flow: ``(h, w, 2)`` float32 displacement ``(dx, dy)`` in full-frame pixels, sampled on a grid
            coarser than the frame by ``scale`` (grid pixel ``j`` centred at frame ``(j + 0.5) * s - 0.5``).
        scale: ``(sx, sy)`` frame pixels per grid pixel (``(1, 1)`` at full resolution).
    """

    flow: np.ndarray
    scale: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self) -> None:
        if self.flow.ndim != 3 or self.flow.shape[2] != 2:
            raise ValueError(f"flow must have shape (h, w, 2), got {self.flow.shape}")
        if min(self.scale) <= 0:
            raise ValueError(f"scale must be > 0, got {self.scale}")

    def sample(self, points: np.ndarray) -> np.ndarray:
        """Bilinear flow at sub-pixel frame points ``(..., 2)``; returns ``(..., 2)`` displacements.

        Points outside the frame take the flow of the nearest border pixel.
        """
        pts = np.asarray(points, dtype=np.float32)
        h, w = self.flow.shape[:2]
        sx, sy = self.scale
        gx = np.clip((pts[..., 0] + 0.5) / sx - 0.5, 0, w - 1)  # frame -> grid coordinates
        gy = np.clip((pts[..., 1] + 0.5) / sy - 0.5, 0, h - 1)
        x0 = np.minimum(gx.astype(np.int64), max(w - 2, 0))  # gx >= 0, so truncation is floor
        y0 = np.minimum(gy.astype(np.int64), max(h - 2, 0))
        x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
        fx, fy = (gx - x0)[..., None], (gy - y0)[..., None]
        flat = self.flow.reshape(-1, 2)  # np.take on flat indices: several times faster than f[y, x]

        def corner(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
            values: np.ndarray = np.take(flat, (yy * w + xx).ravel(), axis=0)  # (n, 2)
            return values.reshape(*yy.shape, 2)

        f00, f01, f10, f11 = corner(y0, x0), corner(y0, x1), corner(y1, x0), corner(y1, x1)
        top = f00 + (f01 - f00) * fx
        bottom = f10 + (f11 - f10) * fx
        shifts: np.ndarray = (top + (bottom - top) * fy).astype(np.float32, copy=False)  # (..., 2)
        return shifts

    def propagate(self, points: np.ndarray) -> np.ndarray:
        """Points ``(..., 2)`` moved to where the flow takes them in the next frame."""
        moved: np.ndarray = np.asarray(points, dtype=np.float32) + self.sample(points)
        return moved


class FlowEstimator(Protocol):
    """Computes ``FlowField``s. ``prepare`` runs once per frame, ``compute`` once per frame pair,
    so per-frame work (grey conversion, resizing, upload) is never done twice. What ``prepare``
    returns is each estimator's own (a grey array, a tensor), hence ``Any``: only its ``compute`` reads it."""

    name: str

    def prepare(self, image: np.ndarray) -> Any: ...

    def compute(self, prev: Any, cur: Any) -> FlowField: ...
