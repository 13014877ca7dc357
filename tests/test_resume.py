"""Interrupted work is kept and resumed to the same bytes.

A 300-frame video (and the same frames as a folder, and given poses through ``posetrack track``)
is stopped by Ctrl-C at three frames in turn, each rerun going on from the checkpoint the last one
left; the final JSON and CSV equal an uninterrupted run's (timings aside). A run killed outright
(SIGKILL: no chance to save anything) resumes from its last periodic checkpoint to the same bytes.
Boxes come from a file (``--detections``) so the pose network, the flow boxes, the tracker and the
int8 calibration all run while the detector's cost stays out of the test's time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from posetrack_cli.cli import main
from posetrack_cli.runtime.cache import ENV_CACHE

from helpers import FAST, summary, without_timings, write_video
from synthetic import Person, render

# Each test runs a video through the whole pipeline several times (minutes in all); test_run_cli.py's
# Ctrl-C test keeps one resume in the default suite.
pytestmark = pytest.mark.slow

FRAMES = 300
STOPS = (40, 150, 262)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two people walking to and fro across 300 frames (crossing each other), as an mp4 and as a PNG
    folder, with their boxes as COCO results (by frame index, and by file name for the folder)."""
    root = tmp_path_factory.mktemp("footage")
    t = np.arange(FRAMES, dtype=np.float32)
    people = [Person(110, np.stack([160 + 110 * np.sin(t / 23), 20 + 6 * np.sin(t / 7)], -1), seed=1),
              Person(100, np.stack([160 - 110 * np.sin(t / 31), 90 + 0 * t], -1), seed=2)]
    frames = render(people, FRAMES, size=(320, 240), seed=3)
    video = write_video(root / "walk.mp4", frames)
    folder = root / "walk_frames"
    folder.mkdir()
    names = [f"{i:04d}.png" for i in range(FRAMES)]
    for name, frame in zip(names, frames):
        cv2.imwrite(str(folder / name), frame)
    boxes = []
    for i in range(FRAMES):
        for person in people:
            x1, y1, x2, y2 = (float(v) for v in person.box(i))
            boxes.append({"image_id": i, "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": 0.9})
    (root / "boxes.json").write_text(json.dumps(boxes))
    (root / "boxes_by_name.json").write_text(json.dumps([{**b, "image_id": names[b["image_id"]]} for b in boxes]))
    return {"root": root, "video": video, "folder": folder, "boxes": root / "boxes.json",
            "boxes_by_name": root / "boxes_by_name.json"}


def cli(*args: str) -> Any:
    return CliRunner().invoke(main, [*args, "--no-progress"])


