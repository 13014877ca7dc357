"""Equivalent ways to compute one thing, timed once on this CPU; the fastest is remembered.

Which form of a layer runs fastest depends on the CPU more than on anything posetrack can read off
it: int8 depthwise convolutions gain on one CPU and lose on another, a box head in bf16 is 2-3x
faster with AMX and slower without native bf16. So where posetrack has two forms that give the
same results within the bounds its tests hold them to, it times them on first use, interleaved
(round by round, so a machine that slows down mid-way slows both), by CPU time per call, and keeps
the winner in ``choices.json`` in the model cache folder, under the CPU's identity (model name and
speed flags, :func:`~posetrack_cli.runtime.cpu.cpu_info`) and the libraries' versions. Later runs
on the same CPU read the choice back and time nothing.

The file is written whole under a temporary name and renamed (a reader never sees half of it); an
unreadable or foreign file is replaced with one warning; a cache folder that cannot be written
costs only the remembering (one warning; the run keeps its measured choice).
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from posetrack_cli.core.files import OutputWriteError, atomic_write, dump_json
from posetrack_cli.runtime.cache import Warn, cache_dir, warn_on_stderr
from posetrack_cli.runtime.cpu import cpu_info

CHOICES = "choices.json"
CHOICES_VERSION = 1  # bump when what a choice means changes


@dataclass(frozen=True)
class Choice:
    """The form a task runs in on this CPU.

    Attributes:
        name: the chosen candidate.
        ms: CPU milliseconds per call of each candidate (median over the timed calls), as measured
            when the choice was made.
        measured: True when timed in this process, False when read from ``choices.json``.
    """

    name: str
    ms: dict[str, float]
    measured: bool

    def describe(self) -> dict[str, Any]:
        """What the output JSON records of the choice."""
        return {"form": self.name, "ms": self.ms}


def _versions() -> dict[str, str]:
    """The libraries whose kernels the candidates run: a new version may change the winner."""
    import torch

    versions: dict[str, str] = {"torch": torch.__version__}
    try:
        import openvino as ov

        versions["openvino"] = ov.__version__
    except ImportError:
        pass
    return versions


def _read(path: Path, warn: Warn) -> dict[str, Any]:
    """The ``choices`` mapping of ``path`` (empty when absent; a damaged file is warned of and dropped)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):  # nothing remembered yet (the folder is checked on writing)
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        warn(f"{path} cannot be read ({type(exc).__name__}); the choices it held are measured again")
        return {}
    if not (isinstance(document, dict) and document.get("version") == CHOICES_VERSION
            and isinstance(document.get("choices"), dict)):
        warn(f"{path} is not a posetrack choices file of version {CHOICES_VERSION}; its choices are measured again")
        return {}
    choices: dict[str, Any] = document["choices"]
    return choices


def _time(candidates: Mapping[str, Callable[[], object]], calls: int, warm: int) -> dict[str, float]:
    """Median CPU ms per call of each candidate, the candidates interleaved call by call."""
    for _ in range(warm):  # first calls pay for compilation, caches and allocation
        for run in candidates.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(calls):
        for name, run in candidates.items():
            start = time.process_time()
            run()
            times[name].append((time.process_time() - start) * 1000)
    return {name: round(statistics.median(t), 3) for name, t in times.items()}


def fastest(task: str, candidates: Mapping[str, Callable[[], object]], *, calls: int = 5, warm: int = 1,
            warn: Warn = warn_on_stderr, folder: Path | None = None) -> Choice:
    """The candidate of ``task`` that runs fastest on this CPU: read from ``choices.json``, or timed
    now (``warm`` untimed calls each, then ``calls`` timed ones, interleaved) and remembered.

    Args:
        task: names the computation and everything its speed depends on besides the CPU (the
            model's digest, input size, batch size), so that another model or size is timed anew.
        candidates: name -> a call running that form once on representative input. Every
            candidate must give the same results within the caller's tested bounds.
        folder: where ``choices.json`` lives (default: the model cache folder).
    """
    if not candidates:
        raise ValueError("fastest() needs at least one candidate")
    if len(candidates) == 1:
        [name] = candidates
        return Choice(name, {}, measured=False)
    path = (folder if folder is not None else cache_dir()) / CHOICES
    where = cpu_info().identity()
    versions = _versions()
    record = _read(path, warn).get(where, {}).get(task)
    if (isinstance(record, dict) and record.get("versions") == versions and record.get("choice") in candidates
            and isinstance(record.get("ms"), dict) and set(record["ms"]) == set(candidates)):
        return Choice(record["choice"], dict(record["ms"]), measured=False)
    ms = _time(candidates, calls, warm)
    choice = Choice(min(ms, key=lambda name: ms[name]), ms, measured=True)
    choices = _read(path, lambda _: None)  # again: another process may have added its own since
    choices.setdefault(where, {})[task] = {"choice": choice.name, "ms": ms, "versions": versions}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as f:
            dump_json({"version": CHOICES_VERSION, "choices": choices}, f)
    except (OSError, OutputWriteError) as exc:
        warn(f"cannot remember the measured choice for {task} in {path} ({exc}); it is timed again next run")
    return choice
