"""Running many inputs: expanding sources, the resume rule, per-output locks, the batch record.

Each input gets ``<name>.json``, ``<name>.csv`` (and ``<name>.mp4`` with rendering). An input
counts as done, and is skipped on a rerun, when its outputs say they are complete and were made
from the same input (size and modification time) with the same models and settings -- judged by
content (:meth:`posetrack_cli.io.outputs.OutputSet.finished`), not by the files merely existing. A
finished input missing a file made from its track file (an export or report asked for only now)
gets that file, and is not tracked again.

An input is worked on under its output lock, so two ``posetrack run`` processes into one folder
never write the same output: the second takes other inputs first, then waits for the lock, and
finds the first's finished outputs. ``summary.csv`` is merged under a lock of its own, a row per
input, the latest result winning, so runs on different inputs into one folder keep all rows.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import time
import traceback
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.files import OutputLock, OutputWriteError, atomic_write
from posetrack_cli.io.outputs import OutputSet
from posetrack_cli.io.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, list_images, natural_key

SUMMARY_NAME = "summary.csv"
# Output base names an input may not take: its CSV would be the batch summary.
RESERVED_NAMES = frozenset({Path(SUMMARY_NAME).stem})


@dataclass(frozen=True)
class InputItem:
    """One input of a batch: a video file or a frame folder, and its output base name."""

    path: Path
    name: str


@dataclass(frozen=True)
class ItemResult:
    """One summary row. ``status`` is ok, partial (kept the frames before a decoding stop),
    skipped (already done), failed or interrupted; ``reidentified`` counts people given their id
    back from the memory of lost tracks."""

    input: str
    name: str
    status: str
    reason: str = ""
    frames: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    tracks: int = 0
    reidentified: int = 0


def _under(path: Path, folder: Path | None) -> bool:
    if folder is None:
        return False
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _videos_in(folder: Path, recursive: bool, exclude: Path | None) -> list[Path]:
    pattern = folder.rglob("*") if recursive else folder.iterdir()
    videos = (p for p in pattern if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS and not _under(p, exclude))
    return sorted(videos, key=lambda p: natural_key(str(p.relative_to(folder))))


def expand_sources(paths: Iterable[Path], recursive: bool = False,
                   exclude: Path | None = None) -> tuple[list[InputItem], list[ItemResult]]:
    """Inputs named on the command line, expanded: a video file is one input; a folder holding
    videos is a batch of them (subfolders too with ``recursive``); a folder holding only images is
    one frame sequence. Nothing under ``exclude`` (the output folder) is taken from a folder, so
    a run never reads its own outputs back. Paths that give nothing become failed results, so
    the rest still run. Output names are made distinct from each other and from the summary's."""
    found: list[Path] = []
    failed: list[ItemResult] = []
    for path in paths:
        if not path.exists():
            failed.append(ItemResult(str(path), path.stem, "failed", "no such file or folder"))
        elif path.is_file():
            found.append(path)
        else:
            videos = _videos_in(path, recursive, exclude)
            if videos:
                found += videos
            elif list_images(path):
                found.append(path)
            else:
                kinds = ", ".join(sorted(VIDEO_EXTENSIONS | IMAGE_EXTENSIONS))
                reason = f"no videos or images in the folder ({kinds})"
                failed.append(ItemResult(str(path), path.name, "failed", reason))
    items: list[InputItem] = []
    used = set(RESERVED_NAMES)
    for path in dict.fromkeys(found):  # same file named twice runs once
        name = path.stem if path.is_file() else path.name
        candidate, parent = name, path.resolve().parent
        while candidate in used and parent != parent.parent:  # clip.mp4 in two folders: a__clip, b__clip
            candidate = f"{parent.name}__{candidate}"
            parent = parent.parent
        number = 2
        base = candidate
        while candidate in used:
            candidate, number = f"{base}-{number}", number + 1
        used.add(candidate)
        items.append(InputItem(path, candidate))
    return items, failed


