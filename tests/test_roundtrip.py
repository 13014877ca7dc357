"""Every file posetrack writes can be fed back to it: ``posetrack track`` on its JSON, its CSV and
its ``posetrack18`` and ``coco`` exports gives the same people, ids and joints as the tracks they
were made from (within each format's precision); the ``mot`` export gives boxes to ``posetrack run
--detections``; and a COCO keypoint annotation file (``v`` flags) is tracked as trusted joints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from posetrack_cli.cli import main
from posetrack_cli.core.keypoints import COCO_KEYPOINTS

from helpers import FAST
from synthetic import Person, linear_path, poses_at, render

FRAMES = 12
EYES = [COCO_KEYPOINTS.index("left_eye"), COCO_KEYPOINTS.index("right_eye")]  # PoseTrack 2018 has none


def _cli(*args: str) -> Any:
    return CliRunner().invoke(main, [*args, "--no-progress"] if args[0] in ("run", "track") else list(args))


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two people crossing (an mp4 and the same frames as a folder), their poses tracked by
    ``posetrack track`` into ``base/walk.tracks.json``, and that file exported in every format."""
    root = tmp_path_factory.mktemp("roundtrip")
    people = [Person(150, linear_path((60, 30), (30, 0), FRAMES), seed=1),
              Person(150, linear_path((420, 150), (-30, 0), FRAMES), seed=2)]
    frames = render(people, FRAMES)
    video, folder = root / "walk.mp4", root / "walk"
    folder.mkdir()
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25, (480, 320))
    for t, frame in enumerate(frames):
        writer.write(frame)
        cv2.imwrite(str(folder / f"img{t}.png"), frame)
    writer.release()
    rng = np.random.default_rng(0)
    results = []
    for t in range(FRAMES):
        poses, _ = poses_at(people, t)
        for i in range(len(poses)):
            scores = rng.uniform(0.35, 1.0, 17).round(3)
            scores[rng.integers(17)] = 0.1  # one weak joint each
            kps = np.concatenate([poses.keypoints[i], scores[:, None]], 1)
            x1, y1, x2, y2 = poses.boxes[i].tolist()
            results.append({"image_id": t, "category_id": 1, "keypoints": kps.ravel().tolist(),
                            "score": round(float(rng.uniform(0.6, 1.0)), 3), "bbox": [x1, y1, x2 - x1, y2 - y1]})
    (root / "results.json").write_text(json.dumps(results))
    for source, name in ((video, "base"), (folder, "base_folder")):
        done = _cli("track", str(root / "results.json"), "--video", str(source), "-o", str(root / name))
        assert done.exit_code == 0, done.output
        people = _people(root / name / f"{source.stem}.tracks.json")
        assert len(people) == 2 * FRAMES and {tid for _, tid in people} == {0, 1}  # two tracks, no switch
        exported = _cli("export", str(root / name / f"{source.stem}.tracks.json"), "-o", str(root / name / "exports"))
        assert exported.exit_code == 0, exported.output
    return {"root": root, "video": video, "folder": folder}


def _people(path: Path) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray, float]]:
    """A track file's people by (frame, track id): keypoints (17, 2), scores (17,), box xywh (4,), score."""
    doc = json.loads(path.read_text())
    return {(a["image_id"], a["track_id"]): (np.reshape(a["keypoints"], (17, 3))[:, :2], np.array(a["keypoint_scores"]),
                                             np.array(a["bbox"]), a["score"]) for a in doc["annotations"]}


def _same(before: dict, after: dict, *, missing: list[int] = ()) -> None:  # type: ignore[assignment]
    """The same people with the same ids in the same frames; the same joints within the formats'
    precision (0.01 px, scores 1e-4), except ``missing`` ones, which the format cannot carry."""
    assert sorted(after) == sorted(before)
    carried = np.setdiff1d(np.arange(17), missing)
    for key, (kps, scores, box, score) in before.items():
        kps2, scores2, box2, score2 = after[key]
        np.testing.assert_allclose(kps2[carried], kps[carried], atol=0.011)
        np.testing.assert_allclose(scores2[carried], scores[carried], atol=1e-4)
        assert (scores2[missing] == 0).all()
        np.testing.assert_allclose(box2, box, atol=0.021)
        assert score2 == pytest.approx(score, abs=1e-4)


# (what is fed back, from the folder of base tracks; joints the format does not carry)
FEEDS = {
    "json": ("walk.tracks.json", []),
    "csv": ("walk.tracks.csv", []),
    "coco": ("exports/coco/walk.tracks.json", []),
    "posetrack18": ("exports/posetrack18/walk.tracks.json", EYES),
}


