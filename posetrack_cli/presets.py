"""Presets: which detector, pose network and flow a run uses, and loading them once for a batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from posetrack_cli.errors import PosetrackError


@dataclass(frozen=True)
class Preset:
    """Model choice of a preset; each part can be overridden on the command line.

    Attributes:
        detector: manifest name of the torchvision detector.
        pose: manifest name of the pose checkpoint.
        flow: flow estimator name.
    """

    detector: str
    pose: str
    flow: str


PRESETS: dict[str, Preset] = {
    # CPU-friendly: MobileNetV3 detector (COCO box AP 32.8), ResNet-50 at 256x192 (COCO AP 71.8).
    "fast": Preset("fasterrcnn_mobilenet_v3_large_fpn", "pose_resnet50_256x192", "dis-medium"),
    # Accuracy first: ResNet-50 FPN v2 detector (box AP 46.7), ResNet-152 at 384x288 (COCO AP 75.0).
    "accurate": Preset("fasterrcnn_resnet50_fpn_v2", "pose_resnet152_384x288", "dis-medium"),
}


def load_estimator(models: Any, config: Any, *, allow_download: bool) -> Any:
    """The pose estimator of a :class:`~posetrack_cli.settings.ModelChoice` with ``config``'s settings.

    A manifest file brings its input size and normalisation; a local file brings what it records
    (posetrack-trained files record both; released files are read by layout and file name). The
    input size is ``models.input_size`` when given, else the file's: ``config.input_size`` is
    replaced by it.
    """
    from dataclasses import asdict

    from posetrack_cli.checkpoints import InputNorm
    from posetrack_cli.estimator import PoseEstimator
    from posetrack_cli.weights import resolve

    settings = {k: v for k, v in asdict(config).items() if k != "input_size"}
    if models.pose_weights is not None:
        return PoseEstimator.from_checkpoint(models.pose_weights, input_size=models.input_size, **settings)
    entry, path = resolve(models.pose_name, allow_download=allow_download)
    if entry.kind != "pose":
        raise PosetrackError(f"{models.pose_name} is a {entry.kind} file, not a pose model")
    norm = InputNorm(entry.norm["channel_order"], tuple(entry.norm["mean"]), tuple(entry.norm["std"]))
    return PoseEstimator.from_checkpoint(path, input_size=models.input_size or entry.input_size, norm=norm, **settings)
