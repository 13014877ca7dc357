"""Frame sources: a video file or a folder of images, read as ``Frame`` records.

Video files are decoded with PyAV (FFmpeg's libraries) rather than OpenCV's capture, because
OpenCV's FFmpeg backend rescales every frame to the first frame's size without saying so: a
stream whose resolution changes midway (two clips concatenated) would be tracked on stretched
frames. PyAV reports each decoded frame's own size, so a size change stops the video there (the
frames before are kept, the output is partial), as a frame folder does.

Timestamps come from the container (each frame's presentation time), because variable frame
rate is real; a folder of images has no container, so its frames are spaced by a given frame
rate. Timestamps that jump back (concatenated MPEG-TS files restart their clocks) are warned
about once and continued from where they were, so they stay increasing.
"""

from __future__ import annotations

import os
import re
import sys
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import av
import cv2
import numpy as np

from posetrack_cli.core.errors import FrameSizeChanged, FrameUnreadable, PosetrackError
from posetrack_cli.core.types import DEFAULT_IMAGE_FPS, Frame

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})

Warn = Callable[[str], None]
T = TypeVar("T")

# OpenCV still opens overlay videos (the resume check reads them back); its FFmpeg prints its own
# diagnostics (e.g. "moov atom not found") to stderr, which posetrack reports as one line of its
# own instead. A user may set the variable to see them again.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def warn_on_stderr(message: str) -> None:
    """The default receiver of a source's warnings: one ``posetrack: warning:`` line on stderr."""
    print(f"posetrack: warning: {message}", file=sys.stderr, flush=True)


def natural_key(name: str) -> list[object]:
    """Sort key that orders ``frame2`` before ``frame10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_images(folder: Path) -> list[Path]:
    """Image files of a folder in natural order."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=lambda p: natural_key(p.name))


# OpenCV's rotation for a display-matrix angle (degrees clockwise), as its capture applies it.
_ROTATIONS = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


class VideoSource:
    """A video file decoded with PyAV, its first frame decoded on opening.

    Attributes:
        path: the file.
        fps: the container's nominal frame rate (timestamps do not assume it), 0.0 if unknown.
        frame_count: the frame count the container records, or None when it records none (MPEG-TS,
            Matroska); it may also be wrong for a truncated file: ``frames()`` reads until decoding stops.
        width, height: size of the first frame (after the rotation the file asks for).
        notes: the warnings given while reading (also passed to ``warn``).

    Raises PosetrackError (one line) for a missing, empty or unreadable file, and for a video
    without a single frame ("no frames").
    """

    def __init__(self, path: Path, *, warn: Warn = warn_on_stderr) -> None:
        self.path = path
        self._warn = warn
        self.notes: list[str] = []
        if not path.exists():
            raise PosetrackError(f"no such file: {path}")
        if path.stat().st_size == 0:
            raise PosetrackError(f"empty file (0 bytes): {path}")
        try:
            self._container = av.open(str(path))
        except (av.FFmpegError, OSError, UnicodeDecodeError):
            raise PosetrackError(f"cannot open {path} as a video (not a video, unsupported codec, "
                                 "or truncated)") from None
        try:
            streams = self._container.streams.video
            if not streams:
                raise PosetrackError(f"{path} has no frames (it holds no video stream)")
            self._stream = streams[0]
            self._stream.thread_type = "AUTO"  # frame and slice threads, as OpenCV's capture uses
            rate = self._stream.average_rate or self._stream.guessed_rate
            self.fps = float(rate) if rate else 0.0
            self.frame_count: int | None = int(self._stream.frames) or None
            self._packets = 0  # non-empty packets demuxed so far
            self._decoded = self._decode()
            first = next(self._decoded, None)
            if first is None:
                raise PosetrackError(f"{path} has no frames" if not self._packets else
                                     f"{path}: no frame could be decoded ({self._packets} damaged packets)")
        except BaseException:
            self._container.close()
            raise
        self._first = first
        self.height, self.width = first[0].shape[:2]

    def _decode(self) -> Iterator[tuple[np.ndarray, float | None]]:
        """``(image, seconds or None)`` of each frame in display order until decoding stops.

        A packet that does not decode is skipped (FFmpeg conceals damage, as OpenCV's capture
        did); a demuxing error (a truncated file) ends the stream.
        """
        stream = self._stream
        start = stream.start_time
        base = stream.time_base
        packets = self._container.demux(stream)
        try:
            yield from self._decode_packets(packets, start, base)
        finally:
            getattr(packets, "close", lambda: None)()  # before the container closes: no demuxing from freed memory

    def _decode_packets(self, packets: Iterator[av.Packet[av.VideoStream]], start: int | None,
                        base: Fraction | None) -> Iterator[tuple[np.ndarray, float | None]]:
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.FFmpegError, OSError):
                return
            self._packets += packet.size > 0
            try:
                frames = packet.decode()
            except av.FFmpegError:
                continue
            for frame in frames:
                image: np.ndarray = frame.to_ndarray(format="bgr24")  # (H, W, 3) uint8
                angle = round(-frame.rotation) % 360 if frame.rotation else 0
                if angle in _ROTATIONS:
                    image = cv2.rotate(image, _ROTATIONS[angle])
                seconds = None
                if frame.pts is not None and base is not None:
                    if start is None:
                        start = frame.pts
                    seconds = float((frame.pts - start) * base)
                yield image, seconds

    def frames(self) -> Iterator[Frame]:
        """Decode frames in order until the stream ends (or stops decoding).

        Raises FrameSizeChanged at the first frame whose size differs from the first frame's
        (the frames before it have been yielded).
        """
        pending: Iterator[tuple[np.ndarray, float | None]] = _chain(self._first, self._decoded)
        offset = 0.0
        last: float | None = None
        step = 1.0 / self.fps if self.fps > 0 else 1.0 / DEFAULT_IMAGE_FPS
        for index, (image, seconds) in enumerate(pending):
            if image.shape[:2] != (self.height, self.width):
                raise FrameSizeChanged(
                    f"{self.path}: frame {index} is {image.shape[1]}x{image.shape[0]}, "
                    f"the video started at {self.width}x{self.height}"
                )
            if seconds is None:
                timestamp = (last + step) if last is not None else 0.0
            else:
                timestamp = seconds + offset
                if last is not None and timestamp < last:
                    self._note(f"{self.path}: timestamps jump back at frame {index} "
                               f"({last:.3f} s to {timestamp:.3f} s, "
                               f"as in concatenated streams); continuing them from {last:.3f} s")
                    offset += last + step - timestamp
                    timestamp = last + step
            last = timestamp
            yield Frame(index, timestamp, image)

    def _note(self, message: str) -> None:
        self.notes.append(message)
        self._warn(message)

    def close(self) -> None:
        """Close the decoder, then the container (in that order: a demuxer left to the garbage
        collector after its container closed touches freed memory)."""
        try:
            getattr(self._decoded, "close", lambda: None)()
        except ValueError:  # still running in a reader thread: it stops at its next frame
            pass
        self._container.close()


