"""Live sources: a webcam, a network stream (RTSP, HTTP MJPEG or HLS), or raw frames piped to stdin.

A live source reads like a video file (``path``, ``fps``, ``width``, ``height``, ``frames()``,
``close()``, see :mod:`posetrack_cli.io.video`) but has no end known in advance (``frame_count`` is
None) and no guarantee of timestamps:

* Timestamps are seconds since the first frame, always non-decreasing. They follow the stream's
  own clock where it has one (RTSP, HLS, a webcam's buffer times) and the arrival time where it
  has none (HTTP MJPEG, whose frames FFmpeg numbers at an assumed 25 fps; raw frames on stdin).
  When the stream's clock jumps back (a camera restarting, a new connection), the timestamps
  carry on from the last one by the time that passed.
* A network stream or webcam that stops delivering frames (connection closed, nothing for
  ``timeout`` seconds) is opened again up to ``reconnect`` times per drop, with a short backoff
  and one warning line each time; frame indices and timestamps continue. When the attempts are
  used up, ``frames()`` raises :class:`~posetrack_cli.core.errors.FrameStopped` ("connection lost
  ..."), so the pipeline keeps every frame read before and marks the output partial with that
  reason. Raw frames on stdin end when the pipe closes.
* Every frame must have the first frame's size, as in a file
  (:class:`~posetrack_cli.core.errors.FrameSizeChanged`).

:class:`LiveWindow` shows frames in a window (``--show``); it needs OpenCV's GUI build and a display.
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Callable, Iterator, Protocol
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from posetrack_cli.core.errors import FrameSizeChanged, FrameStopped, PosetrackError
from posetrack_cli.core.types import Frame
from posetrack_cli.io.video import warn_on_stderr

WEBCAM, STREAM, PIPE = "webcam", "stream", "pipe"
STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https")
STDIN = "-"
TIMEOUT_S = 10.0  # a stream that delivers nothing for this long is lost (OpenCV's own default is 30 s)
BACKOFF_S = 1.0  # first wait before reopening a dropped stream; doubled per failed attempt ...
MAX_BACKOFF_S = 8.0  # ... up to this
MAX_NOMINAL_FPS = 1000.0  # backends report a clock rate (90000) or garbage where a stream has no frame rate

Warn = Callable[[str], None]


@contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Hold back OpenCV's own warnings (it warns on every stream it cannot open or read) for one
    call: posetrack says what went wrong in a line of its own."""
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


@dataclass(frozen=True)
class LiveConfig:
    """How ``posetrack run`` reads and writes a live source (each field is the flag of its name).

    Attributes:
        reconnect: attempts to reopen a network stream or webcam each time it drops (0: stop at
            the first drop, keeping what was read).
        pipe_size: ``(width, height)`` of the raw BGR24 frames read from stdin (``-``); required there.
        show: show each frame with its overlay in a window (needs OpenCV's GUI build and a display).
        flush_every: seconds between atomic rewrites of the JSON and CSV on disk, so a stream
            stopped at any moment leaves valid outputs up to at most this long before.
    """

    reconnect: int = 0
    pipe_size: tuple[int, int] | None = None
    show: bool = False
    flush_every: float = 10.0

    def __post_init__(self) -> None:
        if self.reconnect < 0:
            raise ValueError(f"reconnect must be >= 0, got {self.reconnect}")
        if self.pipe_size is not None and min(self.pipe_size) < 1:
            raise ValueError(f"pipe size must be positive, got {self.pipe_size[0]}x{self.pipe_size[1]}")
        if not (math.isfinite(self.flush_every) and self.flush_every > 0):
            raise ValueError(f"flush interval must be a positive number of seconds, got {self.flush_every}")


