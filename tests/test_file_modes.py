"""Every file posetrack writes gets the mode the umask gives new files (0666 less the umask), as
files made with ``open`` do: no 0600 files from ``mkstemp`` beside 0644 ones."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner
from test_evaluate import _pt18, _scene, _write

from posetrack_cli.cli import main
from posetrack_cli.core.files import atomic_write, umask_mode
from posetrack_cli.training.loop import _write_history

from helpers import FAST, walkers, write_video


@pytest.fixture(params=[0o022, 0o077], ids=["umask022", "umask077"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_creates_and_replaces_files_with_the_umask_mode(umask: int, tmp_path: Path) -> None:
    assert umask_mode() == 0o666 & ~umask
    target = tmp_path / "a.csv"
    target.write_text("old")
    os.chmod(target, 0o600)
    with atomic_write(target) as f:
        f.write("new")
    assert target.read_text() == "new" and mode(target) == 0o666 & ~umask
    with atomic_write(tmp_path / "b.bin", "wb") as f:
        f.write(b"\0")
    assert mode(tmp_path / "b.bin") == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.bin"]


def test_run_outputs_and_summary_follow_the_umask(umask: int, weights_folder: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", walkers(frames=3))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(video), "-o", str(out), "--render", *FAST])
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in out.iterdir())
    assert written == ["clip.csv", "clip.json", "clip.mp4", "summary.csv"]
    assert {name: mode(out / name) for name in written} == {name: 0o666 & ~umask for name in written}


def test_evaluate_json_and_training_history_follow_the_umask(umask: int, tmp_path: Path) -> None:
    gt = _write(tmp_path, "seq", _pt18(_scene(), scores=False))
    report = tmp_path / "reports" / "scores.json"
    result = CliRunner().invoke(main, ["evaluate", str(gt), str(gt), "--json", str(report)])
    assert result.exit_code == 0, result.output
    assert mode(report) == 0o666 & ~umask
    history = tmp_path / "history.csv"
    _write_history(history, [{"epoch": 1, "lr": 1e-3, "loss": 0.5, "seconds": 1.0, "skipped": 0, "metrics": {}}])
    assert mode(history) == 0o666 & ~umask