def fingerprint(path: Path) -> str:
    """Size and modification time of a file, or of a frame folder's images."""
    files = [path] if path.is_file() else list_images(path)
    stats = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:16]


class Outputs(Protocol):
    """What tells whether an input's outputs are finished: their files, the resume key they record,
    and the fingerprint of the input they were made from."""

    def outputs(self, item: InputItem) -> OutputSet: ...

    def item_key(self, item: InputItem) -> str:
        """The resume key an input's finished outputs record."""

    def fingerprint(self, item: InputItem) -> str:
        """What tells an input's outputs from stale ones made from an older input."""


class Job(Outputs, Protocol):
    """What an executor needs of a loaded run: its outputs per input, their keys, and the work."""

    @property
    def key(self) -> str: ...

    def process(self, item: InputItem) -> ItemResult: ...

    def complete(self, item: InputItem, document: dict[str, Any], wanted: Sequence[Path]) -> None:
        """Make the ``wanted`` derived files (exports, report) of an input from its finished track ``document``."""


def finished_row(item: InputItem, document: dict[str, Any], made: Iterable[Path] = (), *,
                 status: str = "skipped", reason: str = "already done (--overwrite to redo)") -> ItemResult:
    """The row of an input whose outputs are complete, with their numbers: ``skipped`` (done by
    an earlier run, and the derived files this run ``made`` from its track file) unless told."""
    tracks = len({a["track_id"] for a in document["annotations"]})
    names = [p.name for p in made]
    if names:
        reason += f"; made {', '.join(names)} from its track file"
    return ItemResult(str(item.path), item.name, status, reason,
                      frames=int(document["info"]["frames"]), tracks=tracks,
                      reidentified=int(document["info"].get("reidentified", 0)))


def skipped_if_done(outputs: OutputSet, key: str, item: InputItem, *, overwrite: bool,
                    complete: Callable[[InputItem, dict[str, Any], Sequence[Path]], None] | None = None,
                    fingerprint_of: Callable[[InputItem], str] | None = None) -> ItemResult | None:
    """The resume rule of every executor: a ``skipped`` row when ``item``'s outputs are complete
    and made with the same settings (``key``) and ``overwrite`` is off, else None (process it).

    A finished input missing a derived file (an export or report asked for only now) gets the
    missing ones from its track file through ``complete``, rather than being tracked again; without
    ``complete`` (the Ray driver, which leaves that to a worker, under the input's lock) it is not
    skipped. ``fingerprint_of`` tells an input's outputs from stale ones (default: the input's
    size and times).
    """
    if overwrite:
        return None
    document = outputs.finished(key, (fingerprint_of or (lambda i: fingerprint(i.path)))(item))
    if document is None:
        return None
    missing = outputs.missing_derived()
    if missing:
        if complete is None:
            return None
        complete(item, document, missing)
    return finished_row(item, document, missing)


def interrupted(item: InputItem, reason: str = "Ctrl-C") -> ItemResult:
    """The row of an input that Ctrl-C stopped while it was being processed."""
    return ItemResult(str(item.path), item.name, "interrupted", reason)


def stopped_row(job: Outputs, item: InputItem, *, started: bool) -> ItemResult:
    """The row of an input when Ctrl-C stops the batch, saying what is on disk: its outputs may have
    been committed just before the stop (``ok``; ``skipped`` when an earlier run made them and it
    had not started), else ``interrupted``. Ask with the input's lock held, or its process gone."""
    outputs, key, fingerprint_ = job.outputs(item), job.item_key(item), job.fingerprint(item)
    document = outputs.finished(key, fingerprint_)
    if document is not None:
        if started:
            return finished_row(item, document, status="ok", reason="finished before Ctrl-C")
        return finished_row(item, document)
    kept = outputs.interrupted(key, fingerprint_) if started else None
    if kept is not None:  # the frames done before the stop are in place; a rerun resumes after them
        return ItemResult(str(item.path), item.name, "interrupted", f"{kept.get('partial_reason')}; rerun to resume",
                          frames=int(kept.get("frames", 0)))
    return interrupted(item, "Ctrl-C" if started else "Ctrl-C before it started")


