"""Optical flow between consecutive frames, and moving joints along it (paper section 3.2).

Two estimators behind one interface: OpenCV's DIS (default: no weights, fast on a CPU, run on a
downscaled grey frame) and torchvision's RAFT (small or large; weights through the manifest; meant
for a GPU). The paper used FlowNet2-S; any dense flow serves the method.

A ``FlowField`` keeps the flow at the resolution it was computed at and converts on sampling, so a
downscaled DIS flow is never resized back to full frame size.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import cv2
import numpy as np

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.flow_field import FlowEstimator, FlowField

if TYPE_CHECKING:
    import torch
    from torchvision.models.optical_flow import RAFT

# The shortest side, in pixels at flow resolution, DIS takes (its patches are 8 pixels; smaller
# frames fail its own checks, measured down to 8x8).
MIN_DIS_SIDE = 12

DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


class DISFlow:
    """OpenCV's Dense Inverse Search flow on grey frames, downscaled to at most ``max_width`` wide.

    Args:
        preset: ``ultrafast``, ``fast`` or ``medium`` (speed against accuracy).
        max_width: frames wider than this are downscaled before the flow (the flow is rescaled).
    """

    def __init__(self, preset: str = "medium", max_width: int = 640) -> None:
        if preset not in DIS_PRESETS:
            raise PosetrackError(f"unknown DIS preset {preset!r}; use one of {', '.join(DIS_PRESETS)}")
        if max_width < 32:
            raise PosetrackError(f"flow max width must be at least 32, got {max_width}")
        self.name = f"dis-{preset}"
        self.preset = preset
        self.max_width = max_width
        self._dis = cv2.DISOpticalFlow.create(DIS_PRESETS[preset])
        self._finest = self._dis.getFinestScale()
        self._shape: tuple[int, ...] | None = None  # the frame size the pyramid levels are set for

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
        """Grey frame at flow resolution, and the frame pixels per flow pixel ``(sx, sy)``.

        Raises PosetrackError for frames DIS cannot take (a side under :data:`MIN_DIS_SIDE` pixels
        at flow resolution)."""
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        height, width = grey.shape
        scale = (1.0, 1.0)
        if width > self.max_width:
            size = (self.max_width, max(1, round(height * self.max_width / width)))
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
            scale = (width / size[0], height / size[1])
        if min(grey.shape) < MIN_DIS_SIDE:
            raise PosetrackError(f"frames of {width}x{height} pixels are too small for optical flow: DIS needs "
                                 f"{MIN_DIS_SIDE} pixels on each side (after scaling to {self.max_width} wide)")
        return grey, scale

    def compute(self, prev: tuple[np.ndarray, tuple[float, float]],
                cur: tuple[np.ndarray, tuple[float, float]]) -> FlowField:
        self._fit_scales(cur[0].shape)
        # The stubs type the output array as required; None (allocate it) is OpenCV's documented call.
        flow = self._dis.calc(prev[0], cur[0], None)  # type: ignore[call-overload]  # (h, w, 2) in grid pixels
        return FlowField(flow * np.asarray(cur[1], np.float32), cur[1])

    def _fit_scales(self, shape: tuple[int, ...]) -> None:
        """Keep DIS's coarsest pyramid level at least a patch high and wide.

        DIS picks its coarsest level from the width alone (OpenCV's ``autoSelectCoarsestScale``:
        ``floor(log2(2 w / (5 patch)))``); for a frame much wider than tall, that level is less
        than a patch high and DIS fails or crashes the process. The level is the same as DIS's
        own wherever that one fits, so ordinary frames get the same flow."""
        if shape == self._shape:
            return
        height, width = shape[:2]
        patch = self._dis.getPatchSize()
        automatic = max(0, math.floor(math.log2(2.0 * width / (5.0 * patch))))
        coarsest = min(automatic, math.floor(math.log2(min(height, width) / patch)))
        self._dis.setCoarsestScale(coarsest)
        self._dis.setFinestScale(min(self._finest, coarsest))
        self._shape = shape


class RaftFlow:
    """torchvision's RAFT (small or large) with its released weights from the manifest.

    Args:
        size: ``small`` or ``large``.
        device: torch device string (``auto``, ``cpu``, ``cuda``...).
        max_width: frames wider than this are downscaled before the flow.
        weights: a local weights file instead of the manifest's.
        allow_download: fetch the manifest file on first use.
    """

    def __init__(self, size: str = "small", device: str = "auto", max_width: int = 640,
                 weights: str | None = None, allow_download: bool = True) -> None:
        import torch
        from torchvision.models import optical_flow

        from posetrack_cli.models.device import resolve_device
        from posetrack_cli.models.weights import resolve

        if size not in ("small", "large"):
            raise PosetrackError(f"RAFT size must be small or large, got {size!r}")
        self.name = f"raft-{size}"
        self.max_width = max_width
        self.device = resolve_device(device)
        path = weights or str(resolve(f"raft_{size}", allow_download=allow_download)[1])
        model: RAFT = getattr(optical_flow, f"raft_{size}")(weights=None)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state, strict=True)
        except Exception as exc:  # bad file: one line, naming it
            raise PosetrackError(f"cannot load RAFT weights {path}: {str(exc).splitlines()[0][:200]}") from None
        self.model = model.eval().to(self.device)

    def prepare(self, image: np.ndarray) -> tuple[torch.Tensor, tuple[float, float]]:
        """RGB tensor ``(1, 3, h, w)`` in [-1, 1], ``h, w`` multiples of 8 (>= 128), and its scale."""
        import torch

        height, width = image.shape[:2]
        scale = max(1.0, width / self.max_width)
        # RAFT's correlation pyramid needs at least 128 px per side.
        w8 = max(128, int(round(width / scale / 8)) * 8)
        h8 = max(128, int(round(height / scale / 8)) * 8)
        small = cv2.resize(image, (w8, h8), interpolation=cv2.INTER_AREA)
        x = torch.from_numpy(small[:, :, ::-1].copy()).to(self.device).permute(2, 0, 1)[None]
        return x.float() / 127.5 - 1.0, (width / w8, height / h8)

    def compute(self, prev: tuple[torch.Tensor, tuple[float, float]],
                cur: tuple[torch.Tensor, tuple[float, float]]) -> FlowField:
        import torch

        with torch.inference_mode():
            flow = self.model(prev[0], cur[0])[-1][0]  # (2, h, w) in grid pixels
        flow = flow.permute(1, 2, 0).float().cpu().numpy() * np.asarray(cur[1], np.float32)
        return FlowField(flow, cur[1])


def make_flow(name: str, *, device: str = "auto", max_width: int = 640, allow_download: bool = True) -> FlowEstimator:
    """A flow estimator by name: ``dis-ultrafast``, ``dis-fast``, ``dis-medium``, ``raft-small``, ``raft-large``."""
    kind, _, variant = name.partition("-")
    if kind == "dis" and variant in DIS_PRESETS:
        return DISFlow(variant, max_width)
    if kind == "raft" and variant in ("small", "large"):
        return RaftFlow(variant, device, max_width, allow_download=allow_download)
    raise PosetrackError(f"unknown flow {name!r}; use one of {', '.join(FLOW_NAMES)}")


FLOW_NAMES = tuple(f"dis-{p}" for p in DIS_PRESETS) + ("raft-small", "raft-large")
# DIS "medium": the most robust preset to large motion (a rendered camera pan of 1.5 box widths per
# frame keeps every id with medium; fast and ultrafast lose both people), and still cheaper than one
# person's pose forward on a CPU (timings in benchmarks/README.md). Fast/ultrafast trade that for speed.
DEFAULT_FLOW = "dis-medium"