def stopped_at(frame: int, args: list[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run ``args`` with Ctrl-C pressed once the frame ``frame`` is written."""
    from posetrack_cli.run.pipeline import Pipeline

    real = Pipeline.run

    def press_at(self, source, sink, **kwargs):  # noqa: ANN001, ANN202
        def on_frame(index: int, people: int) -> None:
            if index == frame:
                os.kill(os.getpid(), signal.SIGINT)
        return real(self, source, sink, **{**kwargs, "on_frame": on_frame})

    with monkeypatch.context() as patch:
        patch.setattr(Pipeline, "run", press_at)
        return cli(*args)


def stop_three_times_then_finish(args: list[str], out: Path, name: str,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for stop in STOPS:
        result = stopped_at(stop, args, monkeypatch)
        assert result.exit_code == 130, result.output
        kept = json.loads((out / f"{name}.json").read_text())["info"]
        assert (kept["interrupted"], kept["partial_reason"], kept["frames"]) == (
            True, f"stopped by Ctrl-C after frame {stop}", stop + 1)
        [row] = summary(out).values()
        assert (row["status"], row["frames"]) == ("interrupted", str(stop + 1))
    result = cli(*args)
    assert result.exit_code == 0, result.output
    [row] = summary(out).values()
    assert (row["status"], row["reason"], row["frames"]) == ("ok", f"resumed after frame {STOPS[-1]}", str(FRAMES))
    assert not list(out.glob(".*")), "the checkpoint goes once the outputs are committed"


def assert_same_files(out: Path, reference: Path, name: str) -> None:
    assert without_timings(out / f"{name}.json") == without_timings(reference / f"{name}.json")
    assert (out / f"{name}.csv").read_bytes() == (reference / f"{name}.csv").read_bytes()


# The video runs the default runtime (int8 on OpenVINO, calibrated on the run's first crops); the
# frame folder and the killed run take eager torch, quicker to load, for the test's time.
RUNTIMES = {"video": [], "folder": ["--runtime", "torch"]}


@pytest.fixture(scope="module")
def reference(footage: dict[str, Path], test_manifest: Path, checkpoints: dict[str, Path],
              tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each source run once without stopping, from a cache without int8 models (as a user's first
    run: the pose network runs fp32 while it gathers its calibration crops)."""
    from posetrack_cli.models import weights as W

    root = tmp_path_factory.mktemp("reference")
    (root / "weights").mkdir()
    for path in checkpoints.values():
        (root / "weights" / path.name).symlink_to(path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(W.ENV_MANIFEST, str(test_manifest))
        patch.setenv(W.ENV_WEIGHTS, str(root / "weights"))
        patch.setenv(ENV_CACHE, str(root / "cache"))
        for kind in ("video", "folder"):
            assert cli(*run_args(footage, kind), "-o", str(root / kind)).exit_code == 0
    return {kind: root / kind for kind in ("video", "folder")}


def run_args(footage: dict[str, Path], kind: str) -> list[str]:
    source = footage["video"] if kind == "video" else footage["folder"]
    boxes = footage["boxes"] if kind == "video" else footage["boxes_by_name"]
    return ["run", str(source), "--detections", str(boxes), *FAST, *RUNTIMES[kind]]


@pytest.mark.parametrize("kind", ["video", "folder"])
def test_run_stopped_three_times_resumes_to_the_bytes_of_an_uninterrupted_run(
        kind: str, footage: dict[str, Path], reference: dict[str, Path], weights_folder: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    name = "walk" if kind == "video" else "walk_frames"
    monkeypatch.setenv(ENV_CACHE, str(tmp_path / "cache"))  # without int8 models, as the reference's was
    out = tmp_path / "out"
    stop_three_times_then_finish([*run_args(footage, kind), "-o", str(out)], out, name, monkeypatch)
    assert_same_files(out, reference[kind], name)
    if kind == "video":
        calibration = json.loads((out / f"{name}.json").read_text())["info"]["runtime"]["calibration"]
        assert calibration["source"].startswith("the first "), \
            "int8 was calibrated between the first and the second stop, and carried over both"


def test_track_stopped_three_times_resumes_to_the_same_bytes(footage: dict[str, Path], weights_folder: Path,
                                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    poses = tmp_path / "poses.json"  # poses from a run, as another estimator's would come
    assert cli("run", str(footage["video"]), "--detections", str(footage["boxes"]), *FAST,
               "-o", str(tmp_path / "posed")).exit_code == 0
    (tmp_path / "posed" / "walk.json").rename(poses)
    args = ["track", str(poses), "--video", str(footage["video"])]
    reference = tmp_path / "reference"
    result = cli(*args, "-o", str(reference))
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    stop_three_times_then_finish([*args, "-o", str(out)], out, "walk.tracks", monkeypatch)
    assert_same_files(out, reference, "walk.tracks")


def test_a_killed_run_resumes_from_its_last_checkpoint(footage: dict[str, Path], reference: dict[str, Path],
                                                       weights_folder: Path, tmp_path: Path) -> None:
    """SIGKILL leaves no chance to save anything: the periodic checkpoints are what remains."""
    args = [sys.executable, "-m", "posetrack_cli", *run_args(footage, "folder"), "--checkpoint-every", "0.3"]
    out = tmp_path / "out"
    env = {**os.environ, ENV_CACHE: str(tmp_path / "cache")}
    proc = subprocess.Popen([*args, "-o", str(out)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    work = out / ".walk_frames.checkpoint"
    deadline = time.monotonic() + 120
    saves = 0
    while time.monotonic() < deadline and proc.poll() is None:  # kill after a few checkpoints
        if (work / "state.json").exists():
            saves += 1
            if saves > 20:
                break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert (work / "state.json").exists() and not (out / "walk_frames.json").exists()
    resumed = subprocess.run([*args, "-o", str(out)], env=env, cwd=ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert summary(out)["walk_frames"]["reason"].startswith("resumed after frame ")
    assert_same_files(out, reference["folder"], "walk_frames")