def failed(item: InputItem, reason: str, seconds: float = 0.0) -> ItemResult:
    return ItemResult(str(item.path), item.name, "failed", reason, seconds=seconds)


def run_item(process: Callable[[InputItem], ItemResult], item: InputItem) -> ItemResult:
    """``process(item)``, whatever ends it, as a row: a bad input or a write error (a PosetrackError)
    is a failed row, and so is a bug (an internal error, named with its type; the traceback on
    stderr with POSETRACK_DEBUG=1), so the batch goes on and every input has its row."""
    started = time.perf_counter()
    try:
        return process(item)
    except OutputWriteError as exc:
        reason = f"disk full: {exc}" if exc.disk_full else str(exc)
        return failed(item, reason, time.perf_counter() - started)
    except PosetrackError as exc:
        return failed(item, str(exc), time.perf_counter() - started)
    except Exception as exc:  # a bug, not the input: said so, with what is on disk
        if os.environ.get("POSETRACK_DEBUG"):
            traceback.print_exc()
        reason = f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())}"
        kept = getattr(exc, "posetrack_kept", None)  # the frames put in place before it, if any
        if kept:
            reason += f"; {kept}"
        return failed(item, reason + " (set POSETRACK_DEBUG=1 for the traceback)", time.perf_counter() - started)


def in_the_way(outputs: OutputSet, *, overwrite: bool, resumable: bool = True) -> str | None:
    """Why ``outputs`` may not be written now, or None: a file posetrack did not write under one of
    their names is never written over; and a source that cannot be resumed (a live stream) replaces
    an earlier run's outputs only with ``overwrite``. Ask with the outputs' lock held."""
    foreign = outputs.foreign()
    if foreign:
        return (f"{foreign[0]} exists and was not written by posetrack; move it away or choose another output "
                "folder (-o)")
    existing = [p for p in outputs.paths().values() if p.exists()]
    if existing and not resumable and not overwrite:
        return (f"{existing[0]} exists from an earlier run of this source; --overwrite replaces it, or choose "
                "another output folder (-o)")
    return None


def run_locked(job: Job, item: InputItem, *, overwrite: bool, wait: bool) -> ItemResult | None:
    """Process ``item`` holding its output lock: None when ``wait`` is off and another process
    holds it. Under the lock, temporary files a killed run left are removed, the resume rule is
    asked again (the other process may have just finished it), and files posetrack did not write
    under the output names make the input fail rather than be written over."""
    outputs = job.outputs(item)
    lock = OutputLock(outputs.out_dir, outputs.name + outputs.suffix)
    if not lock.acquire(wait=wait):
        return None
    try:
        outputs.remove_stale_temps()
        started = time.perf_counter()
        try:
            done = skipped_if_done(outputs, job.item_key(item), item, overwrite=overwrite, complete=job.complete,
                                   fingerprint_of=job.fingerprint)
        except PosetrackError as exc:  # a derived file could not be made (one posetrack did not write, ...)
            return failed(item, str(exc), time.perf_counter() - started)
        if done is not None:
            return done
        problem = in_the_way(outputs, overwrite=overwrite)
        if problem is not None:
            return failed(item, problem)
        return run_item(job.process, item)
    finally:
        lock.release()