def live_kind(text: str) -> str | None:
    """Which live source a SOURCE argument names: ``"webcam"`` for an index (``0``, ``1``...),
    ``"stream"`` for an ``rtsp://``, ``rtsps://``, ``http://`` or ``https://`` URL, ``"pipe"`` for
    ``-`` (raw frames on stdin), None for anything else (a file or folder; write ``./0`` for a
    file named ``0``).

    Example:
        >>> from posetrack_cli import live_kind
        >>> [live_kind(text) for text in ("0", "rtsp://cam.local/live", "-", "clip.mp4", "./0")]
        ['webcam', 'stream', 'pipe', None, None]
    """
    if text == STDIN:
        return PIPE
    if re.fullmatch(r"[0-9]+", text):
        return WEBCAM
    scheme, sep, _ = text.partition("://")
    if sep and scheme.lower() in STREAM_SCHEMES:
        return STREAM
    return None


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***``: labels end up in messages and in the JSON."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def stream_name(url: str) -> str:
    """A safe output base name for a stream URL: host, port and path with every other character
    made ``_`` (``rtsp://cam.local:554/live/ch1?token=x`` -> ``cam.local_554_live_ch1``); never
    the credentials or the query, which often carry secrets."""
    parts = urlsplit(url)
    raw = (parts.hostname or "") + (f"_{parts.port}" if parts.port is not None else "") + parts.path
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", raw).strip("._-")[:100]
    return name or "stream"


