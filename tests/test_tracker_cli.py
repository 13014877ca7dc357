"""The tracker's options through ``posetrack track``: lost memory, the paper's tracker, smoothing."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from posetrack_cli.cli import main

from synthetic import Person, linear_path, poses_at, render

FRAMES, HIDDEN = 30, range(10, 22)  # hidden 12 frames, more than twice L_Q


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict]]:
    """A walker missed by the estimator for 12 frames, as an mp4 and COCO results."""
    root = tmp_path_factory.mktemp("clip")
    people = [Person(120, linear_path((40, 30), (6, 0), FRAMES), seed=1)]
    video = root / "walk.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30, (480, 320))
    for frame in render(people, FRAMES):
        writer.write(frame)
    writer.release()
    results = []
    for t in range(FRAMES):
        poses, who = poses_at(people, t, [t not in HIDDEN])
        for i in range(len(who)):
            kps = np.concatenate([poses.keypoints[i], poses.keypoint_scores[i][:, None]], 1)
            results.append({"image_id": t, "category_id": 1, "keypoints": kps.ravel().tolist(), "score": 0.95})
    (root / "results.json").write_text(json.dumps(results))
    return video, root / "results.json", results


def track(clip, out: Path, *options: str):
    video, poses, _ = clip
    args = ["track", str(poses), "--video", str(video), "-o", str(out), "--no-progress", *options]
    result = CliRunner().invoke(main, args)
    doc = json.loads((out / "walk.tracks.json").read_text()) if result.exit_code == 0 else None
    return result, doc


def test_hidden_walker_keeps_their_id_by_default_and_not_with_the_papers_tracker(clip, tmp_path: Path) -> None:
    result, doc = track(clip, tmp_path / "default")
    assert result.exit_code == 0, result.output
    assert {a["track_id"] for a in doc["annotations"]} == {0}
    # how each id was given: new, then live, re-found from the lost memory once, live again
    matches = [a["match"] for a in doc["annotations"]]
    assert matches == ["new"] + ["live"] * (HIDDEN.start - 1) + ["lost"] + ["live"] * (FRAMES - HIDDEN.stop - 1)
    settings = doc["info"]["settings"]
    assert settings["max_lost"] == 1.5 and settings["own_motion"] and settings["appearance"]
    assert settings["smooth"] == "none"
    result, doc = track(clip, tmp_path / "paper", "--max-lost", "0", "--no-own-motion", "--no-appearance")
    assert result.exit_code == 0, result.output
    assert {a["track_id"] for a in doc["annotations"]} == {0, 1}


def test_smoothing_changes_keypoints_but_not_scores_and_is_recorded(clip, tmp_path: Path) -> None:
    _, _, given = clip
    result, doc = track(clip, tmp_path, "--smooth", "one-euro", "--smooth-beta", "5")
    assert result.exit_code == 0, result.output
    settings = doc["info"]["settings"]
    assert (settings["smooth"], settings["smooth_min_cutoff"], settings["smooth_beta"]) == ("one-euro", 1.0, 5.0)
    written = np.array([a["keypoints"] for a in doc["annotations"]]).reshape(len(given), 17, 3)
    raw = np.array([g["keypoints"] for g in given]).reshape(len(given), 17, 3)
    assert np.abs(written[:, :, :2] - raw[:, :, :2]).max() > 0.5  # smoothed
    np.testing.assert_allclose(np.array([a["keypoint_scores"] for a in doc["annotations"]]), raw[:, :, 2], atol=1e-6)


def test_smoothing_settings_without_a_smoother_is_one_clear_error(clip, tmp_path: Path) -> None:
    result, _ = track(clip, tmp_path, "--smooth-beta", "5")
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("posetrack: error: --smooth-beta applies to --smooth one-euro only")


def test_stitch_rewrites_ids_in_the_files_before_they_are_committed(tmp_path: Path) -> None:
    """The walker who breaks into a run behind a pillar: online they come back under a new id;
    with --stitch the JSON and the CSV carry one id for them, and the JSON says one join was made."""
    import csv as csv_module

    import cv2

    from occlusion_scenes import poses_of, sprint_behind_pillar

    scene = sprint_behind_pillar()
    frames = tmp_path / "sprint"
    frames.mkdir()
    rng = np.random.default_rng(0)
    results = []
    for t, image in enumerate(scene.frames):
        cv2.imwrite(str(frames / f"{t:03d}.png"), image)
        poses, _ = poses_of(scene, t, rng)
        for i in range(len(poses)):
            kps = np.concatenate([poses.keypoints[i], poses.keypoint_scores[i][:, None]], 1)
            results.append({"image_id": t, "category_id": 1, "keypoints": kps.ravel().tolist(), "score": 0.95})
    (tmp_path / "poses.json").write_text(json.dumps(results))
    tracks = {}
    for stitched in (False, True):
        out = tmp_path / f"out-{stitched}"
        args = ["track", str(tmp_path / "poses.json"), "--video", str(frames), "--fps", "30", "-o", str(out),
                "--no-progress"] + (["--stitch"] if stitched else [])
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        doc = json.loads((out / "sprint.tracks.json").read_text())
        tracks[stitched] = {a["track_id"] for a in doc["annotations"]}
        assert doc["info"]["stitched"] == (1 if stitched else 0) and doc["info"]["settings"]["stitch"] is stitched
        with open(out / "sprint.tracks.csv", newline="") as f:
            assert {int(r["track_id"]) for r in csv_module.DictReader(f)} == tracks[stitched]
    assert len(tracks[False]) == 3 and tracks[True] == {0, 1}
    refused = CliRunner().invoke(main, ["run", str(frames), "--stitch", "--render"])
    assert refused.exit_code == 1 and "--stitch rewrites ids after the video" in refused.stderr
