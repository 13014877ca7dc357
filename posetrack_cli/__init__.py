"""posetrack: multi-person 2D pose tracking in video.

Implements "Simple Baselines for Human Pose Estimation and Tracking" (Xiao, Wu, Wei, ECCV 2018):
a person detector, a ResNet + deconvolution heatmap network, optical-flow joint propagation and
greedy flow-OKS matching.

The two ways in:

* :class:`VideoTracker` -- load the models once, then ``track(video)`` frame by frame or
  ``run(...)`` into the files the command line writes;
* :class:`FrameTracker` -- ids for poses from any estimator, one frame at a time
  (``update(frame, poses)``), with converters from the structures other libraries return
  (:func:`poses_from_ultralytics`, :func:`poses_from_supervision`, :func:`poses_from_coco_results`).

Also here: the core types (:class:`Poses`, :class:`Detections`, :class:`TrackedFrame`,
:class:`Frame`), the typed settings, the building blocks (:class:`Pipeline`,
:class:`PoseEstimator`), sources (:func:`open_source`, :func:`open_live`), and pictures and other
tools' formats of a result (:class:`OverlayRenderer`, :func:`write_report`, :func:`write_exports`).

The names are imported on first use, so ``import posetrack_cli`` and ``posetrack --help`` stay
fast (torch loads only when a model does); type checkers see them through the imports below.

Example:
    >>> import posetrack_cli
    >>> posetrack_cli.Poses.empty(17).keypoints.shape
    (0, 17, 2)
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from posetrack_cli.core.version import __version__

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time each name loads on first use
    from posetrack_cli.core.errors import OptionsError, PosetrackError
    from posetrack_cli.core.keypoints import COCO_KEYPOINTS
    from posetrack_cli.core.types import Detections, Frame, Poses, TrackedFrame
    from posetrack_cli.inference.config import EstimatorConfig
    from posetrack_cli.inference.estimator import PoseEstimator
    from posetrack_cli.io.exports import write_exports
    from posetrack_cli.io.interop import (
        coco_results_from_tracked,
        poses_from_coco_results,
        poses_from_supervision,
        poses_from_ultralytics,
        to_supervision,
    )
    from posetrack_cli.io.live import LiveSource, live_kind, open_live
    from posetrack_cli.io.render import OverlayConfig, OverlayRenderer
    from posetrack_cli.io.report import write_report
    from posetrack_cli.io.video import open_source
    from posetrack_cli.run.api import VideoTracker
    from posetrack_cli.run.frame_tracker import FrameTracker
    from posetrack_cli.run.pipeline import Pipeline
    from posetrack_cli.run.settings import ModelChoice, PipelineConfig, RunSpec, TrackOutputConfig, spec_from_options
    from posetrack_cli.tracking.confirmation import Confirmation
    from posetrack_cli.tracking.similarity import OKS, BoxIoU, FlowOKS, Similarity
    from posetrack_cli.tracking.smoothing import SmoothingConfig
    from posetrack_cli.tracking.tracker import TrackerConfig

# Public name -> the module that owns it.
_PUBLIC = {
    "VideoTracker": "posetrack_cli.run.api",
    "FrameTracker": "posetrack_cli.run.frame_tracker",
    "Confirmation": "posetrack_cli.tracking.confirmation",
    "Detections": "posetrack_cli.core.types",
    "Poses": "posetrack_cli.core.types",
    "TrackedFrame": "posetrack_cli.core.types",
    "Frame": "posetrack_cli.core.types",
    "Pipeline": "posetrack_cli.run.pipeline",
    "PoseEstimator": "posetrack_cli.inference.estimator",
    "TrackerConfig": "posetrack_cli.tracking.tracker",
    "Similarity": "posetrack_cli.tracking.similarity",
    "FlowOKS": "posetrack_cli.tracking.similarity",
    "OKS": "posetrack_cli.tracking.similarity",
    "BoxIoU": "posetrack_cli.tracking.similarity",
    "SmoothingConfig": "posetrack_cli.tracking.smoothing",
    "PipelineConfig": "posetrack_cli.run.settings",
    "TrackOutputConfig": "posetrack_cli.run.settings",
    "ModelChoice": "posetrack_cli.run.settings",
    "RunSpec": "posetrack_cli.run.settings",
    "spec_from_options": "posetrack_cli.run.settings",
    "EstimatorConfig": "posetrack_cli.inference.config",
    "open_source": "posetrack_cli.io.video",
    "OverlayRenderer": "posetrack_cli.io.render",
    "OverlayConfig": "posetrack_cli.io.render",
    "write_report": "posetrack_cli.io.report",
    "write_exports": "posetrack_cli.io.exports",
    "poses_from_ultralytics": "posetrack_cli.io.interop",
    "poses_from_supervision": "posetrack_cli.io.interop",
    "to_supervision": "posetrack_cli.io.interop",
    "poses_from_coco_results": "posetrack_cli.io.interop",
    "coco_results_from_tracked": "posetrack_cli.io.interop",
    "open_live": "posetrack_cli.io.live",
    "live_kind": "posetrack_cli.io.live",
    "LiveSource": "posetrack_cli.io.live",
    "PosetrackError": "posetrack_cli.core.errors",
    "OptionsError": "posetrack_cli.core.errors",
    "COCO_KEYPOINTS": "posetrack_cli.core.keypoints",
}
__all__ = [
    "__version__",
    "VideoTracker",
    "FrameTracker",
    "Confirmation",
    "Detections",
    "Poses",
    "TrackedFrame",
    "Frame",
    "Pipeline",
    "PoseEstimator",
    "TrackerConfig",
    "Similarity",
    "FlowOKS",
    "OKS",
    "BoxIoU",
    "SmoothingConfig",
    "PipelineConfig",
    "TrackOutputConfig",
    "ModelChoice",
    "RunSpec",
    "spec_from_options",
    "EstimatorConfig",
    "open_source",
    "OverlayRenderer",
    "OverlayConfig",
    "write_report",
    "write_exports",
    "poses_from_ultralytics",
    "poses_from_supervision",
    "to_supervision",
    "poses_from_coco_results",
    "coco_results_from_tracked",
    "open_live",
    "live_kind",
    "LiveSource",
    "PosetrackError",
    "OptionsError",
    "COCO_KEYPOINTS",
]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'posetrack_cli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