@pytest.mark.parametrize("source", ["video", "folder"])
@pytest.mark.parametrize("feed", sorted(FEEDS))
def test_each_export_fed_back_to_track_gives_the_same_tracks(feed: str, source: str, tracked: dict,
                                                               tmp_path: Path) -> None:
    base = tracked["root"] / ("base" if source == "video" else "base_folder")
    stem = tracked[source].stem
    given, missing = FEEDS[feed]
    given = given.replace("walk", stem)
    result = _cli("track", str(base / given), "--video", str(tracked[source]), "-o", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    _same(_people(base / f"{stem}.tracks.json"), _people(tmp_path / f"{stem}.tracks.json"), missing=missing)


def test_the_mot_export_gives_boxes_to_run_and_is_refused_by_track_in_one_line(tracked: dict,
                                                                                checkpoints: dict[str, Path],
                                                                                tmp_path: Path) -> None:
    mot = tracked["root"] / "base" / "exports" / "mot" / "walk.tracks.txt"
    refused = _cli("track", str(mot), "--video", str(tracked["video"]), "-o", str(tmp_path / "t"))
    assert refused.exit_code == 1
    assert refused.stderr.splitlines() == [
        f"posetrack: error: {tracked['video']}: {mot} holds MOTChallenge boxes (frame,id,x,y,w,h,...) without joints; "
        f"posetrack track needs poses: to estimate poses in these boxes, run `posetrack run VIDEO --detections {mot}`"]

    # every box written, whether or not its pose's track lasts (the random network's people flicker)
    result = _cli("run", str(tracked["video"]), "--detections", str(mot), "--pose-weights", str(checkpoints["pose"]),
                  "--runtime", "torch", "--precision", "fp32", "--confirm-frames", "1", "-o", str(tmp_path / "r"),
                  *FAST)
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "r" / "walk.json").read_text())
    before = _people(tracked["root"] / "base" / "walk.tracks.json")
    for (frame, _), (_, _, box, _) in before.items():  # every exported box is a detection of its frame again
        assert any(a["source"] == "detector" and np.allclose(a["bbox"], box, atol=0.011)
                   for a in doc["annotations"] if a["image_id"] == frame), (frame, box)
    assert len({a["track_id"] for a in doc["annotations"]}) >= 2


def _annotation_file(tracked: dict, source: str) -> tuple[dict, dict]:
    """A COCO keypoint annotation file of the base tracks: COCO's own image ids (not frame
    indices), file names, v flags (2 seen, 1 hidden, 0 not labelled at (0, 0)), no scores, no
    track ids; and a crowd region, which is not a person to track."""
    base = tracked["root"] / ("base" if source == "video" else "base_folder")
    stem = tracked[source].stem
    doc = json.loads((base / f"{stem}.tracks.json").read_text())
    rng = np.random.default_rng(1)
    names = {im["id"]: (f"{im['id']:06d}.jpg" if source == "video" else im["file_name"]) for im in doc["images"]}
    images = [{"id": 397_000 + im["id"], "file_name": names[im["id"]], "width": 480, "height": 320}
              for im in doc["images"]]
    annotations, flags = [], {}
    for n, a in enumerate(doc["annotations"]):
        v = rng.choice([0, 1, 2, 2, 2, 2], 17)
        xyv = np.reshape(a["keypoints"], (17, 3))
        xyv[:, 2] = v
        xyv[v == 0, :2] = 0
        flags[a["image_id"], a["track_id"]] = v
        annotations.append({"id": n + 1, "image_id": 397_000 + a["image_id"], "category_id": 1, "iscrowd": 0,
                            "num_keypoints": int((v > 0).sum()), "bbox": a["bbox"], "area": a["area"],
                            "keypoints": [int(x) if j % 3 == 2 else x for j, x in enumerate(xyv.ravel().tolist())]})
    annotations.append({"id": 999, "image_id": 397_000, "category_id": 1, "iscrowd": 1, "num_keypoints": 0,
                        "bbox": [0, 0, 100, 100], "area": 10_000, "keypoints": [0] * 51})
    categories = [{"id": 1, "name": "person", "keypoints": list(COCO_KEYPOINTS), "skeleton": []}]
    return {"images": images, "annotations": annotations, "categories": categories}, flags


