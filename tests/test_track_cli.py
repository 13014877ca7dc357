"""``posetrack track`` end to end on rendered videos and frame folders, and its bad inputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from posetrack_cli.cli import main

from helpers import summary
from synthetic import Person, linear_path, poses_at, render

FRAMES = 16


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two people crossing, as an mp4 and as a folder of PNG frames, with their poses as
    COCO results (person 1 missing in frames 6-8, as if the estimator missed them)."""
    root = tmp_path_factory.mktemp("scene")
    people = [Person(150, linear_path((60, 30), (20, 0), FRAMES), seed=1),
              Person(150, linear_path((420, 150), (-20, 0), FRAMES), seed=2)]
    frames = render(people, FRAMES)
    video = root / "walk.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25, (480, 320))
    folder = root / "walk_frames"
    folder.mkdir()
    for t, frame in enumerate(frames):
        writer.write(frame)
        cv2.imwrite(str(folder / f"img{t}.png"), frame)  # natural order: img2 before img10
    writer.release()
    results, owners = [], []
    for t in range(FRAMES):
        poses, who = poses_at(people, t, [True, not 6 <= t <= 8])
        for i, person in enumerate(who):
            kps = np.concatenate([poses.keypoints[i], poses.keypoint_scores[i][:, None]], 1)
            x1, y1, x2, y2 = poses.boxes[i].tolist()
            results.append({"image_id": t, "category_id": 1, "keypoints": kps.ravel().tolist(),
                            "score": 0.95, "bbox": [x1, y1, x2 - x1, y2 - y1]})
            owners.append(person)
    poses_file = root / "results.json"
    poses_file.write_text(json.dumps(results))
    return {"root": root, "video": video, "folder": folder, "poses": poses_file, "results": results, "owners": owners}


def run(*args: str) -> object:
    return CliRunner().invoke(main, ["track", *args, "--no-progress"])


