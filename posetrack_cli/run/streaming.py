"""What a live source needs beyond a file: outputs flushed as frames come, an optional window,
and a first Ctrl-C that stops reading and keeps everything read.

A live source (a webcam, a stream URL, or ``-`` for raw frames on stdin) has no end known in
advance, so its JSON and CSV are rewritten under their final names (each atomically) after the
first frame and then every ``flush_every`` seconds, marked partial ("still reading"): a run killed
at any moment leaves valid files up to that flush. It ends when the stream ends, when the
connection is lost for good, on Ctrl-C, or when the ``--show`` window is closed; each of these
keeps every frame read and commits the outputs, marked partial with the reason (a pipe that closes
is a natural end: not partial). A second Ctrl-C stops at once, leaving the last flush.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np

from posetrack_cli.core.types import Frame, TrackedFrame
from posetrack_cli.io.live import LiveSource, LiveWindow
from posetrack_cli.io.outputs import TrackOutputs
from posetrack_cli.run.batch import RESERVED_NAMES

STILL_READING = "written while the live source was still being read (a later flush or the end replaces it)"


class LiveSink:
    """The writers of a live source, flushed to disk as frames come, and the ``--show`` window.

    Args:
        writers: the outputs being written.
        info: the JSON's ``info`` for a flush, given the frames written so far.
        flush_every: seconds between flushes (the first frame is flushed at once).
        draw: the overlay of one frame, for the window.
        window: where each overlay is shown, or None.
        on_close: called once when the user closes the window.
    """

    def __init__(self, writers: TrackOutputs, info: Callable[[int], dict[str, Any]], flush_every: float, *,
                 draw: Callable[[np.ndarray, TrackedFrame], np.ndarray] | None = None,
                 window: LiveWindow | None = None, on_close: Callable[[], None] | None = None) -> None:
        self._writers, self._info, self._every = writers, info, flush_every
        self._draw, self._window, self._on_close = draw, window, on_close
        self._flushed = 0.0
        self.frames = 0
        self.flushes = 0

    def add(self, frame: Frame, tracked: TrackedFrame) -> None:
        self._writers.add(frame, tracked)
        self.frames += 1
        if self._window is not None and self._draw is not None:
            if not self._window.show(self._draw(frame.image, tracked)):
                self._window = None
                if self._on_close is not None:
                    self._on_close()
        now = time.monotonic()
        if self.frames == 1 or now - self._flushed >= self._every:
            self._writers.checkpoint(self._info(self.frames))
            self._flushed = now
            self.flushes += 1


@contextmanager
def stop_on_ctrl_c(source: LiveSource, warn: Callable[[str], None]) -> Iterator[None]:
    """While inside, a first Ctrl-C asks ``source`` to stop after the frame being read (the run
    then commits its outputs as partial); a second one raises KeyboardInterrupt as usual. Only in
    the main thread, where Python delivers signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, previous)
        source.request_stop("stopped by Ctrl-C")
        warn("stopping after this frame and writing the outputs (Ctrl-C again to quit at once)")

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def output_name(source: LiveSource) -> str:
    """The source's output base name, kept off the names the batch files use (``summary``)."""
    return source.name if source.name not in RESERVED_NAMES else f"{source.name}-stream"