@pytest.mark.parametrize("source", ["video", "folder"])
def test_a_coco_annotation_file_is_tracked_with_labelled_joints_trusted(source: str, tracked: dict,
                                                                          tmp_path: Path) -> None:
    document, flags = _annotation_file(tracked, source)
    path = tmp_path / "person_keypoints.json"
    path.write_text(json.dumps(document))
    result = _cli("track", str(path), "--video", str(tracked[source]), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    stem = tracked[source].stem
    base = tracked["root"] / ("base" if source == "video" else "base_folder")
    before, after = _people(base / f"{stem}.tracks.json"), _people(tmp_path / "out" / f"{stem}.tracks.json")
    assert sorted(after) == sorted(before)  # the same people, the same ids, frames found by file name
    for key, (kps, _, box, _) in before.items():
        labelled = flags[key] > 0
        kps2, scores2, box2, score2 = after[key]
        np.testing.assert_array_equal(scores2, labelled.astype(float))  # 1 or 2: trusted; 0: missing
        np.testing.assert_allclose(kps2[labelled], kps[labelled], atol=0.011)
        np.testing.assert_allclose(box2, box, atol=0.011)
        assert score2 == 1.0


def test_a_keypoint_file_with_flags_other_than_0_1_2_is_one_line(tracked: dict, tmp_path: Path) -> None:
    document, _ = _annotation_file(tracked, "video")
    document["annotations"][3]["keypoints"][5] = 0.87  # a confidence where a flag belongs
    path = tmp_path / "person_keypoints.json"
    path.write_text(json.dumps(document))
    result = _cli("track", str(path), "--video", str(tracked["video"]), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "person_keypoints.json annotation 3: v of left_eye is 0.87" in lines[0], lines
    assert "0 (not labelled), 1 or 2 (labelled): give confidences in keypoint_scores" in lines[0]


def test_a_posetrack_2018_ground_truth_file_on_its_video(shared_data: Path, tmp_path: Path) -> None:
    """A real PoseTrack-2018-format file (Bonn PoseTrack, 76 frames, two people; its frame files
    count from 00001.jpg): frames matched by their place in the file, as PoseTrack's tools do,
    joints by name (COCO's eyes are not in it), ids given by the tracker to the same people."""
    truth = shared_data / "tracking_dev" / "000001.json"
    doc = json.loads(truth.read_text())
    frames = len(doc["images"])
    video = tmp_path / "000001.mp4"  # the file has no frames: a still 960x540 background of its length
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25, (960, 540))
    for _ in range(frames):
        writer.write(np.full((540, 960, 3), 90, np.uint8))
    writer.release()
    result = _cli("track", str(truth), "--video", str(video), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    tracked = json.loads((tmp_path / "out" / "000001.tracks.json").read_text())
    position = {im["id"]: i for i, im in enumerate(doc["images"])}
    names = doc["categories"][0]["keypoints"]
    labelled = [a for a in doc["annotations"] if any(np.reshape(a["keypoints"], (-1, 3))[:, 2] > 0)]
    assert len(tracked["annotations"]) == len(labelled)
    ours = {(a["image_id"], round(a["keypoints"][3 * COCO_KEYPOINTS.index("left_shoulder")], 2)): a
            for a in tracked["annotations"]}
    same_person: dict[int, set[int]] = {}
    for a in labelled:
        xyv = np.reshape(a["keypoints"], (-1, 3))
        shoulder = xyv[names.index("left_shoulder")]
        mine = ours[position[a["image_id"]], round(float(shoulder[0]), 2)]  # the same frame, the same person
        got = np.reshape(mine["keypoints"], (17, 3))
        for j, name in enumerate(COCO_KEYPOINTS):
            k = names.index(name) if name in names else None
            given = k is not None and xyv[k, 2] > 0
            assert mine["keypoint_scores"][j] == (1.0 if given else 0.0), (name, xyv[k] if k is not None else None)
            if given:
                np.testing.assert_allclose(got[j, :2], xyv[k, :2], atol=0.011)
        same_person.setdefault(a["track_id"], set()).add(mine["track_id"])
    assert all(len(ids) == 1 for ids in same_person.values()), same_person  # each person keeps one id
    assert len({next(iter(ids)) for ids in same_person.values()}) == len(same_person)


@pytest.mark.parametrize("table", ["exports/mot/walk.tracks.txt", "walk.tracks.csv"])
def test_evaluate_says_which_file_to_score_instead_of_a_mot_or_csv_file(table: str, tracked: dict) -> None:
    base = tracked["root"] / "base"
    result = _cli("evaluate", str(base / "walk.tracks.json"), str(base / table), "--metric", "mot")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"posetrack: error: {base / table} is not a JSON sequence file; if it is "
        + ("MOTChallenge boxes (posetrack's mot export), which MOTChallenge's tools (TrackEval, motmetrics) score"
           if table.endswith(".txt") else "posetrack's CSV")
        + ", evaluate the posetrack JSON it was written from (OUT/<name>.json)"]
