"""COCO-results input (poses for ``posetrack track``, boxes for ``--detections``): numbers are
checked where they enter, boxes are clipped to the frame, frame references are checked before
any work. Each bad file is one stderr line naming the file and the entry, and nothing is written."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from posetrack_cli.cli import main
from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.io.coco_results import FileDetections, FrameSpace, check_input, load_poses
from posetrack_cli.run.pipeline import Pipeline

from helpers import FAST, walkers, write_video

SPACE = FrameSpace(Path("clip.mp4"), width=320, height=240, frame_count=6)


def box(frame: int, bbox: list[float], score: float = 0.9, **extra: object) -> dict:
    return {"image_id": frame, "category_id": 1, "bbox": bbox, "score": score, **extra}


def pose(frame: int, x: float = 100.0, y: float = 80.0, score: float = 0.9, **extra: object) -> dict:
    """A person of 17 keypoints on a 4-pixel grid around (x, y), each scored 0.8."""
    flat: list[float] = []
    for j in range(17):
        flat += [x + 4 * (j % 4), y + 6 * (j // 4), 0.8]
    return {"image_id": frame, "category_id": 1, "keypoints": flat, "score": score, **extra}


def write(tmp_path: Path, entries: object, name: str = "in.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(entries))  # json writes NaN and Infinity as Python's json reads them
    return path


def messages() -> tuple[list[str], object]:
    seen: list[str] = []
    return seen, seen.append


@pytest.mark.parametrize(("entry", "phrase"), [
    (box(0, [math.nan, 10, 50, 50]), "bbox [x, y, w, h] holds nan at position 0"),
    (box(0, [10, 10, math.inf, 50]), "holds inf at position 2"),
    (box(0, [10, 10, -40, 50]), "has no size"),
    (box(0, [10, 10, 50, 0]), "has no size"),
    (box(0, [10, 10, 50, 50], score=math.nan), "score nan is not a number in [0, 1]"),
    (box(0, [10, 10, 50, 50], score=1.5), "score 1.5 is not a number in [0, 1]"),
    (box(0, ["10", 10, 50, 50]), "bbox [x, y, w, h] must be a list of numbers"),
    (box(6, [10, 10, 50, 50]), "image_id 6 refers to frame 6, but clip.mp4 has 6 frames (0 to 5)"),
    (box(-1, [10, 10, 50, 50]), "negative"),
])
def test_bad_boxes_name_the_file_and_entry(entry: dict, phrase: str, tmp_path: Path) -> None:
    path = write(tmp_path, [box(0, [1, 1, 20, 20]), entry])
    with pytest.raises(PosetrackError) as info:
        FileDetections(path, SPACE)
    message = str(info.value)
    assert message.startswith("in.json entry 1") and phrase in message and "\n" not in message


def test_boxes_are_clipped_and_those_outside_dropped_with_one_warning(tmp_path: Path) -> None:
    path = write(tmp_path, [
        box(0, [-20, -10, 100, 100]),  # reaches over the top-left corner: clipped
        box(0, [-500, -500, 400, 450]),  # wholly outside: dropped
        box(1, [400, 10, 50, 50]),  # right of the frame: dropped
        box(1, [10, 10, 50, 50], score=0.3),  # below the threshold: left out, not "dropped"
        box(2, [10, 10, 50, 50], category_id=3),  # not a person: ignored
    ])
    seen, warn = messages()
    boxes = FileDetections(path, SPACE, 0.5, warn=warn)
    assert seen == ["in.json: dropped 2 boxes lying wholly outside the 320x240 frame (first: entry 1)"]
    assert boxes.dropped == 2 and boxes.last_frame == 1
    np.testing.assert_allclose(boxes.get(0).boxes, [[0, 0, 80, 90]])
    assert len(boxes.get(1)) == 0 and len(boxes.get(2)) == 0
    boxes.check_decoded(2)
    with pytest.raises(PosetrackError, match="refers to frame 1, but clip.mp4 decoded only 1 frames"):
        boxes.check_decoded(1)


def test_frame_folder_names_and_unknown_counts(tmp_path: Path) -> None:
    folder = FrameSpace(Path("frames"), 320, 240, None, ("img0.png", "img1.png", "img2.png"))
    path = write(tmp_path, [box("img2.png", [1, 1, 9, 9]), box("img1", [1, 1, 9, 9]), box(40, [1, 1, 9, 9])])
    boxes = FileDetections(path, folder)  # frame 40 may exist: the count is not known
    assert len(boxes.get(2)) == len(boxes.get(1)) == len(boxes.get(40)) == 1 and boxes.last_frame == 40
    with pytest.raises(PosetrackError, match="no frame named 'img9.png'"):
        FileDetections(write(tmp_path, [box("img9.png", [1, 1, 9, 9])]), folder)
    with pytest.raises(PosetrackError, match="is a file name, but clip.mp4 is not a frame folder"):
        FileDetections(write(tmp_path, [box("img1.png", [1, 1, 9, 9])]), SPACE)


@pytest.mark.parametrize(("change", "phrase"), [
    (lambda p: p["keypoints"].__setitem__(4, math.nan), "keypoints [x, y, v] * 17 holds nan at position 4"),
    (lambda p: p["keypoints"].__setitem__(0, -math.inf), "holds -inf at position 0"),
    (lambda p: p["keypoints"].__setitem__(5, 2.0), "keypoint score (the v of [x, y, v]) of left_eye is 2"),
    (lambda p: p.update(keypoint_scores=[0.5] * 16 + [math.nan]), "keypoint_scores holds nan at position 16"),
    (lambda p: p.update(keypoint_scores=[0.5] * 16 + [-0.1]), "keypoint_scores of right_ankle is -0.1"),
    (lambda p: p.update(score=math.inf), "score inf is not a number in [0, 1]"),
    (lambda p: p.update(bbox=[0, 0, 0, 10]), "has no size"),
    (lambda p: p.update(image_id=999), "image_id 999 refers to frame 999, but clip.mp4 has 6 frames"),
    (lambda p: p.update(keypoints=[1.0, 2.0, 1.0] * 16), "16 keypoints, expected 17"),
])
def test_bad_poses_name_the_file_and_entry(change: object, phrase: str, tmp_path: Path) -> None:
    bad = pose(1)
    change(bad)  # type: ignore[operator]
    with pytest.raises(PosetrackError) as info:
        load_poses(write(tmp_path, [pose(0), bad]), SPACE)
    message = str(info.value)
    assert message.startswith("in.json entry 1") and phrase in message and "\n" not in message


def test_pose_boxes_are_clipped_and_poses_outside_dropped(tmp_path: Path) -> None:
    entries = [pose(0, bbox=[-30, 50, 100, 100]), pose(0, x=-300, y=-300), pose(1, bbox=[500, 10, 20, 20]), pose(2)]
    seen, warn = messages()
    by_frame = load_poses(write(tmp_path, entries), SPACE, warn=warn)
    assert seen == ["in.json: dropped 2 poses whose box is lying wholly outside the 320x240 frame (first: entry 1)"]
    assert sorted(by_frame) == [0, 2] and len(by_frame[0]) == 1
    np.testing.assert_allclose(by_frame[0].boxes, [[0, 50, 70, 150]])
    np.testing.assert_allclose(by_frame[2].boxes, [[100, 80, 112, 104]])  # the box of the keypoints


def test_posetrack_track_files_are_checked_too(tmp_path: Path) -> None:
    doc = {"images": [{"id": 0, "frame_id": 0}], "categories": [{"keypoints": list(_names())}],
           "annotations": [{"image_id": 0, "track_id": 0, "bbox": [10, 10, 50, 50], "score": 0.9,
                            "keypoints": pose(0)["keypoints"], "keypoint_scores": [0.5] * 16 + [math.nan]}]}
    with pytest.raises(PosetrackError, match="in.json annotation 0: keypoint_scores holds nan at position 16; "
                                                "every number must be finite"):
        load_poses(write(tmp_path, doc), SPACE)


def _names() -> tuple[str, ...]:
    from posetrack_cli.core.keypoints import COCO_KEYPOINTS

    return COCO_KEYPOINTS


def one_line(stderr: str, word: str = "error") -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"posetrack: {word}:") and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_video(tmp_path / "clip.mp4", walkers(frames=6))


def test_track_with_nan_keypoints_is_one_line_and_writes_nothing(clip: Path, tmp_path: Path) -> None:
    bad = pose(3)
    bad["keypoints"][7] = math.nan
    poses = write(tmp_path, [pose(0), bad], "poses.json")
    before = poses.read_bytes()
    result = CliRunner().invoke(main, ["track", str(poses), "--video", str(clip), "-o", str(tmp_path / "out"),
                                       "--no-progress"])
    assert result.exit_code == 1
    assert "poses.json entry 1: keypoints [x, y, v] * 17 holds nan at position 7" in one_line(result.stderr)
    assert poses.read_bytes() == before and not (tmp_path / "out").exists()


def test_track_drops_poses_outside_the_frame_with_one_warning(clip: Path, tmp_path: Path) -> None:
    entries = [pose(t) for t in range(6)] + [pose(t, x=-900, y=-900) for t in range(6)]
    poses = write(tmp_path, entries, "poses.json")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["track", str(poses), "--video", str(clip), "-o", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert one_line(result.stderr, "warning") == (
        "posetrack: warning: poses.json: dropped 6 poses whose box is lying wholly outside the 320x240 frame "
        "(first: entry 6)")
    doc = json.loads((out / "clip.tracks.json").read_text())
    assert [a["image_id"] for a in doc["annotations"]] == list(range(6))  # the six poses inside are kept
    assert all(a["bbox"][0] >= 0 and a["bbox"][1] >= 0 for a in doc["annotations"])


def test_run_detections_naming_a_frame_past_the_end_fails_before_processing(
        weights_folder: Path, clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    boxes = write(tmp_path, [box(0, [30, 15, 60, 130]), box(999, [30, 15, 60, 130])], "boxes.json")
    processed: list[Path] = []
    real = Pipeline.run
    monkeypatch.setattr(Pipeline, "run",
                        lambda self, source, *a, **k: processed.append(source.path) or real(self, source, *a, **k))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(clip), "-o", str(out), "--detections", str(boxes), *FAST])
    assert result.exit_code == 1
    line = one_line(result.stderr)
    assert "boxes.json entry 1: image_id 999 refers to frame 999, but" in line and "has 6 frames (0 to 5)" in line
    assert processed == []  # refused before a single frame was decoded for the models
    assert not (out / "clip.json").exists() and not (out / "clip.csv").exists() and not list(out.glob(".*partial*"))


def test_run_detections_with_nan_and_outside_boxes(weights_folder: Path, clip: Path, tmp_path: Path) -> None:
    bad = write(tmp_path, [box(0, [30, 15, 60, 130]), box(2, [30, math.nan, 60, 130])], "bad.json")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(clip), "-o", str(out), "--detections", str(bad), *FAST])
    assert result.exit_code == 1
    assert "bad.json entry 1: bbox [x, y, w, h] holds nan at position 1" in one_line(result.stderr)
    assert not (out / "clip.json").exists()
    outside = write(tmp_path, [box(t, [30, 15, 60, 130]) for t in range(6)] + [box(1, [-500, -500, 400, 450])],
                    "outside.json")
    result = CliRunner().invoke(main, ["run", str(clip), "-o", str(out), "--detections", str(outside), *FAST])
    assert result.exit_code == 0, result.output
    assert one_line(result.stderr, "warning").endswith("outside.json: dropped 1 boxes lying wholly outside the "
                                                       "320x240 frame (first: entry 6)")
    doc = json.loads((out / "clip.json").read_text())
    for ann in doc["annotations"]:
        x, y, w, h = ann["bbox"]
        assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= 320 and y + h <= 240


def test_check_input_runs_every_check_without_models(clip: Path, tmp_path: Path) -> None:
    space = check_input(clip, detections=write(tmp_path, [box(5, [1, 1, 9, 9])], "ok.json"))
    assert (space.width, space.height, space.frame_count) == (320, 240, 6)
    with pytest.raises(PosetrackError, match="image_id 6 refers to frame 6"):
        check_input(clip, poses=write(tmp_path, [pose(6)], "late.json"))
    with pytest.raises(PosetrackError, match="no such file"):
        check_input(tmp_path / "gone.mp4", poses=write(tmp_path, [pose(0)], "p.json"))


def test_non_json_constants_are_named_by_entry_or_refused_as_invalid_json(tmp_path: Path) -> None:
    # NaN written as JSON's missing literal: the entry check names it before the strict parser's verdict
    path = tmp_path / "nan.json"
    path.write_text('[{"image_id": 0, "bbox": [1, 2, 3, 4], "score": 0.9}, {"image_id": 0, "bbox": [1, NaN, 3, 4]}]')
    with pytest.raises(PosetrackError, match=r"nan.json entry 1: bbox \[x, y, w, h\] holds nan at position 1"):
        FileDetections(path, SPACE)
    # a number too large for a float parses as infinity
    path.write_text('[{"image_id": 0, "bbox": [1, 2, 1e999, 4]}]')
    with pytest.raises(PosetrackError, match="entry 0: bbox .* holds inf at position 2"):
        FileDetections(path, SPACE)
    # a constant where no check looks is still refused: the file is not JSON
    path.write_text('[{"image_id": 0, "bbox": [1, 2, 3, 4], "area": Infinity}]')
    with pytest.raises(PosetrackError, match="nan.json is not valid JSON"):
        FileDetections(path, SPACE)


def test_mot_files_give_boxes_ground_truth_classes_kept_apart(tmp_path: Path) -> None:
    """MOTChallenge boxes for --detections: frames and x, y counted from 1; a ground-truth file's
    rows of another class (2: a person on a vehicle) are not people; its consider flag 0 scores 0."""
    path = tmp_path / "gt.txt"
    path.write_text("1,1,11.00,21.00,30.00,60.00,0.9000,-1,-1,-1\n"  # posetrack's export: a person in frame 0
                    "2,1,101,21,30,60,1,1,1.0\n"  # MOT17 ground truth: pedestrian, considered
                    "2,2,151,21,30,60,1,2,1.0\n"  # another class: not a person
                    "3,3,51,21,30,60,0,1,1.0\n")  # not considered: score 0, below any threshold but 0
    found = FileDetections(path, SPACE, 0.5)
    assert found.get(0).boxes.tolist() == [[10.0, 20.0, 40.0, 80.0]]
    assert found.get(0).scores.tolist() == pytest.approx([0.9])
    assert found.get(1).boxes.tolist() == [[100.0, 20.0, 130.0, 80.0]]
    assert len(found.get(2)) == 0 and found.last_frame == 2
    path.write_text("1,1,11,21,30,60,0.9,-1,-1,-1\n2,1,11,21,30,sixty,0.9,-1,-1,-1\n")
    with pytest.raises(PosetrackError, match="gt.txt line 2 is not a MOTChallenge line of numbers"):
        FileDetections(path, SPACE, 0.5)
    path.write_text("1,1,11,21,30,60,35.2,-1,-1,-1\n")  # a detector's raw confidence
    with pytest.raises(PosetrackError, match=r"gt.txt line 1: score 35.2 is not a number in \[0, 1\]"):
        FileDetections(path, SPACE, 0.5)
