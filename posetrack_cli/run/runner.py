"""A whole run: the checks before any work, the models loaded once, one executor, the summary.

The command line (``posetrack run`` and ``posetrack track``) and the library's
:meth:`~posetrack_cli.run.api.VideoTracker.run` all come here with a
:class:`~posetrack_cli.run.settings.RunRequest`, which has checked its options already. What can
be checked before models load is checked next (inputs that do not exist, an output that would
replace an input, a poses or boxes file that does not fit its video, missing model files, an output
folder that cannot be written); a run that ends up writing nothing leaves no folder. Every input
then goes through the one per-input job (:meth:`~posetrack_cli.run.job.LoadedRun.process`), on the
local executor, on Ray, or as a live source.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from posetrack_cli.core.errors import OptionsError, PosetrackError
from posetrack_cli.core.files import OutputLock, prepare_output_dir, refuse_overwriting_inputs, remove_if_empty
from posetrack_cli.io.outputs import OutputSet
from posetrack_cli.run.batch import (
    BatchRecord,
    InputItem,
    ItemResult,
    LocalExecutor,
    expand_sources,
    failed,
    in_the_way,
    interrupted,
    run_item,
    summary_in_the_way,
)
from posetrack_cli.run.job import TRACK_SUFFIX, LoadedRun, Progress, check_inputs_before_loading, load_run, side_file
from posetrack_cli.run.settings import RunRequest

Line = Callable[[str], None]


def _quiet(_: str) -> None:
    """Where one-line notes go when nobody listens."""


@dataclass(frozen=True)
class RunOutcome:
    """What a run did: a row per input (in input order), and whether any output was written.

    Attributes:
        rows: the summary rows, ``failed`` ones included.
        out: the output folder (holding ``summary.csv`` when ``wrote``).
        wrote: whether the run reached its inputs (False when every input failed its checks).
    """

    rows: list[ItemResult]
    out: Path
    wrote: bool


def run_request(request: RunRequest, out: Path, *, overwrite: bool = False, recursive: bool = False,
                progress: Progress | None = None, loaded: LoadedRun | None = None,
                on_items: Callable[[list[InputItem]], None] | None = None,
                on_item: Callable[[ItemResult], None] | None = None, warn: Line = _quiet,
                log: Line = _quiet) -> RunOutcome:
    """Run ``request`` into ``out``.

    ``loaded`` reuses models loaded already (the library's); ``progress`` makes per-input bars;
    ``on_items`` is called once with the inputs found (a batch's size), ``on_item`` with each row
    as its input ends; ``warn`` gets inputs' one-line warnings and ``log`` the executors' notes.
    A bad input is a ``failed`` row and the others still run; what stops the whole run (a live
    source that cannot open, an output that would replace an input, missing model files) raises
    PosetrackError before any work.
    """
    problem = summary_in_the_way(out)  # before any work: posetrack never writes over a file it did not make
    if problem is not None:
        raise PosetrackError(problem)
    if request.live is not None:
        return _run_live(request, out, overwrite=overwrite, progress=progress, loaded=loaded, on_item=on_item,
                         warn=warn)
    spec = request.spec
    items, missing = expand_sources([Path(s) for s in request.sources], recursive, exclude=out)
    if spec.tracks_given_poses:  # clip.tracks.json: names of their own, never posetrack run's
        items = [InputItem(item.path, item.name + TRACK_SUFFIX) for item in items]
    if spec.models.detections is not None and len(items) + len(missing) > 1:
        raise OptionsError("--detections gives boxes for one video; pass exactly one SOURCE with it")
    if spec.models.poses is not None and spec.models.poses.is_file() and len(items) + len(missing) > 1:
        raise OptionsError(f"{spec.models.poses} holds the poses of one video; for a folder of videos give a folder "
                           "holding <name>.json for each")
    if spec.report:  # before any model loads: say how to install matplotlib now, not after the first video
        from posetrack_cli.io.report import require_matplotlib

        require_matplotlib()
    if spec.images:
        for item in items:
            if item.path.is_file():
                raise PosetrackError(f"--images takes folders of images; {item.path} is a file")
    planned = [p for item in items
               for p in OutputSet(out, item.name, render=spec.render, images=spec.images).paths().values()]
    refuse_overwriting_inputs(planned, [item.path for item in items] + _side_files(request, items))
    ready: list[InputItem] = []
    for item in items:  # a poses or boxes file that cannot serve its video fails before models load
        try:
            check_inputs_before_loading(spec, item)
            ready.append(item)
        except PosetrackError as exc:
            missing.append(failed(item, str(exc)))
    if on_items is not None:
        on_items(items)
    for row in missing:
        if on_item is not None:
            on_item(row)
    if not ready:
        return RunOutcome(missing, out, wrote=False)
    record = BatchRecord(out, ready, missing)
    if request.executor.kind == "ray":
        from posetrack_cli.run.ray_executor import run_on_ray

        created = prepare_output_dir(out)
        try:
            rows = run_on_ray(spec, ready, out, request.executor.ray, overwrite=overwrite, earlier=missing,
                              on_item=on_item, log=log)
        finally:
            if created:
                remove_if_empty(out)
        return RunOutcome(rows, out, wrote=True)
    if loaded is None:  # every model file present, or every missing one named in one line
        from posetrack_cli.models.weights import require_files

        require_files(spec.models.model_files(), allow_download=spec.allow_download, progress=progress is not None)
    created = prepare_output_dir(out)
    try:
        job = (loaded or load_run(spec)).into(out, progress=progress, warn=warn,  # models load once per batch
                                              overwrite=overwrite)
        rows = LocalExecutor(job, overwrite=overwrite, on_item=on_item).run(record)
    finally:
        if created:
            remove_if_empty(out)
    return RunOutcome(rows, out, wrote=True)


def _side_files(request: RunRequest, items: list[InputItem]) -> list[Path]:
    """The poses or boxes files of ``items`` (inputs too: never written over)."""
    files = []
    for item in items:
        try:
            side = side_file(request.spec, item)
        except PosetrackError:  # no poses file for it: its own check says so
            continue
        if side is not None:
            files.append(side)
    return files


def _run_live(request: RunRequest, out: Path, *, overwrite: bool, progress: Progress | None,
              loaded: LoadedRun | None, on_item: Callable[[ItemResult], None] | None, warn: Line) -> RunOutcome:
    """One live source: what can fail fast fails before the models load (no GUI for ``--show``, a
    stream that cannot be opened, outputs in the way), then the run, which commits what it read
    however it ends; a second Ctrl-C leaves the last flush and an ``interrupted`` row."""
    from posetrack_cli.io.live import LiveWindow, open_live
    from posetrack_cli.run.streaming import output_name

    spec, text = request.spec, request.sources[0]
    window = LiveWindow() if spec.live.show else None
    source = open_live(text, reconnect=spec.live.reconnect, pipe_size=spec.live.pipe_size, warn=warn)
    created = False
    try:
        name = output_name(source)
        outputs = OutputSet(out, name, render=spec.render)
        created = prepare_output_dir(out)
        lock = OutputLock(out, outputs.name)
        if not lock.acquire(wait=False):
            raise PosetrackError(f"another posetrack run is writing {out / outputs.name}.*; wait for it or use -o")
        try:
            outputs.remove_stale_temps()
            problem = in_the_way(outputs, overwrite=overwrite, resumable=False)  # a stream is never "already done"
            if problem is not None:
                raise PosetrackError(problem)
            job = (loaded or load_run(spec)).into(out, progress=progress, warn=warn, window=window)
            item = InputItem(Path(name), name)
            record = BatchRecord(out, [item])
            try:
                result = run_item(lambda i: job.process(i, source), item)
            except KeyboardInterrupt:  # the second Ctrl-C: the last flush stays on disk
                record.add(interrupted(item))
                record.write_summary()
                raise
            result = replace(result, input=source.path)  # the stream, as named on the command line (redacted)
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
    if on_item is not None:
        on_item(result)
    return RunOutcome(record.rows(), out, wrote=True)


def run_command(request: RunRequest, out: Path, *, overwrite: bool, recursive: bool, progress: bool,
                echo: Line) -> None:
    """The command line's run: progress bars, a line on stderr for each failed or partial input
    and for each warning, the summary table, and exit status 1 if any input failed."""
    import sys

    from tqdm import tqdm

    from posetrack_cli.run.batch import format_summary

    bars: dict[str, Any] = {}

    def start(items: list[InputItem]) -> None:
        bars["batch"] = tqdm(total=len(items), unit="video", desc="batch", position=0,
                             disable=not progress or len(items) < 2)

    def video_bar(name: str, total: int | None) -> Any:
        many = "batch" in bars and not bars["batch"].disable
        return tqdm(total=total, unit="frame", desc=name, position=1 if many else 0, leave=False,
                    disable=not progress)

    def after(result: ItemResult) -> None:
        batch = bars.get("batch")
        if batch is not None:
            if result.status == "failed" and result.frames == 0:
                batch.total = max(batch.total - 1, 0)  # failed at once: says nothing of how long the others take
                batch.refresh()
            else:
                batch.update()
        if result.status in ("failed", "partial"):
            word = "error" if result.status == "failed" else "warning"
            tqdm.write(f"posetrack: {word}: {result.input}: {result.reason}", file=sys.stderr)

    try:
        outcome = run_request(request, out, overwrite=overwrite, recursive=recursive, progress=video_bar,
                              on_items=start, on_item=after,
                              warn=lambda line: tqdm.write(f"posetrack: warning: {line}", file=sys.stderr),
                              log=lambda line: tqdm.write(f"posetrack: {line}", file=sys.stderr))
    finally:
        if "batch" in bars:
            bars["batch"].close()
    if not outcome.wrote:  # every input failed its checks: nothing was written
        raise SystemExit(1)
    echo(format_summary(outcome.rows))
    echo(f"outputs and summary.csv in {out}")
    if any(r.status == "failed" for r in outcome.rows):
        raise SystemExit(1)