class StreamClock:
    """Timestamps in seconds since the first frame, non-decreasing across clock jumps and reconnects.

    ``stamp(seconds)`` takes the stream's own time of a frame (None where it has none) right after
    the frame arrived. While the stream's time increases, stamps follow it; on the first frame, on
    a new connection (:meth:`reconnected`), or when the stream's time stops increasing, the stamp
    is the last one plus the arrival time since the last frame, and the stream's time is followed
    from there. A stream without times therefore gets arrival times.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: float | None = None  # last stamp
        self._last_arrival = 0.0
        # (stream time, stamp) the stream's clock is read from, and the last stream time
        self._origin: tuple[float, float, float] | None = None

    def reconnected(self) -> None:
        """The next frame comes from a new connection: its stream time starts afresh."""
        self._origin = None

    def stamp(self, seconds: float | None) -> float:
        now = self._clock()
        arrived = 0.0 if self._last is None else self._last + (now - self._last_arrival)
        if seconds is None or not math.isfinite(seconds):
            self._origin = None
            stamp = arrived
        elif self._origin is None or seconds <= self._origin[2]:
            self._origin = (seconds, arrived, seconds)
            stamp = arrived
        else:
            stamp = self._origin[1] + (seconds - self._origin[0])
            self._origin = (self._origin[0], self._origin[1], seconds)
        stamp = stamp if self._last is None else max(stamp, self._last)
        self._last, self._last_arrival = stamp, now
        return stamp


class _Reader(Protocol):
    """One connection to a live source."""

    def read(self) -> tuple[np.ndarray, float | None] | None:
        """The next ``(H, W, 3)`` uint8 BGR image and its stream time in seconds (None: the stream
        has none), or None when no frame comes."""
        ...

    def lost(self) -> str | None:
        """After ``read`` gave None: why the stream stopped short ("connection lost ..."), or
        None when that was its natural end."""
        ...

    def close(self) -> None: ...


class _CaptureReader:
    """A webcam or network stream through OpenCV (FFmpeg backend for URLs)."""

    def __init__(self, cap: cv2.VideoCapture, *, stream_times: bool, timeout: float, what: str) -> None:
        self._cap = cap
        self._stream_times = stream_times
        self._timeout = timeout
        self._what = what
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self._count = count if count > 0 else None  # a file served over HTTP has an end
        self._read = 0
        self._waited = 0.0

    def read(self) -> tuple[np.ndarray, float | None] | None:
        start = time.monotonic()
        with _quiet_opencv():
            ok, image = self._cap.read()
        self._waited = time.monotonic() - start
        if not ok or image is None:
            return None
        self._read += 1
        return image, (self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 if self._stream_times else None)

    def lost(self) -> str | None:
        if self._count is not None and self._read >= self._count:
            return None
        if self._waited >= 0.9 * self._timeout:
            return f"connection lost: no frame for {self._timeout:g} s"
        return "connection lost" if self._what == STREAM else "the webcam stopped delivering frames"

    def close(self) -> None:
        self._cap.release()


class _PipeReader:
    """Raw BGR24 frames of a known size, back to back, from a binary stream (stdin)."""

    def __init__(self, stream: IO[bytes], width: int, height: int) -> None:
        self._stream = stream
        self._shape = (height, width, 3)
        self._size = width * height * 3
        self._short: int | None = None

    def read(self) -> tuple[np.ndarray, float | None] | None:
        buffer = bytearray()
        while len(buffer) < self._size:
            chunk = self._stream.read(self._size - len(buffer))  # a pipe may hand over part of a frame
            if not chunk:
                break
            buffer += chunk
        if len(buffer) < self._size:
            self._short = len(buffer)
            return None
        return np.frombuffer(buffer, np.uint8).reshape(self._shape), None

    def lost(self) -> str | None:
        if not self._short:
            return None  # the pipe closed between frames: the end of the stream
        height, width, _ = self._shape
        return (f"stdin ended inside a frame ({self._short} of {self._size} bytes; "
                f"are the frames {width}x{height} BGR24 as --pipe-size says?)")

    def close(self) -> None:
        pass


class LiveSource:
    """A live source opened by :func:`open_live`, read like a video file by the pipeline.

    Attributes:
        kind: ``"webcam"``, ``"stream"`` or ``"pipe"``.
        path: a label for messages and the JSON (``webcam 0``, the URL without its password, ``stdin``).
        name: a safe output base name (``webcam0``, ``stdin``, the URL's host, port and path).
        fps: the stream's nominal frame rate, or 0 where it has none.
        frame_count: always None (a live source has no known end).
        width, height: the first frame's size; every frame must have it.
        timing: ``"stream"`` when timestamps follow the stream's clock, ``"arrival"`` when they
            are arrival times.

    Example:
        Three raw 4x2 BGR24 frames piped to stdin (as ``ffmpeg -i in.mp4 -f rawvideo -pix_fmt bgr24 -``
        writes them), stood in for here by bytes in memory:

        >>> import io
        >>> from unittest import mock
        >>> import numpy as np
        >>> from posetrack_cli import open_live
        >>> piped = io.TextIOWrapper(io.BytesIO(np.zeros((3, 2, 4, 3), np.uint8).tobytes()))
        >>> with mock.patch("sys.stdin", piped), open_live("-", pipe_size=(4, 2)) as source:
        ...     print(source.kind, source.path, source.width, source.height, source.fps, source.frame_count)
        ...     print([(frame.index, frame.image.shape) for frame in source.frames()])
        pipe stdin 4 2 0.0 None
        [(0, (2, 4, 3)), (1, (2, 4, 3)), (2, (2, 4, 3))]
    """

    frame_count: int | None = None

    def __init__(self, kind: str, path: str, name: str, connect: Callable[[], tuple[_Reader, float]], *,
                 timing: str, reconnect: int = 0, backoff: float = BACKOFF_S, warn: Warn | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.kind, self.path, self.name, self.timing = kind, path, name, timing
        self._connect = connect
        self._reconnect = reconnect
        self._backoff = backoff
        self._warn = warn or warn_on_stderr
        self._clock = StreamClock(clock)
        self._stop: str | None = None
        self.missing: list[tuple[int, int]] = []  # a stream's frames are numbered as they come
        self._reader, self.fps = connect()
        first = self._reader.read()
        if first is None:
            reason = self._reader.lost()
            self._reader.close()
            raise PosetrackError(f"{path}: opened, but no frame came" + (f" ({reason})" if reason else ""))
        self.height, self.width = first[0].shape[:2]
        self._first: Frame | None = Frame(0, self._clock.stamp(first[1]), first[0])

    def frames(self) -> Iterator[Frame]:
        """Frames as they arrive, until the source ends or is lost for good (FrameStopped)."""
        if self._first is None:
            raise RuntimeError("a live source can be read once")
        frame, self._first = self._first, None
        yield frame
        index = 1
        failures = 0  # reopen attempts since the last frame
        while True:
            if self._stop is not None:
                raise FrameStopped(self._stop)
            got = self._reader.read()
            if got is not None:
                failures = 0
                image, seconds = got
                if image.shape[:2] != (self.height, self.width):
                    raise FrameSizeChanged(f"{self.path}: frame {index} is {image.shape[1]}x{image.shape[0]}, "
                                           f"the stream started at {self.width}x{self.height}")
                yield Frame(index, self._clock.stamp(seconds), image)
                index += 1
                continue
            reason = self._reader.lost()
            if reason is None:
                return
            while True:
                if failures >= self._reconnect:
                    tried = (f"; {failures} reconnect attempt{'s' if failures > 1 else ''} failed" if failures
                             else "; --reconnect N tries to reopen it" if self.kind != PIPE else "")
                    raise FrameStopped(f"{reason} after {index} frames{tried}")
                failures += 1
                delay = min(self._backoff * 2 ** (failures - 1), MAX_BACKOFF_S)
                self._warn(f"{self.path}: {reason} after {index} frames; reopening in {delay:g} s "
                           f"(attempt {failures} of {self._reconnect})")
                time.sleep(delay)
                if self._stop is not None:
                    raise FrameStopped(self._stop)
                self._reader.close()
                try:
                    self._reader, _ = self._connect()
                except PosetrackError as exc:
                    reason = f"connection lost, and reopening failed: {exc}"
                    continue
                self._clock.reconnected()
                break

    def request_stop(self, reason: str) -> None:
        """End ``frames()`` before the next frame with ``FrameStopped(reason)`` (Ctrl-C, the
        window closed); safe to call from another thread or a signal handler. A read already
        waiting for a stalled stream ends first, within the timeout."""
        self._stop = reason

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> LiveSource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _capture(target: int | str, label: str, *, timeout: float) -> cv2.VideoCapture:
    """An opened OpenCV capture of a webcam index or a URL, or one clear PosetrackError."""
    with _quiet_opencv():
        if isinstance(target, int):
            cap = cv2.VideoCapture(target, cv2.CAP_ANY)
        else:
            ms = int(timeout * 1000)
            cap = cv2.VideoCapture(target, cv2.CAP_FFMPEG,
                                   [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
    if not cap.isOpened():
        cap.release()
        if isinstance(target, int):
            raise PosetrackError(f"cannot open {label}: no camera with that index (they start at 0), "
                                 "or it is in use by another program")
        raise PosetrackError(f"cannot open {label}: unreachable within {timeout:g} s, not a video stream, "
                             "or a format OpenCV's FFmpeg cannot read")
    return cap


def _nominal_fps(cap: cv2.VideoCapture) -> float:
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    return fps if math.isfinite(fps) and 0 < fps <= MAX_NOMINAL_FPS else 0.0


def _is_mjpeg(cap: cv2.VideoCapture) -> bool:
    return int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little") == b"MJPG"


def open_live(text: str, *, reconnect: int = 0, pipe_size: tuple[int, int] | None = None,
              timeout: float = TIMEOUT_S, backoff: float = BACKOFF_S, warn: Warn | None = None) -> LiveSource:
    """Open the live source ``text`` names (see :func:`live_kind`); reads its first frame.

    Args:
        text: a webcam index, a stream URL, or ``-`` for raw BGR24 frames on stdin.
        reconnect: reopen attempts per drop (webcams and streams).
        pipe_size: ``(width, height)`` of the frames on stdin; required for ``-``.
        timeout: seconds a stream may take to open or to deliver the next frame.
        backoff: seconds before the first reopen attempt, doubled per failed attempt up to 8.
        warn: receives one line per reopen attempt (default: stderr).

    Raises PosetrackError (one line) when the source cannot be opened or delivers no frame.

    Example:
        Webcam 0, reopened up to 3 times when it drops (needs a camera):

        >>> from posetrack_cli import open_live
        >>> with open_live("0", reconnect=3) as source:  # doctest: +SKIP
        ...     for frame in source.frames():
        ...         print(frame.index, round(frame.timestamp, 2), frame.image.shape)
        0 0.0 (480, 640, 3)
        1 0.03 (480, 640, 3)

        What is not a live source, or lacks what it needs, is refused before anything opens:

        >>> open_live("clip.mp4")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        posetrack_cli.core.errors.PosetrackError: clip.mp4 is not a live source (a webcam index, ...)
        >>> open_live("-", reconnect=2)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        posetrack_cli.core.errors.PosetrackError: --reconnect applies to webcams and network streams; stdin ...
    """
    kind = live_kind(text)
    if kind is None:
        raise PosetrackError(f"{text} is not a live source (a webcam index, an rtsp/http(s) URL, or - for stdin)")
    if kind == PIPE:
        if reconnect:
            raise PosetrackError("--reconnect applies to webcams and network streams; stdin cannot be reopened")
        return _open_pipe(pipe_size, warn)
    if pipe_size is not None:
        raise PosetrackError(f"--pipe-size applies to - (raw frames on stdin), not to {text}")
    if kind == WEBCAM:
        index = int(text)
        label, name = f"webcam {index}", f"webcam{index}"

        def connect_webcam() -> tuple[_Reader, float]:
            cap = _capture(index, label, timeout=timeout)
            return _CaptureReader(cap, stream_times=True, timeout=timeout, what=WEBCAM), _nominal_fps(cap)

        return LiveSource(WEBCAM, label, name, connect_webcam, timing="stream", reconnect=reconnect,
                          backoff=backoff, warn=warn)
    label = redact(text)
    if not urlsplit(text).hostname:
        raise PosetrackError(f"{label} names no host")
    probe = _capture(text, label, timeout=timeout)
    # HTTP multipart MJPEG has no timestamps: FFmpeg numbers its frames at an assumed 25 fps.
    untimed = urlsplit(text).scheme.lower() in ("http", "https") and _is_mjpeg(probe)
    opened: list[cv2.VideoCapture] = [probe]

    def connect_stream() -> tuple[_Reader, float]:
        cap = opened.pop() if opened else _capture(text, label, timeout=timeout)
        reader = _CaptureReader(cap, stream_times=not untimed, timeout=timeout, what=STREAM)
        return reader, 0.0 if untimed else _nominal_fps(cap)

    return LiveSource(STREAM, label, stream_name(text), connect_stream, timing="arrival" if untimed else "stream",
                      reconnect=reconnect, backoff=backoff, warn=warn)


def _open_pipe(pipe_size: tuple[int, int] | None, warn: Warn | None) -> LiveSource:
    if pipe_size is None:
        raise PosetrackError("- reads raw BGR24 frames from stdin and needs their size: --pipe-size WIDTHxHEIGHT (e.g. "
                             "ffmpeg -i in.mp4 -f rawvideo -pix_fmt bgr24 - | posetrack run - --pipe-size 640x480)")
    stdin = sys.stdin
    if stdin is None or stdin.isatty():
        raise PosetrackError("- reads raw frames from stdin, but stdin is a terminal: pipe frames into posetrack")
    width, height = pipe_size
    reader = _PipeReader(stdin.buffer, width, height)

    def connect_pipe() -> tuple[_Reader, float]:
        return reader, 0.0

    return LiveSource(PIPE, "stdin", "stdin", connect_pipe, timing="arrival", warn=warn)


def gui_problem() -> str | None:
    """Why this process cannot open a window (None when it can): OpenCV built without a GUI (the
    ``opencv-python-headless`` wheel posetrack depends on), or no display on Linux."""
    match = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    if match is None or match.group(1).upper() == "NONE":
        return ("--show needs OpenCV's GUI build, and this OpenCV has no GUI (the headless wheel): "
                "pip uninstall opencv-python-headless && pip install opencv-python")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "--show needs a display, and neither $DISPLAY nor $WAYLAND_DISPLAY is set (ssh -X, or a desktop session)"
    return None


class LiveWindow:
    """A window showing frames as they are made (``--show``); ``q``, Esc or closing it stops.

    Raises PosetrackError on construction when no window can be opened (see :func:`gui_problem`).
    """

    def __init__(self, title: str = "posetrack") -> None:
        problem = gui_problem()
        if problem is not None:
            raise PosetrackError(problem)
        self.title = title
        self._open = True
        self._created = False

    def show(self, image: np.ndarray) -> bool:
        """Show ``image`` ``(H, W, 3)`` uint8 BGR; False once the user closed the window or pressed q/Esc.

        The window opens on the first call, so that every window call comes from one thread
        (GUI toolkits want that; the pipeline may write frames from a thread of its own)."""
        if not self._open:
            return False
        if not self._created:
            try:
                cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
            except cv2.error as exc:
                raise PosetrackError(f"--show cannot open a window: {str(exc).strip().splitlines()[-1]}") from None
            self._created = True
        cv2.imshow(self.title, image)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27) or cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            self.close()
        return self._open

    def close(self) -> None:
        self._open = False
        if self._created:
            self._created = False
            try:
                cv2.destroyWindow(self.title)
            except cv2.error:
                pass

    def __enter__(self) -> LiveWindow:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
