"""posetrack as a library: the public names, PoseTrack frame by frame and into files, and the
runnable example of docs/python.md (examples/track_video.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import posetrack_cli

from helpers import check_outputs, walkers, write_video

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = {"input_size": (32, 32), "flip_test": False, "detector_size": 256, "allow_download": False}


def test_public_names_are_exported_and_importing_stays_light() -> None:
    for name in posetrack_cli.__all__:
        assert getattr(posetrack_cli, name) is not None
    code = "import sys, posetrack_cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
    with pytest.raises(AttributeError):
        posetrack_cli.NotAThing  # noqa: B018


def test_track_frame_by_frame_with_detector_boxes_or_poses(weights_folder: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", walkers())
    tracker = posetrack_cli.VideoTracker.load(**OPTIONS)
    frames = list(tracker.track(video))
    assert [f.frame_index for f in frames] == list(range(6))
    assert all(isinstance(f, posetrack_cli.TrackedFrame) and f.sources is not None for f in frames)
    assert sum(len(f) for f in frames) > 0
    boxes = {0: posetrack_cli.Detections([[20, 10, 120, 200]], [0.9])}
    given = list(tracker.track(video, boxes=boxes))
    assert len(given[0]) >= 1 and given[0].sources[0] == "detector"
    poses = {t: f.poses for t, f in enumerate(frames)}
    retracked = list(tracker.track(video, poses=poses))
    for a, b in zip(frames, retracked, strict=True):
        np.testing.assert_array_equal(a.poses.keypoints, b.poses.keypoints)
        assert set(b.sources.tolist()) <= {"given"}
    with pytest.raises(TypeError, match="unknown options: colour"):
        posetrack_cli.VideoTracker.load(colour="red")


def test_given_boxes_need_no_detector_file_and_load_none(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    """No weights folder at all, only a pose file: loading and tracking with your own boxes work;
    the detector is looked for only when a video comes without boxes, and then it is missing."""
    from posetrack_cli.models import weights as W

    assert not W.weights_dir().exists()
    video = write_video(tmp_path / "clip.mp4", walkers())
    tracker = posetrack_cli.VideoTracker.load(pose_weights=checkpoints["pose"], input_size=(32, 32), flip_test=False,
                                              runtime="torch", precision="fp32", allow_download=False)
    boxes = {t: posetrack_cli.Detections([[30.0 + 10 * t, 15.0, 90.0 + 10 * t, 145.0]], [0.9]) for t in range(6)}
    frames = list(tracker.track(video, boxes=boxes))
    assert [f.frame_index for f in frames] == list(range(6)) and all(len(f) >= 1 for f in frames)
    assert frames[0].sources[0] == "detector"  # the given box, through the pose network
    assert tracker.info["settings"]["detector_runtime"] is None  # no detector was loaded
    detector = W.load_manifest()["fasterrcnn_mobilenet_v3_large_fpn"]
    with pytest.raises(posetrack_cli.PosetrackError, match=detector.filename):
        next(iter(tracker.track(video)))  # no boxes: now the detector is needed, and its file is not there
    with pytest.raises(posetrack_cli.PosetrackError, match=detector.filename):
        tracker.run(video, out=tmp_path / "out")  # files without a boxes file: the same, before any is written
    assert not (tmp_path / "out").exists()


def test_run_writes_what_the_command_line_writes(weights_folder: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", walkers())
    rows = posetrack_cli.VideoTracker.load(**OPTIONS).run(video, out=tmp_path / "out")
    assert [(r.name, r.status) for r in rows] == [("clip", "ok")]
    check_outputs(tmp_path / "out", "clip", 6)


@pytest.mark.slow
def test_the_readme_example_runs(weights_folder: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", walkers())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "track_video.py"), str(video), "--offline",
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=300)
    # The example uses the fast preset's real input size (192x256), which the random checkpoints load too.
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("frame 0 t=0.00s:")
    assert "with given boxes:" in proc.stdout and f"{video}: ok 6 frames" in proc.stdout
    assert json.loads((tmp_path / "out" / "clip.json").read_text())["info"]["frames"] == 6


def test_every_public_name_shows_an_example() -> None:
    """Each public class and function has an ``Example:`` in its docstring, run by --doctest-modules."""
    constants = {"__version__", "COCO_KEYPOINTS"}
    missing = [name for name in posetrack_cli.__all__
               if name not in constants and "Example" not in (getattr(posetrack_cli, name).__doc__ or "")]
    assert not missing, f"public names without an Example in their docstring: {', '.join(missing)}"
