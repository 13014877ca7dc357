"""Running many inputs: expanding sources, resuming finished ones, the per-input summary.

Each input gets ``<name>.json``, ``<name>.csv`` (and ``<name>.mp4`` with rendering). An input
counts as done, and is skipped on a rerun, when its JSON parses, records the same input
fingerprint (size and modification time) and the same models and settings, and its CSV (and
overlay) agree with it -- judged by content, not by the files merely existing.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterable

from posetrack_cli.errors import PosetrackError
from posetrack_cli.outputs import atomic_write
from posetrack_cli.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, list_images, natural_key

SUMMARY_NAME = "summary.csv"


@dataclass(frozen=True)
class InputItem:
    """One input of a batch: a video file or a frame folder, and its output base name."""

    path: Path
    name: str


@dataclass(frozen=True)
class ItemResult:
    """One summary row. ``status`` is ok, partial (kept the frames before a decoding stop),
    skipped (already done), failed or interrupted."""

    input: str
    name: str
    status: str
    reason: str = ""
    frames: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    tracks: int = 0


def _videos_in(folder: Path, recursive: bool) -> list[Path]:
    pattern = folder.rglob("*") if recursive else folder.iterdir()
    return sorted((p for p in pattern if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS),
                  key=lambda p: natural_key(str(p.relative_to(folder))))


def expand_sources(paths: Iterable[Path], recursive: bool = False) -> tuple[list[InputItem], list[ItemResult]]:
    """Inputs named on the command line, expanded: a video file is one input; a folder holding
    videos is a batch of them (subfolders too with ``recursive``); a folder holding only images is
    one frame sequence. Paths that give nothing become failed results, so the rest still run."""
    found: list[Path] = []
    failed: list[ItemResult] = []
    for path in paths:
        if not path.exists():
            failed.append(ItemResult(str(path), path.stem, "failed", "no such file or folder"))
        elif path.is_file():
            found.append(path)
        else:
            videos = _videos_in(path, recursive)
            if videos:
                found += videos
            elif list_images(path):
                found.append(path)
            else:
                kinds = ", ".join(sorted(VIDEO_EXTENSIONS | IMAGE_EXTENSIONS))
                failed.append(ItemResult(str(path), path.name, "failed", f"no videos or images in the folder ({kinds})"))
    items, used = [], set()
    for path in dict.fromkeys(found):  # same file named twice runs once
        name = path.stem if path.is_file() else path.name
        candidate, parent = name, path.parent
        while candidate in used and parent != parent.parent:  # clip.mp4 in two folders: a__clip, b__clip
            candidate = f"{parent.name}__{candidate}"
            parent = parent.parent
        used.add(candidate)
        items.append(InputItem(path, candidate))
    return items, failed


def fingerprint(path: Path) -> str:
    """Size and modification time of a file, or of a frame folder's images."""
    files = [path] if path.is_file() else list_images(path)
    stats = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:16]


def settings_key(models: dict[str, Any], settings: dict[str, Any]) -> str:
    """A digest of what determines a run's output, to tell a finished output from a stale one."""
    return hashlib.sha256(json.dumps({"models": models, "settings": settings}, sort_keys=True).encode()).hexdigest()[:16]


def output_done(out_dir: Path, item: InputItem, key: str, render: bool) -> bool:
    """Whether ``item``'s outputs in ``out_dir`` are complete and made with the same settings."""
    json_path, csv_path = out_dir / f"{item.name}.json", out_dir / f"{item.name}.csv"
    try:
        doc = json.loads(json_path.read_text())
        info = doc["info"]
        if info.get("settings_key") != key or info.get("input_fingerprint") != fingerprint(item.path):
            return False
        if len(doc["images"]) != info["frames"]:
            return False
        with open(csv_path, newline="") as f:
            rows = sum(1 for _ in csv.reader(f)) - 1
        if rows != len(doc["annotations"]):
            return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if render:
        import cv2

        cap = cv2.VideoCapture(str(out_dir / f"{item.name}.mp4"))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else -1
        cap.release()
        if count != info["frames"]:
            return False
    return True


def write_summary(out_dir: Path, results: list[ItemResult]) -> Path:
    """``summary.csv``: one row per input."""
    path = out_dir / SUMMARY_NAME
    with atomic_write(path, newline="") as f:
        writer = csv.writer(f)
        writer.writerow([f.name for f in fields(ItemResult)])
        for r in results:
            writer.writerow([round(v, 3) if isinstance(v, float) else v for v in astuple(r)])
    return path


def format_summary(results: list[ItemResult]) -> str:
    """The summary as an aligned text table."""
    header = ("input", "status", "frames", "seconds", "fps", "tracks", "reason")
    rows = [header] + [
        (r.input, r.status, str(r.frames), f"{r.seconds:.1f}", f"{r.fps:.2f}", str(r.tracks), r.reason) for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row[:-1], widths)) + ("  " + row[-1] if row[-1] else "")
                     for row in rows)


def skipped_if_done(out_dir: Path, item: InputItem, key: str, *, render: bool, overwrite: bool) -> ItemResult | None:
    """The resume rule of every executor: a ``skipped`` row when ``item``'s outputs are complete
    and made with the same settings (and ``overwrite`` is off), else None (process it)."""
    if overwrite or not output_done(out_dir, item, key, render):
        return None
    return ItemResult(str(item.path), item.name, "skipped", "already done (--overwrite to redo)")


def interrupted(item: InputItem) -> ItemResult:
    """The row of an input that Ctrl-C stopped while it was being processed."""
    return ItemResult(str(item.path), item.name, "interrupted", "Ctrl-C")


def run_item(process: Callable[[InputItem], ItemResult], item: InputItem) -> ItemResult:
    """``process(item)``, with a bad input (a PosetrackError) recorded as a failed row."""
    started = time.perf_counter()
    try:
        return process(item)
    except PosetrackError as exc:
        return ItemResult(str(item.path), item.name, "failed", str(exc), seconds=time.perf_counter() - started)


def run_batch(items: list[InputItem], process: Callable[[InputItem], ItemResult], out_dir: Path, *, key: str,
              overwrite: bool, render: bool, earlier: list[ItemResult] = (),  # type: ignore[assignment]
              on_item: Callable[[ItemResult], None] | None = None) -> list[ItemResult]:
    """Run ``process`` on each item not already done; a failure is recorded and the batch goes on.

    ``earlier`` are results known before running (inputs that do not exist). The summary is
    written when the batch ends, also on Ctrl-C, which records the current item as interrupted
    and re-raises.
    """
    results = list(earlier)
    try:
        for item in items:
            result = skipped_if_done(out_dir, item, key, render=render, overwrite=overwrite)
            if result is None:
                try:
                    result = run_item(process, item)
                except KeyboardInterrupt:
                    results.append(interrupted(item))
                    raise
            results.append(result)
            if on_item is not None:
                on_item(result)
    finally:
        write_summary(out_dir, results)
    return results