def check_tracks(out: Path, name: str, scene: dict) -> dict:
    doc = json.loads((out / f"{name}.tracks.json").read_text())
    assert len(doc["images"]) == FRAMES and len(doc["annotations"]) == len(scene["results"])
    # Annotations follow frame order; map each back to its person by matching keypoints.
    ids = {0: set(), 1: set()}
    for ann in doc["annotations"]:
        match = next(i for i, r in enumerate(scene["results"])
                     if r["image_id"] == ann["image_id"] and abs(r["keypoints"][0] - ann["keypoints"][0]) < 0.01)
        ids[scene["owners"][match]].add(ann["track_id"])
    assert ids[0] == {0} and ids[1] == {1}, ids
    with open(out / f"{name}.tracks.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(doc["annotations"])
    written = {(a["image_id"], a["track_id"]) for a in doc["annotations"]}
    assert {(int(r["frame"]), int(r["track_id"])) for r in rows} == written
    return doc


def test_tracks_coco_results_on_a_video(scene: dict, tmp_path: Path) -> None:
    result = run(str(scene["poses"]), "--video", str(scene["video"]), "-o", str(tmp_path))
    assert result.exit_code == 0, result.output
    doc = check_tracks(tmp_path, "walk", scene)
    assert doc["images"][1]["timestamp"] == pytest.approx(0.04)  # from the container, 25 fps
    assert doc["info"]["settings"]["similarity"] == "flow-oks" and doc["info"]["models"]["flow"] == "dis-medium"
    [row] = summary(tmp_path).values()
    assert (row["name"], row["status"], row["tracks"]) == ("walk.tracks", "ok", "2")


def test_tracks_on_a_frame_folder_with_file_name_ids(scene: dict, tmp_path: Path) -> None:
    results = [{**r, "image_id": f"img{r['image_id']}.png"} for r in scene["results"]]
    poses = tmp_path / "named.json"
    poses.write_text(json.dumps(results))
    result = run(str(poses), "--video", str(scene["folder"]), "-o", str(tmp_path / "out"), "--fps", "10")
    assert result.exit_code == 0, result.output
    doc = check_tracks(tmp_path / "out", "walk_frames", scene)
    assert doc["images"][10]["file_name"] == "img10.png" and doc["images"][10]["timestamp"] == pytest.approx(1.0)


def test_retracks_a_posetrack_file(scene: dict, tmp_path: Path) -> None:
    assert run(str(scene["poses"]), "--video", str(scene["video"]), "-o", str(tmp_path / "a")).exit_code == 0
    doc = json.loads((tmp_path / "a" / "walk.tracks.json").read_text())
    for ann in doc["annotations"]:
        ann["track_id"] = 99  # ids are assigned afresh
    (tmp_path / "mine.json").write_text(json.dumps(doc))
    result = run(str(tmp_path / "mine.json"), "--video", str(scene["video"]), "-o", str(tmp_path / "b"))
    assert result.exit_code == 0, result.output
    check_tracks(tmp_path / "b", "walk", scene)


def test_a_folder_of_videos_with_a_folder_of_poses_runs_as_a_batch_and_resumes(scene: dict, tmp_path: Path) -> None:
    """Each video takes <name>.json from the POSES folder; a rerun skips what is done, and redoes a
    video whose poses file changed (the poses are as much its input as its frames)."""
    import shutil

    videos, poses = tmp_path / "videos", tmp_path / "poses"
    videos.mkdir()
    poses.mkdir()
    for name in ("a", "b"):
        shutil.copy(scene["video"], videos / f"{name}.mp4")
        shutil.copy(scene["poses"], poses / f"{name}.json")
    out = tmp_path / "out"
    result = run(str(poses), "--video", str(videos), "-o", str(out))
    assert result.exit_code == 0, result.output
    for name in ("a", "b"):
        check_tracks(out, name, scene)
    assert {n: r["status"] for n, r in summary(out).items()} == {"a.mp4": "ok", "b.mp4": "ok"}

    first = (out / "a.tracks.json").read_bytes()
    fewer = [r for r in scene["results"] if r["image_id"] != 3]
    (poses / "b.json").write_text(json.dumps(fewer))
    assert run(str(poses), "--video", str(videos), "-o", str(out)).exit_code == 0
    assert {n: r["status"] for n, r in summary(out).items()} == {"a.mp4": "skipped", "b.mp4": "ok"}
    assert (out / "a.tracks.json").read_bytes() == first
    assert not any(a["image_id"] == 3 for a in json.loads((out / "b.tracks.json").read_text())["annotations"])


def test_one_poses_file_for_a_folder_of_videos_is_refused(scene: dict, tmp_path: Path) -> None:
    import shutil

    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a", "b"):
        shutil.copy(scene["video"], videos / f"{name}.mp4")
    result = run(str(scene["poses"]), "--video", str(videos), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1 and "holds the poses of one video" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_video_without_its_poses_file_fails_alone(scene: dict, tmp_path: Path) -> None:
    import shutil

    videos, poses = tmp_path / "videos", tmp_path / "poses"
    videos.mkdir()
    poses.mkdir()
    for name in ("a", "b"):
        shutil.copy(scene["video"], videos / f"{name}.mp4")
    shutil.copy(scene["poses"], poses / "a.json")
    out = tmp_path / "out"
    result = run(str(poses), "--video", str(videos), "-o", str(out))
    assert result.exit_code == 1
    rows = summary(out)
    assert rows["a.mp4"]["status"] == "ok" and rows["b.mp4"]["status"] == "failed"
    assert rows["b.mp4"]["reason"] == f"no poses for b.mp4: {poses / 'b.json'} does not exist"


def bad_input(tmp_path: Path, scene: dict, kind: str) -> tuple[list[str], str]:
    poses, video = str(scene["poses"]), str(scene["video"])
    target = tmp_path / "bad.json"
    if kind == "beyond-video":
        target.write_text(json.dumps([{**scene["results"][0], "image_id": FRAMES + 3}]))
        return [str(target), "--video", video], f"frame {FRAMES + 3}"
    if kind == "not-poses":
        target.write_text(json.dumps({"hello": "world"}))
        return [str(target), "--video", video], ("neither a COCO-results list nor a COCO keypoint, PoseTrack 2018 or "
                                                 "posetrack track file")
    if kind == "keypoint-count":
        target.write_text(json.dumps([{**scene["results"][0], "keypoints": [1.0, 2.0, 1.0] * 16}]))
        return [str(target), "--video", video], "16 keypoints, expected 17"
    if kind == "invalid-json":
        target.write_text("[{")
        return [str(target), "--video", video], "not valid JSON"
    if kind == "unreadable-video":
        fake = tmp_path / "fake.mp4"
        fake.write_text("this is not a video")
        return [poses, "--video", str(fake)], "cannot open"
    if kind == "name-for-video":
        target.write_text(json.dumps([{**scene["results"][0], "image_id": "img0.png"}]))
        return [str(target), "--video", video], "not a frame folder"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["beyond-video", "not-poses", "keypoint-count", "invalid-json", "unreadable-video",
                                  "name-for-video"])
def test_bad_input_is_one_line_and_writes_nothing(kind: str, scene: dict, tmp_path: Path) -> None:
    args, expected = bad_input(tmp_path, scene, kind)
    out = tmp_path / "out"
    result = run(*args, "-o", str(out))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("posetrack: error:") and expected in lines[0], result.stderr
    assert not out.exists() or not any(out.iterdir())


def test_bad_option_values_are_refused_by_click(scene: dict) -> None:
    result = run(str(scene["poses"]), "--video", str(scene["video"]), "--queue-length", "0")
    assert result.exit_code == 2 and "queue-length" in result.stderr


def test_a_frame_folder_with_a_corrupt_image_keeps_the_frames_before_it(scene: dict, tmp_path: Path) -> None:
    """As `posetrack run` does: frames 0-2 tracked and written, the output marked partial with why."""
    import shutil

    folder = tmp_path / "frames"
    shutil.copytree(scene["folder"], folder)
    (folder / "img3.png").write_bytes(b"\x89PNG broken")
    results = [{**r, "image_id": f"img{r['image_id']}.png"} for r in scene["results"]]
    (tmp_path / "named.json").write_text(json.dumps(results))
    out = tmp_path / "out"
    result = run(str(tmp_path / "named.json"), "--video", str(folder), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("posetrack: warning:") and "cannot read image" in result.stderr
    doc = json.loads((out / "frames.tracks.json").read_text())
    assert doc["info"]["partial"] is True and "img3.png" in doc["info"]["partial_reason"]
    assert doc["info"]["frames"] == 3
    assert [im["file_name"] for im in doc["images"]] == ["img0.png", "img1.png", "img2.png"]
    assert {a["image_id"] for a in doc["annotations"]} == {0, 1, 2} and not list(out.glob(".*"))


def test_outputs_never_replace_the_poses_file_or_run_outputs(scene: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    poses = out / "walk.json"  # a file named as `posetrack run`'s output of walk.mp4
    poses.write_bytes(scene["poses"].read_bytes())
    before = poses.read_bytes()
    result = run(str(poses), "--video", str(scene["video"]), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert poses.read_bytes() == before and (out / "walk.tracks.json").exists()
