"""Person crops for int8 calibration, gathered from the user's own videos and images.

``posetrack calibrate`` runs the detector over frames of the given videos and images (every
``every``-th frame of a video), cuts each person as a run would (flipped crops included when the
flip test is on), and hands those network inputs to the int8 runtime, which quantizes on three
quarters, measures agreement with fp32 on the rest, and caches the result for later runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.types import Detections
from posetrack_cli.io.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, VideoSource, natural_key, read_image

if TYPE_CHECKING:
    from posetrack_cli.inference.estimator import PoseEstimator

DEFAULT_CROPS = 300  # NNCF's default calibration subset size


@dataclass(frozen=True)
class Gathered:
    """Network inputs for calibration and where they came from.

    Attributes:
        inputs: ``(N, 3, H, W)`` float32, normalised as the network is fed.
        files: files that gave at least one person.
        frames: frames looked at.
    """

    inputs: np.ndarray
    files: int
    frames: int

    def describe(self) -> str:
        return f"{len(self.inputs)} crops from {self.frames} frames of {self.files} file(s)"


def calibration_files(sources: Iterable[Path]) -> list[Path]:
    """Videos and images among ``sources``, folders searched recursively, in natural order."""
    found: list[Path] = []
    for source in sources:
        if source.is_dir():
            found += sorted((p for p in source.rglob("*") if p.is_file()
                             and p.suffix.lower() in VIDEO_EXTENSIONS | IMAGE_EXTENSIONS),
                            key=lambda p: natural_key(str(p)))
        elif source.is_file():
            found.append(source)
        else:
            raise PosetrackError(f"no such file or folder: {source}")
    if not found:
        raise PosetrackError("no videos or images to calibrate on")
    return found


def _frames(path: Path, every: int) -> Iterator[np.ndarray]:
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        yield read_image(path)
        return
    source = VideoSource(path)
    try:
        for frame in source.frames():
            if frame.index % every == 0:
                yield frame.image
    finally:
        source.close()


class Detector(Protocol):
    """What gathering needs of a detector: person boxes of frames."""

    def detect(self, frames: list[np.ndarray]) -> list[Detections]: ...


def gather_inputs(estimator: PoseEstimator, detector: Detector, files: list[Path], *, crops: int = DEFAULT_CROPS,
                  every: int = 10) -> Gathered:
    """Network inputs of the people ``detector`` finds in ``files``, until ``crops`` are gathered.

    ``estimator`` is a :class:`~posetrack_cli.inference.estimator.PoseEstimator`, ``detector`` anything with
    ``detect(frames) -> [Detections]``.
    """
    parts: list[np.ndarray] = []
    total, frames, used = 0, 0, 0
    for path in files:
        before = total
        for image in _frames(path, every):
            frames += 1
            (found,) = detector.detect([image])
            if len(found):
                parts.append(estimator.network_inputs(image, found.boxes))
                total += len(parts[-1])
            if total >= crops:
                break
        used += total > before
        if total >= crops:
            break
    if total < 8:
        raise PosetrackError(f"found {total} person crops in {frames} frames; calibration needs at least 8 "
                             "(give videos or images with people in them)")
    return Gathered(np.concatenate(parts)[:crops], used, frames)
