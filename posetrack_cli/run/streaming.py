"""What a live source needs beyond a file: outputs flushed as frames come, an optional window,
and a first Ctrl-C (or SIGTERM) that stops reading and keeps everything read.

A live source (a webcam, a stream URL, or ``-`` for raw frames on stdin) has no end known in
advance, so its JSON and CSV are rewritten under their final names (each atomically) after the
first frame and then every ``flush_every`` seconds, marked partial ("still reading"), by the
checkpoints every run takes (:mod:`posetrack_cli.run.checkpoints`): a run killed at any moment
leaves valid files up to that flush. It ends when the stream ends, when the
connection is lost for good, on Ctrl-C, or when the ``--show`` window is closed; each of these
keeps every frame read and commits the outputs, marked partial with the reason (a pipe that closes
is a natural end: not partial). A second Ctrl-C stops at once, leaving the last flush.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Protocol

import numpy as np

from posetrack_cli.core.types import Frame, TrackedFrame
from posetrack_cli.io.live import LiveSource, LiveWindow
from posetrack_cli.io.outputs import TrackOutputs
from posetrack_cli.run.batch import RESERVED_NAMES

STILL_READING = "written while the live source was still being read (a later flush or the end replaces it)"


class LiveSink:
    """The writers of a live source and the ``--show`` window (the files are flushed by the run's
    checkpoints, :mod:`posetrack_cli.run.checkpoints`).

    Args:
        writers: the outputs being written.
        draw: the overlay of one frame, for the window.
        window: where each overlay is shown, or None.
        on_close: called once when the user closes the window.
    """

    def __init__(self, writers: TrackOutputs, *, draw: Callable[[np.ndarray, TrackedFrame], np.ndarray] | None = None,
                 window: LiveWindow | None = None, on_close: Callable[[], None] | None = None) -> None:
        self._writers, self._draw, self._window, self._on_close = writers, draw, window, on_close

    def add(self, frame: Frame, tracked: TrackedFrame) -> None:
        self._writers.add(frame, tracked)
        if self._window is not None and self._draw is not None:
            if not self._window.show(self._draw(frame.image, tracked)):
                self._window = None
                if self._on_close is not None:
                    self._on_close()


class Stoppable(Protocol):
    def request_stop(self, reason: str) -> None: ...


@contextmanager
def stop_on_signals(source: Stoppable, warn: Callable[[str], None]) -> Iterator[list[str]]:
    """While inside, a first Ctrl-C (or SIGTERM) asks ``source`` to stop before its next frame (the
    run then keeps what it has); a second one acts as it would have (Ctrl-C raises
    KeyboardInterrupt at once). Yields a list that receives the name of the signal that stopped
    the source, if one did. Only in the main thread, where Python delivers signals."""
    caught: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    names = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
    previous = {signum: signal.getsignal(signum) for signum in names}

    def handler(signum: int, frame: Any) -> None:
        for restored, action in previous.items():
            signal.signal(restored, action)
        caught.append(names[signal.Signals(signum)])
        source.request_stop(f"stopped by {caught[0]}")
        warn("stopping after this frame and writing the outputs (Ctrl-C again to quit at once)")

    for signum in names:
        signal.signal(signum, handler)
    try:
        yield caught
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)


def output_name(source: LiveSource) -> str:
    """The source's output base name, kept off the names the batch files use (``summary``)."""
    return source.name if source.name not in RESERVED_NAMES else f"{source.name}-stream"
