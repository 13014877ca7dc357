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

import heapq
import os
import re
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import av
import cv2
import numpy as np

from posetrack_cli.core.errors import FrameSizeChanged, FrameStopped, FrameUnreadable, PosetrackError
from posetrack_cli.core.types import DEFAULT_IMAGE_FPS, Frame

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})

Warn = Callable[[str], None]
# A decoded frame: (image (H, W, 3) uint8 BGR, seconds from the stream's start or None, index, pts or None)
_Decoded = tuple[np.ndarray, "float | None", int, "int | None"]
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
            self._stop: str | None = None
            self.missing: list[tuple[int, int]] = []  # (first, last) indices of frames not decoded
            self._pending: Iterator[Frame] | None = None  # the frames after the one resume_after returned
            self._positions: dict[int, dict[str, Any]] = {}  # the last frames decoded, for checkpoints
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

    def _decode(self) -> Iterator[_Decoded]:
        """``(image, seconds or None, index, pts)`` of each frame in display order until decoding stops.

        A packet that does not decode is skipped (FFmpeg conceals damage, as OpenCV's capture
        did); a demuxing error (a truncated file) ends the stream. ``index`` is the frame's place
        in the container: the number of its frames that come before it in display order, those
        that could not be decoded included (see :class:`_FrameIndex`).
        """
        stream = self._stream
        start = stream.start_time
        base = stream.time_base
        packets = self._container.demux(stream)
        places = _FrameIndex()
        try:
            yield from self._decode_packets(packets, start, base, places)
        finally:
            getattr(packets, "close", lambda: None)()  # before the container closes: no demuxing from freed memory

    def _decode_packets(self, packets: Iterator[av.Packet[av.VideoStream]], start: int | None,
                        base: Fraction | None,
                        places: _FrameIndex) -> Iterator[_Decoded]:
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.FFmpegError, OSError):
                return
            if packet.size > 0:
                self._packets += 1
                places.demuxed(packet.pts, packet.is_keyframe)
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
                yield image, seconds, places.decoded(frame.pts), frame.pts

    def frames(self) -> Iterator[Frame]:
        """Decode frames in order until the stream ends (or stops decoding).

        Each frame keeps its place in the container as its index: frames that cannot be decoded
        (a damaged stretch of the file) are missing from the output and listed in
        :attr:`missing`, never renumbered over. Raises FrameSizeChanged at the first frame whose
        size differs from the first frame's, and FrameStopped once :meth:`request_stop` was
        called (the frames before have been yielded). After :meth:`resume_after`, the frames come
        from the one after that frame on.
        """
        if self._pending is not None:  # resumed: the reading of resume_after goes on
            yield from self._pending
            return
        pending = _chain(self._first, self._decoded)
        offset = 0.0  # added to the timestamps after they jumped back
        last: float | None = None
        expected = 0  # the index the next frame has when none is missing
        step = 1.0 / self.fps if self.fps > 0 else 1.0 / DEFAULT_IMAGE_FPS
        for image, seconds, index, pts in pending:
            if self._stop is not None:
                raise FrameStopped(self._stop)
            if index > expected:
                self.missing.append((expected, index - 1))
            expected = index + 1
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
            self._positions[index] = {"index": index, "pts": pts}
            while len(self._positions) > _POSITIONS_KEPT:
                del self._positions[next(iter(self._positions))]
            yield Frame(index, timestamp, image)
        if self.frame_count is not None and expected < self.frame_count:  # the container lists more
            self.missing.append((expected, self.frame_count - 1))

    def position(self, index: int) -> dict[str, Any]:
        """Where frame ``index`` (one of the last few decoded) is in the file, for
        :meth:`resume_after` in another run: its index and its timestamp as the file stores it."""
        try:
            return dict(self._positions[index])
        except KeyError:
            raise ValueError(f"frame {index} is not among the last frames decoded") from None

    def resume_after(self, position: dict[str, Any]) -> Frame:
        """Read up to the frame at ``position`` (:meth:`position` of an earlier run on this file) and
        return it; ``frames()`` then goes on from the frame after it, with the same numbers and
        timestamps as an uninterrupted reading.

        The frames before it are decoded, not sought past: a decoder restarted at a keyframe can
        give other pixels than one that decoded every frame (after damage, or where a group of
        pictures refers to the one before), and a resumed run must see the frames the first one
        saw. Decoding is a small share of a run (``benchmarks/decode.py``). Raises PosetrackError
        when the frame is not where it was (the file changed).
        """
        index, pts = int(position["index"]), position["pts"]
        reading = self.frames()
        for frame in reading:
            if frame.index >= index:
                if frame.index != index or self._positions[index]["pts"] != pts:
                    break
                self._pending = _rest_of(reading)
                return frame
        raise PosetrackError(f"{self.path}: frame {index} is not where it was (the file changed?)")

    def request_stop(self, reason: str) -> None:
        """End ``frames()`` before its next frame with ``FrameStopped(reason)`` (Ctrl-C, SIGTERM);
        safe to call from a signal handler or another thread."""
        self._stop = reason

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


