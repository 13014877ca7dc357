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
  :class:`ModelChoice`; :func:`open_source` for video files and frame folders, :func:`open_live`
  (a :class:`LiveSource`) for webcams, stream URLs and stdin (:func:`live_kind` tells them apart);
* pictures and other tools' formats of a result: :class:`OverlayRenderer` and :class:`OverlayConfig`
  (draw tracked frames), :func:`write_report` (an HTML page and plots), :func:`write_exports`
  (PoseTrack 2018, COCO results, MOTChallenge boxes).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from posetrack_cli.core.version import __version__

_PUBLIC = {
    "PoseTrack": "posetrack_cli.run.api",
    "Detections": "posetrack_cli.core.types",
    "Poses": "posetrack_cli.core.types",
    "TrackedFrame": "posetrack_cli.core.types",
    "Pipeline": "posetrack_cli.run.pipeline",
    "PoseEstimator": "posetrack_cli.inference.estimator",
    "PoseTracker": "posetrack_cli.tracking.tracker",
    "TrackerConfig": "posetrack_cli.tracking.tracker",
    "PipelineConfig": "posetrack_cli.run.settings",
    "EstimatorConfig": "posetrack_cli.inference.config",
    "ModelChoice": "posetrack_cli.run.settings",
    "open_source": "posetrack_cli.io.video",
    "OverlayRenderer": "posetrack_cli.io.render",
    "OverlayConfig": "posetrack_cli.io.render",
    "write_report": "posetrack_cli.io.report",
    "write_exports": "posetrack_cli.io.exports",
    "open_live": "posetrack_cli.io.live",
    "live_kind": "posetrack_cli.io.live",
    "LiveSource": "posetrack_cli.io.live",
    "PosetrackError": "posetrack_cli.core.errors",
    "COCO_KEYPOINTS": "posetrack_cli.core.keypoints",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'posetrack_cli' has no attribute {name!r}")
