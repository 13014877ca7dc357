"""Presets: which detector, pose network and flow a run uses, and loading them once for a batch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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


def parse_size(text: str) -> tuple[int, int]:
    """``"192x256"`` -> ``(192, 256)`` as (width, height)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise PosetrackError(f"input size must look like 192x256 (width x height), got {text!r}") from None
    return w, h


def load_estimator(*, pose: str, pose_weights: Path | None, input_size: tuple[int, int] | None, device: str,
                   batch_size: int, flip_test: bool, allow_download: bool, half: bool = False,
                   compile: bool = False, runtime: str = "auto", precision: str = "auto"):  # -> PoseEstimator
    """The pose estimator from a manifest name or a local checkpoint in any supported layout.

    A manifest file brings its input size and normalisation; a local file brings what it records
    (posetrack-trained files record both; released files are read by layout and file name).
    """
    from posetrack_cli.checkpoints import InputNorm
    from posetrack_cli.estimator import PoseEstimator
    from posetrack_cli.weights import resolve

    settings = dict(device=device, batch_size=batch_size, flip_test=flip_test, half=half, compile=compile,
                    runtime=runtime, precision=precision)
    if pose_weights is not None:
        return PoseEstimator.from_checkpoint(pose_weights, input_size=input_size, **settings)
    entry, path = resolve(pose, allow_download=allow_download)
    if entry.kind != "pose":
        raise PosetrackError(f"{pose} is a {entry.kind} file, not a pose model")
    norm = InputNorm(entry.norm["channel_order"], tuple(entry.norm["mean"]), tuple(entry.norm["std"]))
    return PoseEstimator.from_checkpoint(path, input_size=input_size or entry.input_size, norm=norm, **settings)
