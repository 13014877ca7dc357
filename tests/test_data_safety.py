"""Nothing the user owns is ever lost: outputs never replace inputs or files posetrack did not write,
two runs into one folder do not collide, a full disk is one line and leaves nothing half-written,
and every JSON is strict. Each test checks the exit status, the one stderr line and what is on disk."""

from __future__ import annotations

import csv
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from posetrack_cli.cli import main

from helpers import FAST, check_outputs, summary, walkers, write_video

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> object:
    return CliRunner().invoke(main, ["run", *args])


def error_lines(result: object) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("posetrack:")]  # type: ignore[attr-defined]


def test_an_overlay_that_would_replace_the_input_video_is_refused_before_any_work(tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", walkers())
    before = video.read_bytes()
    result = run(str(video), "-o", str(tmp_path), "--render", *FAST)  # no weights needed: refused first
    assert result.exit_code == 1
    assert error_lines(result) == [f"posetrack: error: the output {tmp_path / 'clip.mp4'} would replace the input "
                                   f"{video}; choose another output folder (-o)"]
    assert video.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_files_the_user_owns_under_output_names_are_never_written_over(weights_folder: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", walkers())
    out = tmp_path / "out"
    out.mkdir()
    (out / "clip.csv").write_text("my own notes\n")
    result = run(str(video), "-o", str(out), *FAST)
    assert result.exit_code == 1
    assert "clip.csv exists and was not written by posetrack" in summary(out)["clip.mp4"]["reason"]
    assert (out / "clip.csv").read_text() == "my own notes\n" and not (out / "clip.json").exists()


def test_a_full_disk_is_one_line_and_leaves_no_partial_file(weights_folder: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes fail with ENOSPC in the middle of the first video (fault injection at the CSV rows)."""
    from posetrack_cli.io import outputs

    real_rows = outputs.csv_rows

    def rows(frame):  # noqa: ANN001, ANN202
        if frame.frame_index == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_rows(frame)

    monkeypatch.setattr(outputs, "csv_rows", rows)
    first = write_video(tmp_path / "first.mp4", walkers())
    out = tmp_path / "out"
    result = run(str(first), "-o", str(out), *FAST)
    assert result.exit_code == 1
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].endswith("first.csv: disk full") and "Traceback" not in result.output
    row = summary(out)["first.mp4"]
    assert row["status"] == "failed" and row["reason"].startswith("disk full: cannot write")
    assert sorted(p.name for p in out.iterdir()) == ["summary.csv"]  # no .partial, no lock


def test_a_video_named_summary_keeps_its_own_csv(weights_folder: Path, tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "summary.mp4", walkers())
    out = tmp_path / "out"
    assert run(str(videos), "-o", str(out), *FAST).exit_code == 0
    check_outputs(out, "videos__summary", 6)
    assert summary(out)["summary.mp4"]["name"] == "videos__summary"
    again = run(str(videos), "-o", str(out), *FAST)
    assert again.exit_code == 0 and summary(out)["summary.mp4"]["status"] == "skipped"
    assert summary(out)["summary.mp4"]["frames"] == "6" and summary(out)["summary.mp4"]["tracks"] != "0"


def test_the_output_folder_is_never_read_back_as_input(weights_folder: Path, tmp_path: Path) -> None:
    write_video(tmp_path / "clip.mp4", walkers())
    out = tmp_path / "out"
    for _ in range(2):
        result = run(str(tmp_path), "--recursive", "-o", str(out), "--render", *FAST)
        assert result.exit_code == 0, result.output
    assert list(summary(out)) == ["clip.mp4"] and not (out / "out__clip.json").exists()


def test_missing_inputs_are_reported_before_models_load_and_no_folder_is_left(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(str(tmp_path / "nowhere.mp4"), "-o", str(out), *FAST)  # no weights either
    assert result.exit_code == 1
    assert error_lines(result) == [f"posetrack: error: {tmp_path / 'nowhere.mp4'}: no such file or folder"]
    assert not out.exists()
    video = write_video(tmp_path / "clip.mp4", walkers())
    result = run(str(video), "-o", str(out), *FAST)  # the models are missing: all named at once, nothing written
    assert result.exit_code == 1 and not out.exists()
    [line] = error_lines(result)
    assert "2 model files are missing" in line
    assert "fasterrcnn_mobilenet_v3_large_fpn" in line and "pose_resnet50_256x192" in line


@pytest.mark.parametrize("flag, value", [("--input-size", "100x100"), ("--input-size", "0x0"),
                                         ("--input-size", "33x17"), ("--joint-threshold", "nan"),
                                         ("--det-threshold", "inf"), ("--fps", "nan"), ("--fps", "inf"),
                                         ("--min-similarity", "1.5")])
def test_bad_option_values_are_one_line_usage_errors(tmp_path: Path, flag: str, value: str) -> None:
    result = run(str(tmp_path), flag, value)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("posetrack: error: Invalid value for") and flag in lines[0]
    assert "internal error" not in result.stderr


def test_posetrack_without_arguments_prints_help() -> None:
    result = CliRunner().invoke(main, [])
    assert result.exit_code == 0 and "Usage:" in result.output and "run" in result.output


@pytest.mark.slow
def test_two_runs_into_one_folder_on_overlapping_batches(weights_folder: Path, tmp_path: Path) -> None:
    """Both finish; every output is complete and strict JSON; summary.csv has one row per input."""
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in "abcd":
        write_video(videos / f"{name}.mp4", walkers(frames=6, seed=ord(name)))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}

    def start(*names: str) -> subprocess.Popen:
        paths = [str(videos / f"{n}.mp4") for n in names]
        return subprocess.Popen([sys.executable, "-m", "posetrack_cli", "run", *paths, "-o", str(out), *FAST],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    first, second = start("a", "b", "c"), start("c", "b", "d")
    for proc in (first, second):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    rows = summary(out)
    assert sorted(rows) == ["a.mp4", "b.mp4", "c.mp4", "d.mp4"]
    assert all(row["status"] in ("ok", "skipped") for row in rows.values())
    with open(out / "summary.csv", newline="") as f:
        assert len(list(csv.reader(f))) == 5  # header + one row per input
    for name in "abcd":
        check_outputs(out, name, 6)
    assert not list(out.glob(".*"))


def test_every_json_output_parses_strictly(weights_folder: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", walkers(frames=12))
    out = tmp_path / "out"
    assert run(str(video), "-o", str(out), *FAST).exit_code == 0

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in a JSON output")

    doc = json.loads((out / "clip.json").read_text(), parse_constant=refuse)
    assert all(0.0 <= a["score"] <= 1.0 for a in doc["annotations"])
    assert all(0.0 <= s <= 1.0 for a in doc["annotations"] for s in a["keypoint_scores"])
