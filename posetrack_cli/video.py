"""Frame sources: a video file or a folder of images, read as ``Frame`` records.

Timestamps come from the container (``CAP_PROP_POS_MSEC`` of each decoded frame), because
variable frame rate is real; a folder of images has no container, so its frames are spaced by a
given frame rate. Both sources check that every frame has the first frame's size.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from posetrack_cli.errors import PosetrackError

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
DEFAULT_IMAGE_FPS = 30.0  # frame folders carry no timing; PoseTrack's videos are ~30 fps

# FFmpeg prints its own diagnostics (e.g. "moov atom not found") to stderr; posetrack reports a
# failed open as one line of its own instead. A user may set the variable to see them again.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


@contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Hold back OpenCV's own warnings (it warns on every file it cannot open) for one call."""
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    Attributes:
        index: 0-based position in the source.
        timestamp: seconds from the start of the container.
        image: ``(H, W, 3)`` uint8 BGR.
        file_name: the image's name for a frame folder, else None.
    """

    index: int
    timestamp: float
    image: np.ndarray
    file_name: str | None = None


class FrameStopped(PosetrackError):
    """Reading stopped partway: the frames before are good, the rest cannot be used."""


class FrameSizeChanged(FrameStopped):
    """A frame's size differs from the first frame's."""


class FrameUnreadable(FrameStopped):
    """An image of a frame folder (after the first) cannot be decoded."""


def natural_key(name: str) -> list[object]:
    """Sort key that orders ``frame2`` before ``frame10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_images(folder: Path) -> list[Path]:
    """Image files of a folder in natural order."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=lambda p: natural_key(p.name))


class VideoSource:
    """A video file read with OpenCV's FFmpeg backend.

    Attributes:
        path: the file.
        fps: the container's nominal frame rate (timestamps do not assume it).
        frame_count: the container's frame count, or None when it does not say (it may also be
            wrong for a truncated file; ``frames()`` reads until decoding stops).
        width, height: frame size.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            raise PosetrackError(f"no such file: {path}")
        if path.stat().st_size == 0:
            raise PosetrackError(f"empty file (0 bytes): {path}")
        with _quiet_opencv():
            self._cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not self._cap.isOpened():
            raise PosetrackError(f"cannot open {path} as a video (not a video, unsupported codec, or truncated)")
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS)) or 0.0
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else None
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))

    def frames(self) -> Iterator[Frame]:
        """Decode frames in order until the stream ends (or stops decoding)."""
        index = 0
        while True:
            ok, image = self._cap.read()
            if not ok or image is None:
                return
            if image.shape[:2] != (self.height, self.width):
                raise FrameSizeChanged(
                    f"{self.path}: frame {index} is {image.shape[1]}x{image.shape[0]}, "
                    f"the video started at {self.width}x{self.height}"
                )
            timestamp = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            yield Frame(index, timestamp, image)
            index += 1

    def close(self) -> None:
        self._cap.release()


class ImageFolderSource:
    """A folder of images taken as one sequence in natural sort order, spaced ``1 / fps`` apart."""

    def __init__(self, path: Path, fps: float = DEFAULT_IMAGE_FPS) -> None:
        self.path = path
        self.files = list_images(path)
        if not self.files:
            raise PosetrackError(f"{path} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        if fps <= 0:
            raise PosetrackError(f"frame rate must be positive, got {fps}")
        self.fps = fps
        self.frame_count: int | None = len(self.files)
        first = self._read(self.files[0])
        self.height, self.width = first.shape[:2]

    def _read(self, file: Path, error: type[PosetrackError] = PosetrackError) -> np.ndarray:
        image = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if image is None:
            raise error(f"cannot read image {file} (corrupt or not an image)")
        return image

    def frames(self) -> Iterator[Frame]:
        for index, file in enumerate(self.files):
            image = self._read(file, FrameUnreadable)
            if image.shape[:2] != (self.height, self.width):
                raise FrameSizeChanged(
                    f"{file}: image is {image.shape[1]}x{image.shape[0]}, the sequence started at {self.width}x{self.height}"
                )
            yield Frame(index, index / self.fps, image, file.name)

    def close(self) -> None:
        pass


FrameSource = VideoSource | ImageFolderSource


def open_source(path: str | Path, *, image_fps: float = DEFAULT_IMAGE_FPS) -> FrameSource:
    """Open a video file or a folder of images; one-line PosetrackError if it cannot be read."""
    path = Path(path)
    if path.is_dir():
        return ImageFolderSource(path, image_fps)
    return VideoSource(path)
