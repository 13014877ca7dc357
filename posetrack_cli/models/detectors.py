"""The person detectors' networks: torchvision's COCO detectors, Faster R-CNN family and SSDlite.

torch and torchvision load when a network is built, not when the names are read (the command line
lists them).

torchvision's own builders, untrained here, ready for their released COCO weights (loaded strictly
by :class:`posetrack_cli.inference.detector.PersonDetector`). BatchNorm layers are frozen (running
statistics as constants), which is how torchvision builds these models when it loads trained weights.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.paper import DETECTION_THRESHOLD

if TYPE_CHECKING:
    from torch import nn
    from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
    from torchvision.models.detection.ssd import SSD

    from posetrack_cli.models.rcnn_person import RCNNRun

    M = TypeVar("M", bound=nn.Module)

# torchvision COCO detector architectures posetrack can run as its person detector.
DETECTORS = ("fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_resnet50_fpn_v2", "fasterrcnn_mobilenet_v3_large_320_fpn",
             "ssdlite320_mobilenet_v3_large")


# torchvision's test-time settings of each Faster R-CNN (its builders' defaults): the shorter and the
# longer side frames are resized to, RPN proposals kept per level before NMS and per image after it.
RCNN_DEFAULTS: dict[str, tuple[int, int, int, int]] = {
    "fasterrcnn_mobilenet_v3_large_fpn": (800, 1333, 1000, 1000),
    "fasterrcnn_resnet50_fpn_v2": (800, 1333, 1000, 1000),
    "fasterrcnn_mobilenet_v3_large_320_fpn": (320, 640, 150, 150),
}
# The longer side's limit for a shorter side asked for: torchvision's default ratio (1333 / 800).
MAX_SIZE_RATIO = 1333 / 800


def is_ssd(architecture: str) -> bool:
    """Whether ``architecture`` is an SSD (fixed input size, no proposals) rather than a Faster R-CNN."""
    return architecture.startswith("ssdlite")


def check_options(architecture: str, min_size: int | None = None, proposals: int | None = None) -> None:
    """Raise PosetrackError for an unknown architecture or options it does not have (no torch needed)."""
    if architecture not in DETECTORS:
        raise PosetrackError(f"unknown detector {architecture!r}; use one of {', '.join(DETECTORS)}")
    if is_ssd(architecture) and (min_size is not None or proposals is not None):
        raise PosetrackError(f"{architecture} runs at a fixed 320x320 without proposals; "
                             "--detector-size and proposal counts apply to the Faster R-CNN detectors")


def _freeze_batchnorm(module: M) -> M:
    """Replace every BatchNorm2d by a FrozenBatchNorm2d holding the same statistics."""
    from torch import nn
    from torchvision.ops.misc import FrozenBatchNorm2d

    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            setattr(module, name, frozen)
        else:
            _freeze_batchnorm(child)
    return module


def build_detector(architecture: str, score_threshold: float = DETECTION_THRESHOLD,
                   min_size: int | None = None, proposals: int | None = None) -> GeneralizedRCNN | SSD:
    """An untrained torchvision detector of ``architecture`` (91 COCO classes), ready for weights.

    ``min_size`` is the shorter image side a Faster R-CNN resizes frames to (torchvision's default
    for these models: 800, or 320 for the ``_320_`` one; longer side at most 1333/800 of it); smaller
    is faster and misses small people. SSDlite always runs at 320x320. ``proposals`` is how many RPN
    proposals reach the box head (torchvision: 1000, or 150 for the ``_320_`` model); the box head's
    cost is linear in it.
    """
    check_options(architecture, min_size, proposals)
    from torchvision.models import detection

    builder = getattr(detection, architecture)
    if is_ssd(architecture):
        ssd: SSD = builder(weights=None, weights_backbone=None, num_classes=91, score_thresh=score_threshold)
        return _freeze_batchnorm(ssd).eval()
    options: dict[str, int] = {}
    if min_size is not None:
        options.update(min_size=min_size, max_size=round(min_size * MAX_SIZE_RATIO))
    if proposals is not None:
        options.update(rpn_pre_nms_top_n_test=proposals, rpn_post_nms_top_n_test=proposals)
    rcnn: GeneralizedRCNN = builder(weights=None, weights_backbone=None, num_classes=91,
                                    box_score_thresh=score_threshold, **options)
    return _freeze_batchnorm(rcnn).eval()


def rcnn_run(architecture: str, score_threshold: float = DETECTION_THRESHOLD, min_size: int | None = None,
             proposals: int | None = None) -> RCNNRun:
    """How posetrack runs a Faster R-CNN built by :func:`build_detector` with these options: the
    same sizes and proposal counts, and frames smaller than ``min_size`` left at their own size
    unless ``min_size`` is asked for (see :class:`~posetrack_cli.models.rcnn_person.RCNNRun`)."""
    from posetrack_cli.models.rcnn_person import RCNNRun

    check_options(architecture, min_size, proposals)
    if is_ssd(architecture):
        raise ValueError(f"{architecture} is not a Faster R-CNN")
    low, high, before, after = RCNN_DEFAULTS[architecture]
    if min_size is not None:
        low, high = min_size, round(min_size * MAX_SIZE_RATIO)
    if proposals is not None:
        before = after = proposals
    return RCNNRun(low, high, min_size is not None, before, after, score_threshold)