# Positions of the last frames decoded kept for checkpoints: decoding runs ahead of the frame being
# saved by at most the prefetch queues (a few frames), far fewer than this.
_POSITIONS_KEPT = 256


class _FrameIndex:
    """Each decoded frame's place in its container, from the timestamps of the packets demuxed.

    A decoder hands frames out in display order, and a frame comes out only once every frame that
    shows before it has been demuxed (it may be a reference for it). So the frame with timestamp
    ``pts`` is preceded by exactly the demuxed packets whose timestamp is lower: its index counts
    them, the undecodable ones included, so a damaged stretch leaves a gap instead of renumbering
    the frames after it.

    Streams joined end to end (concatenated MPEG-TS) start their timestamps again: a keyframe
    packet that shows before a packet already demuxed, and a decoded frame that shows before the
    frame before it, each open a new *segment*, whose timestamps are moved past the previous
    segment's on both sides alike. Packets without a timestamp (some raw streams) count frames
    in order.
    """

    def __init__(self) -> None:
        self._pending: list[int] = []  # a heap: (moved) timestamps of demuxed packets not yet counted
        self._before = 0  # packets counted: they show before the frames still to come
        self._last = -1  # the index given last: indices only grow
        self._shifts = [0]  # per segment, what moves its timestamps past the previous segments'
        self._packet_segment = 0
        self._packet_max: int | None = None  # the highest raw timestamp demuxed in the current segment
        self._moved_max: int | None = None  # the highest moved timestamp demuxed
        self._frame_segment = 0
        self._frame_last: int | None = None  # the raw timestamp of the frame decoded last

    def demuxed(self, pts: int | None, keyframe: bool) -> None:
        if pts is None:
            return
        if keyframe and self._packet_max is not None and pts < self._packet_max:  # the timestamps start again
            assert self._moved_max is not None
            self._shifts.append(self._moved_max + 1 - pts)
            self._packet_segment += 1
            self._packet_max = None
        self._packet_max = pts if self._packet_max is None else max(self._packet_max, pts)
        moved = pts + self._shifts[self._packet_segment]
        self._moved_max = moved if self._moved_max is None else max(self._moved_max, moved)
        heapq.heappush(self._pending, moved)

    def decoded(self, pts: int | None) -> int:
        if pts is None:
            index = self._last + 1
        else:
            if self._frame_last is not None and pts < self._frame_last and self._frame_segment + 1 < len(self._shifts):
                self._frame_segment += 1  # the first frame of the next segment
            self._frame_last = pts
            moved = pts + self._shifts[self._frame_segment]
            while self._pending and self._pending[0] < moved:
                heapq.heappop(self._pending)
                self._before += 1
            if self._pending and self._pending[0] == moved:  # this frame's own packet
                heapq.heappop(self._pending)
                index = self._before
                self._before += 1
            else:
                index = self._before
            index = max(index, self._last + 1)
        self._last = index
        return index


def _rest_of(reading: Iterator[T]) -> Iterator[T]:
    yield from reading


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
        self.missing: list[tuple[int, int]] = []  # a frame folder stops at an unreadable image instead
        self._stop: str | None = None
        self._start = 0  # the first frame frames() gives (after resume_after)
        first = read_image(self.files[0])
        self.height, self.width = first.shape[:2]

    def request_stop(self, reason: str) -> None:
        """End ``frames()`` before its next frame with ``FrameStopped(reason)``."""
        self._stop = reason

    def position(self, index: int) -> dict[str, Any]:
        """Where frame ``index`` is, for :meth:`resume_after` in another run."""
        return {"index": index, "file": self.files[index].name}

    def resume_after(self, position: dict[str, Any]) -> Frame:
        """The frame at ``position``; ``frames()`` then goes on from the one after it."""
        index = int(position["index"])
        if index >= len(self.files) or self.files[index].name != position["file"]:
            raise PosetrackError(f"{self.path}: frame {index} is not {position['file']} any more (the folder changed)")
        self._start = index + 1
        return Frame(index, index / self.fps, read_image(self.files[index]), self.files[index].name)

    def frames(self) -> Iterator[Frame]:
        for index, file in enumerate(self.files):
            if index < self._start:
                continue
            if self._stop is not None:
                raise FrameStopped(self._stop)
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
        self.missing: list[tuple[int, int]] = []  # images are independent: an unreadable one is listed above

    def request_stop(self, reason: str) -> None:
        """Ignored: a folder of independent images is read to its end (each image is quick)."""

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
