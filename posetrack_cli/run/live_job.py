"""``posetrack run`` on a live source (a webcam, a stream URL, or ``-`` for raw frames on stdin).

A live source runs through the same frame loop as a file (:class:`~posetrack_cli.run.pipeline.Pipeline`)
into the same writers, with three differences a stream needs:

* it has no end known in advance, so the JSON and the CSV are rewritten under their final names
  (each atomically) after the first frame and then every ``flush_every`` seconds, marked partial
  ("still reading"): a run killed at any moment leaves valid files up to that flush;
* it ends when the stream ends, when the connection is lost for good, on Ctrl-C, or when the
  ``--show`` window is closed; each of these keeps every frame read and commits the outputs,
  marked partial with the reason (a pipe that closes is a natural end: not partial). A second
  Ctrl-C stops at once, leaving the last flush;
* a stream is never "already done": outputs of an earlier run under the same name are replaced
  only with ``--overwrite``.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.files import OutputLock, prepare_output_dir, remove_if_empty
from posetrack_cli.core.types import Frame, TrackedFrame
from posetrack_cli.io.live import LiveSource, LiveWindow, open_live
from posetrack_cli.io.outputs import OutputSet, TrackOutputs
from posetrack_cli.run.batch import RESERVED_NAMES, BatchRecord, InputItem, ItemResult, format_summary
from posetrack_cli.run.run_job import LoadedRun, RunSpec, load_run

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


def process_live(loaded: LoadedRun, source: LiveSource, outputs: OutputSet, *, warn: Callable[[str], None],
                 window: LiveWindow | None = None) -> ItemResult:
    """Run ``source`` into ``outputs`` until it ends or is stopped; the outputs are committed
    (partial with the reason when it did not end by itself)."""
    from posetrack_cli.io.render import OverlayRenderer

    spec, pipeline = loaded.spec, loaded.pipeline
    threshold = pipeline.config.joint_threshold
    started = time.perf_counter()
    info = {**loaded.info, "source": source.path, "input_fingerprint": None,
            "live": {"kind": source.kind, "timestamps": source.timing, "reconnect": spec.live.reconnect}}
    bar = loaded.progress(outputs.name, None) if loaded.progress is not None else None

    overlay = replace(spec.overlay, keypoint_threshold=threshold)
    # one renderer each for the video and the window: a renderer keeps its own trails
    video, shown = OverlayRenderer(overlay), OverlayRenderer(overlay)

    def on_frame(_: int, people: int) -> None:
        if bar is not None:
            bar.update()
            bar.set_postfix(people=people, refresh=False)

    def flushed(frames: int) -> dict[str, Any]:
        return {**info, "frames": frames, "partial": True, "partial_reason": STILL_READING}

    try:
        with outputs.open(loaded.keypoint_names, keypoint_threshold=threshold,
                          fps=source.fps if source.fps > 0 else spec.image_fps, draw=video.draw) as writers:
            sink = LiveSink(writers, flushed, spec.live.flush_every, draw=shown.draw, window=window,
                            on_close=lambda: source.request_stop("stopped: the window was closed"))
            with stop_on_ctrl_c(source, warn):
                result = pipeline.run(source, sink, on_frame=on_frame)
            writers.commit({
                **info, "frames": result.frames, "partial": result.partial is not None,
                "partial_reason": result.partial,
                "stage_seconds": {k: round(v, 3) for k, v in result.times.as_dict().items()},
            })
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - started
    return ItemResult(source.path, outputs.name, "partial" if result.partial else "ok", result.partial or "",
                      result.frames, seconds, result.frames / seconds if seconds > 0 else 0.0, result.tracks)


def run_live_command(spec: RunSpec, text: str, out: Path, *, overwrite: bool, progress: bool,
                     echo: Callable[[str], None], warn: Callable[[str], None]) -> None:
    """``posetrack run SOURCE`` for one live source: what can fail fast fails before the models
    load (no GUI for ``--show``, a stream that cannot be opened, outputs in the way), then the
    run, its summary row and table; exits 1 if it failed."""
    from tqdm import tqdm

    if spec.models.detections is not None or spec.images:
        raise PosetrackError("--detections and --images take files; a live source gets its boxes from the detector")
    if spec.formats or spec.report:
        raise PosetrackError("--format and --report take files; for a live source, run `posetrack export` or "
                             "`posetrack report` on OUT/<name>.json afterwards")

    def warn_line(line: str) -> None:
        tqdm.write(f"posetrack: warning: {line}", file=sys.stderr)

    window = LiveWindow() if spec.live.show else None
    source = open_live(text, reconnect=spec.live.reconnect, pipe_size=spec.live.pipe_size, warn=warn_line)
    created = False
    try:
        outputs = OutputSet(out, output_name(source), render=spec.render)
        created = prepare_output_dir(out)
        lock = OutputLock(out, outputs.name)
        if not lock.acquire(wait=False):
            raise PosetrackError(f"another posetrack run is writing {out / outputs.name}.*; wait for it or use -o")
        try:
            outputs.remove_stale_temps()
            refuse_existing(outputs, overwrite=overwrite)
            loaded = load_run(spec).into(out, progress=lambda name, total: tqdm(
                total=total, unit="frame", desc=name, leave=False, disable=not progress))
            item = InputItem(Path(outputs.name), outputs.name)
            record = BatchRecord(out, [item])
            try:
                result = process_live(loaded, source, outputs, warn=warn_line, window=window)
            except KeyboardInterrupt:  # the second Ctrl-C: the last flush stays on disk
                record.add(ItemResult(source.path, outputs.name, "interrupted", "Ctrl-C"))
                record.write_summary()
                raise
            except PosetrackError as exc:
                result = ItemResult(source.path, outputs.name, "failed", str(exc))
            record.add(result)
            record.write_summary()
        finally:
            lock.release()
    finally:
        source.close()
        if window is not None:
            window.close()
        if created:
            remove_if_empty(out)
    if result.status in ("failed", "partial"):
        warn(f"posetrack: {'error' if result.status == 'failed' else 'warning'}: {result.input}: {result.reason}")
    echo(format_summary([result]))
    echo(f"outputs and summary.csv in {out}")
    if result.status == "failed":
        raise SystemExit(1)


def refuse_existing(outputs: OutputSet, *, overwrite: bool) -> None:
    """A stream is never already done: an earlier run's outputs under the same names are replaced
    only with ``overwrite``, and files posetrack did not write never."""
    foreign = outputs.foreign()
    if foreign:
        raise PosetrackError(f"{foreign[0]} exists and was not written by posetrack; move it away or choose "
                             "another output folder (-o)")
    existing = [p for p in outputs.paths().values() if p.exists()]
    if existing and not overwrite:
        raise PosetrackError(f"{existing[0]} exists from an earlier run of this source; --overwrite replaces it, "
                             "or choose another output folder (-o)")