class BatchRecord:
    """The rows of one batch, in input order, and the summary they are merged into.

    Args:
        out_dir: the output folder, where ``summary.csv`` lives.
        items: the batch's inputs, in the order their rows are listed.
        earlier: rows known before running (inputs that do not exist).
    """

    def __init__(self, out_dir: Path, items: list[InputItem], earlier: Iterable[ItemResult] = ()) -> None:
        self.out_dir = out_dir
        self.items = items
        self.earlier = list(earlier)
        self._done: dict[str, ItemResult] = {}

    def add(self, result: ItemResult) -> None:
        self._done[result.name] = result

    def has(self, item: InputItem) -> bool:
        return item.name in self._done

    def rows(self) -> list[ItemResult]:
        """Rows in input order after the earlier ones; inputs without a row yet are left out."""
        return self.earlier + [self._done[i.name] for i in self.items if i.name in self._done]

    def write_summary(self) -> Path:
        """Merge this batch's rows into ``summary.csv`` under its lock: one row per input, the
        latest result winning, rows of other runs into this folder kept. A ``summary.csv``
        posetrack did not write is never replaced (PosetrackError)."""
        path = self.out_dir / SUMMARY_NAME
        header = SUMMARY_HEADER
        with OutputLock(self.out_dir, SUMMARY_NAME).held():
            problem = summary_in_the_way(self.out_dir)
            if problem is not None:
                raise PosetrackError(problem)
            merged: dict[str, list[str]] = {}
            try:
                with open(path, newline="") as existing:
                    reader = csv.reader(existing)
                    if next(reader, None) == header:
                        merged = {row[1]: row for row in reader if len(row) == len(header)}
            except OSError:
                pass
            for r in self.rows():
                merged[r.name] = [str(round(v, 3)) if isinstance(v, float) else str(v) for v in astuple(r)]
            with atomic_write(path, newline="") as f:
                writer = csv.writer(f)
                writer.writerow(header)
                writer.writerows(merged.values())
        return path


SUMMARY_HEADER = [f.name for f in fields(ItemResult)]


def summary_in_the_way(out_dir: Path) -> str | None:
    """Why ``out_dir``'s ``summary.csv`` may not be written, or None: it exists and is not
    posetrack's (its first line is not posetrack's header)."""
    path = out_dir / SUMMARY_NAME
    if not path.exists() and not path.is_symlink():
        return None
    try:
        with open(path, newline="") as existing:
            if next(csv.reader(existing), None) == SUMMARY_HEADER:
                return None
    except (OSError, UnicodeDecodeError, csv.Error):
        pass
    return (f"{path} exists and was not written by posetrack; move it away or choose another output folder (-o) "
            "(posetrack writes its summary there)")


def format_summary(results: list[ItemResult]) -> str:
    """The summary as an aligned text table."""
    header = ("input", "status", "frames", "seconds", "fps", "tracks", "re-id", "reason")
    rows = [header] + [
        (r.input, r.status, str(r.frames), f"{r.seconds:.1f}", f"{r.fps:.2f}", str(r.tracks), str(r.reidentified),
         r.reason) for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row[:-1], widths)) + ("  " + row[-1] if row[-1] else "")
                     for row in rows)


class LocalExecutor:
    """Runs a batch's inputs one after another in this process.

    An input whose output lock another process holds is put off until the others are done, then
    waited for (and usually found finished by then).
    """

    def __init__(self, job: Job, *, overwrite: bool, on_item: Callable[[ItemResult], None] | None = None) -> None:
        self.job, self.overwrite, self.on_item = job, overwrite, on_item

    def run(self, record: BatchRecord) -> list[ItemResult]:
        """Process every item of ``record`` not already done; the summary is written when the
        batch ends, also on Ctrl-C, which records the current item as interrupted and re-raises."""
        try:
            later = [item for item in record.items if not self._one(record, item, wait=False)]
            for item in later:
                self._one(record, item, wait=True)
        except KeyboardInterrupt:  # every input gets its row, as its files on disk say
            for item in record.items:
                if not record.has(item):
                    record.add(stopped_row(self.job, item, started=False))
            raise
        finally:
            record.write_summary()
        return record.rows()

    def _one(self, record: BatchRecord, item: InputItem, *, wait: bool) -> bool:
        try:
            result = run_locked(self.job, item, overwrite=self.overwrite, wait=wait)
        except KeyboardInterrupt:  # its outputs may have been committed just before
            record.add(stopped_row(self.job, item, started=True))
            raise
        if result is None:
            return False
        record.add(result)
        if self.on_item is not None:
            self.on_item(result)
        return True