def _chain(first: T, rest: Iterator[T]) -> Iterator[T]:
    yield first
    yield from rest


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
        first = read_image(self.files[0])
        self.height, self.width = first.shape[:2]

    def frames(self) -> Iterator[Frame]:
        for index, file in enumerate(self.files):
            image = read_image(file, FrameUnreadable)
            if image.shape[:2] != (self.height, self.width):
                raise FrameSizeChanged(
                    f"{file}: image is {image.shape[1]}x{image.shape[0]}, "
                    f"the sequence started at {self.width}x{self.height}"
                )
            yield Frame(index, index / self.fps, image, file.name)

    def close(self) -> None:
        pass


class ImageSetSource:
    """The images of a folder taken each on its own (``posetrack run --images``): any sizes, in
    natural order, no timing. An image that cannot be read is skipped and named in ``unreadable``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files = list_images(path) if path.is_dir() else []
        if not self.files:
            raise PosetrackError(f"{path}: no images for --images (a folder of .jpg, .png, ... files)")
        self.fps = 0.0
        self.frame_count: int | None = len(self.files)
        self.unreadable: list[str] = []

    def frames(self) -> Iterator[Frame]:
        for index, file in enumerate(self.files):
            image = cv2.imread(str(file), cv2.IMREAD_COLOR)
            if image is None:
                self.unreadable.append(file.name)
                continue
            yield Frame(index, 0.0, image, file.name)

    def close(self) -> None:
        pass


FrameSource = VideoSource | ImageFolderSource


def read_image(file: Path, error: type[PosetrackError] = PosetrackError) -> np.ndarray:
    """``(H, W, 3)`` uint8 BGR of an image file; ``error`` with one line when it cannot be decoded."""
    image = cv2.imread(str(file), cv2.IMREAD_COLOR)
    if image is None:
        raise error(f"cannot read image {file} (corrupt or not an image)")
    return image


def open_source(path: str | Path, *, image_fps: float = DEFAULT_IMAGE_FPS, warn: Warn = warn_on_stderr) -> FrameSource:
    """Open a video file or a folder of images; one-line PosetrackError if it cannot be read.

    ``warn`` receives one-line warnings about the source (a video's timestamps jumping back).

    Example:
        A folder of three tiny frames, read in natural order (``frame2`` before ``frame10``) and
        spaced at the default 30 fps:

        >>> import tempfile
        >>> from pathlib import Path
        >>> import cv2
        >>> import numpy as np
        >>> from posetrack_cli import open_source
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     for i in (1, 2, 10):
        ...         _ = cv2.imwrite(str(Path(folder) / f"frame{i}.png"), np.full((24, 32, 3), 10 * i, np.uint8))
        ...     source = open_source(folder)
        ...     print(source.frame_count, source.width, source.height, source.fps)
        ...     for frame in source.frames():
        ...         print(frame.index, round(frame.timestamp, 3), frame.file_name, frame.image[0, 0].tolist())
        ...     source.close()
        3 32 24 30.0
        0 0.0 frame1.png [10, 10, 10]
        1 0.033 frame2.png [20, 20, 20]
        2 0.067 frame10.png [100, 100, 100]
        >>> open_source("no-such-video.mp4")
        Traceback (most recent call last):
        ...
        posetrack_cli.core.errors.PosetrackError: no such file: no-such-video.mp4
    """
    path = Path(path)
    if path.is_dir():
        return ImageFolderSource(path, image_fps)
    return VideoSource(path, warn=warn)
