"""posetrack: multi-person 2D pose tracking in video.

Implements "Simple Baselines for Human Pose Estimation and Tracking" (Xiao, Wu, Wei, ECCV 2018):
a person detector, a ResNet + deconvolution heatmap network, optical-flow joint propagation and
greedy flow-OKS matching.

The public names below are imported on first use, so ``import posetrack_cli`` and ``posetrack
--help`` stay fast (torch loads only when a model does):

* :class:`PoseTrack` -- load the models once, then ``track(video)`` frame by frame or ``run(...)``
  into the files the command line writes;
* the core types :class:`Detections`, :class:`Poses`, :class:`TrackedFrame`;
* the building blocks :class:`Pipeline`, :class:`PoseEstimator`, :class:`PoseTracker` and their
  configs :class:`PipelineConfig`, :class:`EstimatorConfig`, :class:`TrackerConfig`,
  :class:`ModelChoice`; :func:`open_source` for video files and frame folders;
* pictures and other tools' formats of a result: :class:`OverlayRenderer` and :class:`OverlayConfig`
  (draw tracked frames), :func:`write_report` (an HTML page and plots), :func:`write_exports`
  (PoseTrack 2018, COCO results, MOTChallenge boxes).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "PoseTrack": "posetrack_cli.api",
    "Detections": "posetrack_cli.types",
    "Poses": "posetrack_cli.types",
    "TrackedFrame": "posetrack_cli.types",
    "Pipeline": "posetrack_cli.pipeline",
    "PoseEstimator": "posetrack_cli.estimator",
    "PoseTracker": "posetrack_cli.tracker",
    "TrackerConfig": "posetrack_cli.tracker",
    "PipelineConfig": "posetrack_cli.settings",
    "EstimatorConfig": "posetrack_cli.settings",
    "ModelChoice": "posetrack_cli.settings",
    "open_source": "posetrack_cli.video",
    "OverlayRenderer": "posetrack_cli.render",
    "OverlayConfig": "posetrack_cli.render",
    "write_report": "posetrack_cli.report",
    "write_exports": "posetrack_cli.exports",
    "PosetrackError": "posetrack_cli.errors",
    "COCO_KEYPOINTS": "posetrack_cli.keypoints",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'posetrack_cli' has no attribute {name!r}")
