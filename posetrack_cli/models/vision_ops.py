"""torchvision's compiled detection operators (RoIAlign, NMS), without importing its Python package.

``import torchvision`` takes ``torch._dynamo`` with it (its ``ops/roi_align.py`` imports it at module
level): seconds on a small CPU, at every start. The operators themselves are in the package's
compiled library, which torchvision's own ``extension.py`` finds beside its ``__init__.py`` and
loads with ``torch.ops.load_library``. :func:`vision_ops` loads the same file the same way, so
``roi_align`` and ``nms`` below are torchvision's own kernels and give its numbers bit for bit.
Loading it twice (posetrack here, torchvision later in the same process) loads it once.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
from typing import Any

import torch

from posetrack_cli.core.errors import PosetrackError

# The compiled library's module name: recent torchvision releases ship ``_C_stable``, older ones ``_C``.
_LIBRARIES = ("_C_stable", "_C")


@functools.cache
def vision_ops() -> Any:
    """``torch.ops.torchvision``, its compiled library loaded (once per process)."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        raise PosetrackError("torchvision is not installed; install posetrack's dependencies (pip install -e .)")
    folder = list(spec.submodule_search_locations)[0]
    finder = importlib.machinery.FileFinder(
        folder, (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES))
    for name in _LIBRARIES:
        found = finder.find_spec(name)
        if found is not None and found.origin:
            torch.ops.load_library(found.origin)  # type: ignore[no-untyped-call]
            return torch.ops.torchvision
    raise PosetrackError(f"torchvision's compiled operators ({' or '.join(_LIBRARIES)}) are missing from {folder}; "
                         "reinstall torchvision to match torch")


def roi_align(features: torch.Tensor, rois: torch.Tensor, scale: float, size: int, sampling_ratio: int) -> torch.Tensor:
    """torchvision's ``roi_align(..., aligned=False)``: ``(K, C, size, size)`` averages of bilinear
    samples of ``features`` ``(N, C, h, w)`` in each ``rois`` ``(K, 5)`` row (image index, x1, y1,
    x2, y2 in image pixels, times ``scale`` to reach the map's)."""
    out: torch.Tensor = vision_ops().roi_align(features, rois, scale, size, size, sampling_ratio, False)
    return out


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou: float) -> torch.Tensor:
    """torchvision's NMS: int64 indices of the ``(n, 4)`` boxes kept, best score first."""
    out: torch.Tensor = vision_ops().nms(boxes, scores, iou)
    return out


# torchvision's batched_nms runs one NMS per group above this many coordinates on a CPU, else one
# NMS on boxes shifted apart per group (torchvision.ops.boxes.batched_nms; both keep the same boxes).
_VANILLA_ABOVE = 4000


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou: float) -> torch.Tensor:
    """torchvision's ``batched_nms`` on a CPU: NMS within each group of ``groups`` ``(n,)``, never
    across; int64 indices of the kept ``(n, 4)`` boxes, best score first. The same two ways as
    torchvision, chosen by the same size rule, so even boxes tied at the threshold fall alike."""
    if boxes.numel() > _VANILLA_ABOVE:
        kept = torch.zeros_like(scores, dtype=torch.bool)
        for group in torch.unique(groups):
            members = torch.where(groups == group)[0]
            kept[members[nms(boxes[members], scores[members], iou)]] = True
        indices = torch.where(kept)[0]
        return indices[scores[indices].sort(descending=True)[1]]
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64)
    offsets = groups.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))
    return nms(boxes + offsets[:, None], scores, iou)
