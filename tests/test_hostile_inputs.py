"""Hostile inputs: a track id of 1.5, JSON nested 200,000 deep, a coordinate of 1e300, fields of the
wrong type, file names at the file system's limit. Each is one ``posetrack: error:`` line on stderr
and a non-zero exit (never a traceback or an "internal error"), the user's files stay as they were,
nothing is left half-written, and what is written is strict JSON."""

from __future__ import annotations

import copy
import fcntl
import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from click.testing import CliRunner

from posetrack_cli.cli import main
from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.files import OutputLock, atomic_write, fitted_name, name_max, stale_temp_files, temp_path
from posetrack_cli.core.keypoints import COCO_KEYPOINTS
from posetrack_cli.core.types import Frame, Poses, TrackedFrame
from posetrack_cli.io.coco_results import FrameSpace, load_poses
from posetrack_cli.io.exports import write_exports
from posetrack_cli.io.formats import MAX_COORDINATE, read_coco_predictions, read_sequence
from posetrack_cli.io.interop import poses_from_coco_results, poses_from_ultralytics
from posetrack_cli.io.outputs import JsonWriter, OutputSet, document_to_frames

from helpers import walkers, write_track_document, write_video

DEEP = 200_000
SPACE = FrameSpace(Path("clip.mp4"), width=320, height=240, frame_count=6)


# ---------------------------------------------------------------------------------------------- inputs


def _tracked(frames: int = 3) -> list[TrackedFrame]:
    """Two people (ids 0 and 1) in each of ``frames`` frames, inside a 320x240 frame."""
    out = []
    for t in range(frames):
        kps = np.stack([np.stack([np.full(17, x0 + 4.0 * t), 40 + 10.0 * np.arange(17) % 170], 1) for x0 in (60, 200)])
        kps[:, :, 0] += np.arange(17) % 3
        boxes = np.concatenate([kps.min(1) - 5, kps.max(1) + 5], 1)
        out.append(TrackedFrame(t, t / 25, Poses(kps, np.full((2, 17), 0.9), boxes, [0.9, 0.8]), [0, 1]))
    return out


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """posetrack's JSON of two people in three frames, as ``posetrack run`` writes it."""
    folder = tmp_path_factory.mktemp("doc")
    return write_track_document(folder, "clip", _tracked(), [(320, 240, None)] * 3, COCO_KEYPOINTS,
                                {"source": "clip.mp4", "settings": {"keypoint_threshold": 0.4},
                                 "stage_seconds": {"decode": 0.1}, "models": {"flow": "farneback"}})


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", walkers(frames=6))


def pose(frame: int, x: float = 100.0, y: float = 80.0) -> dict:
    """A COCO-results person of 17 keypoints on a grid around (x, y), each scored 0.8."""
    flat: list[float] = []
    for j in range(17):
        flat += [x + 4 * (j % 4), y + 6 * (j // 4), 0.8]
    return {"image_id": frame, "category_id": 1, "keypoints": flat, "score": 0.9}


def changed(document: dict, change: Callable[[dict], Any]) -> dict:
    doc = copy.deepcopy(document)
    change(doc)
    return doc


def put(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return path


def cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def one_error(result: Any, *phrases: str) -> str:
    """The one stderr line of a refused command: ``posetrack: error: ...``, exit 1, no traceback."""
    assert result.exit_code == 1, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("posetrack: error: "), result.stderr
    assert "internal error" not in lines[0] and "Traceback" not in result.output, result.output
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    return lines[0]


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def strict_json(path: Path) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{path} holds {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


# ------------------------------------------------------------------ 1. a track id is a JSON integer


@pytest.mark.parametrize(("value", "shown"), [(1.5, "1.5"), (1.0, "1.0"), (True, "true"), ("1", "'1'"),
                                              (-1, "-1"), (None, "null"), ([1], "a list")])
def test_export_refuses_a_track_id_that_is_not_an_integer(document: dict, tmp_path: Path, value: Any,
                                                          shown: str) -> None:
    """1.5 was truncated to 1: two people with id 1 in one frame, exit 0. Now nothing is written."""
    track = put(tmp_path / "clip.json", changed(document, lambda d: d["annotations"][1].update(track_id=value)))
    before = track.read_bytes()
    line = one_error(cli("export", str(track)))
    assert line == (f"posetrack: error: {track} annotation 1: track_id must be an integer from 0, got {shown}")
    assert track.read_bytes() == before and files_under(tmp_path) == ["clip.json"]


def test_report_evaluate_and_track_refuse_a_fractional_track_id(document: dict, clip: Path, tmp_path: Path) -> None:
    track = put(tmp_path / "in" / "clip.json", changed(document, lambda d: d["annotations"][3].update(track_id=1.5)))
    expected = f"{track} annotation 3: track_id must be an integer from 0, got 1.5"
    out = tmp_path / "out"
    one_error(cli("report", str(track), "-o", str(out)), expected)
    good = put(tmp_path / "gt" / "clip.json", document)
    one_error(cli("evaluate", str(good), str(track)), expected)
    one_error(cli("evaluate", str(track), str(good), "--metric", "mot"), expected)
    # `posetrack track` given a posetrack file names it by its file name, as its COCO-results entries
    one_error(cli("track", str(track), "--video", str(clip), "-o", str(out), "--no-progress"),
              "clip.json annotation 3: track_id must be an integer from 0, got 1.5")
    assert not out.exists() and files_under(tmp_path / "in") == ["clip.json"]


def test_the_readers_share_the_track_id_rule(document: dict, tmp_path: Path) -> None:
    bad = changed(document, lambda d: d["annotations"][2].update(track_id=2.5))
    for call in (lambda: document_to_frames(bad, "x.json"), lambda: write_exports(bad, tmp_path, "x", where="x.json")):
        with pytest.raises(PosetrackError, match=r"^x.json annotation 2: track_id must be an integer from 0, got 2.5$"):
            call()
    seventeen = {"annolist": [{"annorect": [{"track_id": [0.5], "x1": [0], "y1": [0], "x2": [9], "y2": [9],
                                             "annopoints": [{"point": [{"id": [0], "x": [5], "y": [5]}]}]}]}]}
    with pytest.raises(PosetrackError, match=r"frame 0, person 0: track_id must be an integer from 0, got 0.5"):
        read_sequence(put(tmp_path / "pt17.json", seventeen))
    assert files_under(tmp_path) == ["pt17.json"]


def test_two_people_with_one_track_id_in_a_frame_are_refused(document: dict, tmp_path: Path) -> None:
    """By the exports and the report; `posetrack track` gives ids afresh and reads any (whole ids)."""
    doc = changed(document, lambda d: d["annotations"][1].update(track_id=0))
    track = put(tmp_path / "clip.json", doc)
    for command in ("export", "report"):
        one_error(cli(command, str(track)),
                  f"{track} annotation 1: track_id 0 is also annotation 0's in the same image (0)")
    assert files_under(tmp_path) == ["clip.json"]
    assert [len(f) for f in document_to_frames(doc, unique_ids=False)[0]] == [2, 2, 2]
    assert sorted(load_poses(track, SPACE)) == [0, 1, 2]


# --------------------------------------------------------------------------- 2. JSON nested too deeply


def _deep(path: Path) -> Path:
    return put(path, "[" * DEEP + "]" * DEEP)


@pytest.mark.parametrize("command", ["export", "report", "evaluate", "evaluate-coco", "track"])
def test_json_nested_200000_deep_is_one_line(command: str, document: dict, clip: Path, tmp_path: Path) -> None:
    deep = _deep(tmp_path / "in" / "deep.json")
    good = put(tmp_path / "in" / "good.json", document)
    out = tmp_path / "out"
    args = {"export": ["export", str(deep), "-o", str(out)],
            "report": ["report", str(deep), "-o", str(out)],
            "evaluate": ["evaluate", str(good), str(deep), "--json", str(out / "scores.json")],
            "evaluate-coco": ["evaluate", str(deep), str(good), "--metric", "coco"],
            "track": ["track", str(deep), "--video", str(clip), "-o", str(out), "--no-progress"]}[command]
    line = one_error(cli(*args))  # `track` puts the video it was for first
    assert line.endswith(f" {deep} is nested too deeply to be a posetrack, PoseTrack or COCO file")
    assert not out.exists() and files_under(tmp_path / "in") == ["deep.json", "good.json"]


def test_a_deeply_nested_file_at_an_export_path_is_not_replaced(document: dict, tmp_path: Path) -> None:
    track = put(tmp_path / "clip.json", document)
    theirs = _deep(tmp_path / "coco" / "clip.json")
    before = theirs.read_bytes()
    one_error(cli("export", str(track), "--format", "coco"), f"{theirs} exists and posetrack did not write it")
    assert theirs.read_bytes() == before and files_under(tmp_path) == ["clip.json", "coco", "coco/clip.json"]


# ---------------------------------------------------------------------- 3. numbers that would overflow


@pytest.mark.parametrize(("change", "phrase"), [
    (lambda p: p["keypoints"].__setitem__(0, 1e300),
     "entry 1: keypoints [x, y, v] * 17 holds 1e+300 at position 0, beyond ±1,000,000 (no frame is that large)"),
    (lambda p: p["keypoints"].__setitem__(4, -2_000_000), "keypoints [x, y, v] * 17 holds -2000000 at position 4"),
    (lambda p: p["keypoints"].__setitem__(3, 10**400),
     "holds an integer of 401 digits at position 3, beyond ±1,000,000"),
    (lambda p: p.update(bbox=[10, 10, 1e300, 50]), "entry 1: bbox [x, y, w, h] holds 1e+300 at position 2, beyond"),
])
def test_track_refuses_absurd_coordinates(change: Callable[[dict], Any], phrase: str, clip: Path,
                                          tmp_path: Path) -> None:
    """A keypoint x of 1e300 (finite, so accepted) overflowed to inf in the box and area arithmetic
    and failed the strict JSON writer. Now it is refused where it enters."""
    bad = pose(3)
    change(bad)
    poses = put(tmp_path / "poses.json", [pose(0), bad])
    out = tmp_path / "out"
    line = one_error(cli("track", str(poses), "--video", str(clip), "-o", str(out), "--no-progress"))
    assert f"poses.json {phrase}" in line if phrase.startswith("entry") else phrase in line
    assert not out.exists() and files_under(tmp_path) == ["poses.json"]


def test_coordinates_up_to_the_bound_are_taken_and_a_pose_out_there_is_dropped(tmp_path: Path) -> None:
    """The bound is far past any frame: a pose at -1,000,000 is a pose outside the frame, dropped
    with the usual warning; its box arithmetic stays finite."""
    seen: list[str] = []
    far = pose(1, x=-MAX_COORDINATE, y=-MAX_COORDINATE)
    far["bbox"] = [-999_000.0, -5.0, MAX_COORDINATE, 10.0]  # reaches into the frame: kept, clipped
    by_frame = load_poses(put(tmp_path / "p.json", [pose(0), far, pose(2, x=-MAX_COORDINATE)]), SPACE,
                          warn=seen.append)
    assert sorted(by_frame) == [0, 1] and np.isfinite(by_frame[1].boxes).all()  # the wide box reaches the frame
    assert seen == ["p.json: dropped 1 poses whose box is lying wholly outside the 320x240 frame (first: entry 2)"]


@pytest.mark.parametrize("command", ["export", "report"])
def test_exports_and_report_refuse_absurd_numbers_in_a_track_file(command: str, document: dict,
                                                                  tmp_path: Path) -> None:
    track = put(tmp_path / "clip.json",
                changed(document, lambda d: d["annotations"][4]["keypoints"].__setitem__(0, 1e300)))
    one_error(cli(command, str(track)),
              f"{track} annotation 4: keypoints holds 1e+300 at position 0, beyond ±1,000,000")
    big_box = put(tmp_path / "box.json",
                  changed(document, lambda d: d["annotations"][0]["bbox"].__setitem__(2, 1e308)))
    one_error(cli(command, str(big_box)), f"{big_box} annotation 0: bbox [x, y, w, h] holds 1e+308 at position 2")
    assert files_under(tmp_path) == ["box.json", "clip.json"]


def test_the_in_memory_readers_follow_the_same_rule() -> None:
    entry = pose(0)
    entry["keypoints"][1] = 5e6
    with pytest.raises(PosetrackError, match=r"^COCO results entry 0: keypoints \[x, y, v\] \* 17 holds 5000000.0 at "
                                             r"position 1, beyond ±1,000,000 \(no frame is that large\)$"):
        poses_from_coco_results([entry])
    xy = np.full((1, 17, 2), 50.0, np.float32)
    xy[0, 5, 0] = 3e6
    result = type("R", (), {"keypoints": type("K", (), {"xy": xy, "conf": None})(), "boxes": None})()
    with pytest.raises(PosetrackError, match=r"keypoints xy of person 0's left_shoulder is 3e\+06, beyond ±1,000,000"):
        poses_from_ultralytics(result)


def test_evaluate_refuses_absurd_numbers_and_wrong_types(document: dict, tmp_path: Path) -> None:
    good = put(tmp_path / "gt" / "clip.json", document)
    huge = put(tmp_path / "a" / "clip.json",
               changed(document, lambda d: d["annotations"][0]["keypoints"].__setitem__(1, 1e300)))
    one_error(cli("evaluate", str(good), str(huge)), f"{huge} annotation 0: keypoints holds 1e+300 at position 1")
    seventeen = {"annolist": [{"annorect": [{"track_id": [0], "x1": [0], "y1": [0], "x2": [9], "y2": [9],
                                             "annopoints": [{"point": [{"id": [0], "x": ["5"], "y": [5]}]}]}]}]}
    one_error(cli("evaluate", str(put(tmp_path / "b" / "s.json", seventeen)), str(good)),
              "frame 0, person 0: x must be a number, got '5'")
    results = put(tmp_path / "c" / "r.json", [{"image_id": 0, "category_id": 1, "keypoints": [1e300] * 51, "score": 1}])
    coco_gt = {"images": [{"id": 0}], "categories": [{"id": 1, "keypoints": list(COCO_KEYPOINTS)}],
               "annotations": [{"id": 1, "image_id": 0, "category_id": 1, "keypoints": [5] * 51, "num_keypoints": 17,
                                "area": 100, "bbox": [0, 0, 10, 10], "iscrowd": 0}]}
    gt = put(tmp_path / "c" / "gt.json", coco_gt)
    one_error(cli("evaluate", str(gt), str(results), "--metric", "coco"), f"{results} result 0: keypoints holds 1e+300")
    with pytest.raises(PosetrackError, match="annotation 0: area must be a number, got 'big'"):
        read_coco_predictions(put(tmp_path / "c" / "gt2.json", changed(coco_gt, lambda d: d["annotations"][0]
                                                                          .update(area="big"))), results)


# -------------------------------------------------------------------------- 4. fields of the wrong type


WRONG_SHAPES: list[tuple[str, Callable[[dict], Any], str]] = [
    ("info-string", lambda d: d.update(info="x"), ": info must be an object, got 'x'"),
    ("images-object", lambda d: d.update(images={}), ": images must be a list, got an object"),
    ("annotations-string", lambda d: d.update(annotations="none"), ": annotations must be a list, got 'none'"),
    ("categories-object", lambda d: d.update(categories={"keypoints": []}),
     ": categories must be a list, got an object"),
    ("no-keypoint-names", lambda d: d["categories"][0].update(keypoints="nose"),
     ": categories must begin with the person category, whose 'keypoints' is the list of keypoint names"),
    ("annotation-list", lambda d: d["annotations"].__setitem__(2, [1, 2]),
     " annotation 2 must be an object, got a list"),
    ("image-string", lambda d: d["images"].__setitem__(1, "frame"), " image 1 must be an object, got 'frame'"),
    ("short-keypoints", lambda d: d["annotations"][1].update(keypoints=[1.0, 2.0, 1] * 16),
     " annotation 1 has 16 keypoints; the category names 17"),
    ("keypoints-string", lambda d: d["annotations"][1].update(keypoints="1,2,3"),
     " annotation 1: keypoints must be a list of 51 numbers ([x, y, v] for each of the 17 keypoints the category "
     "names), got '1,2,3'"),
    ("keypoints-50", lambda d: d["annotations"][1]["keypoints"].pop(),
     " annotation 1: keypoints has 50 numbers, not [x, y, v] for each of the 17 keypoints the category names"),
    ("keypoint-string", lambda d: d["annotations"][1]["keypoints"].__setitem__(7, "7"),
     " annotation 1: keypoints must be a list of numbers; position 7 is '7'"),
    ("bbox-short", lambda d: d["annotations"][0].update(bbox=[1, 2, 3]),
     " annotation 0: bbox [x, y, w, h] must have 4 numbers, got 3"),
    ("no-bbox", lambda d: d["annotations"][0].pop("bbox"), " annotation 0 has no bbox"),
    ("score-string", lambda d: d["annotations"][0].update(score="high"),
     " annotation 0: score must be a number, got 'high'"),
    ("score-above-1", lambda d: d["annotations"][0].update(score=7),
     " annotation 0: score is 7; it must be a number in [0, 1]"),
    ("keypoint-scores-null", lambda d: d["annotations"][0].update(keypoint_scores=None),
     " annotation 0: keypoint_scores must be a list of numbers, got null"),
    ("unknown-image", lambda d: d["annotations"][0].update(image_id=99),
     " annotation 0: image_id 99 is not the id of any image in 'images'"),
    ("source-list", lambda d: d["info"].update(source=["a"]), ": info.source must be a string, got a list"),
    ("settings-string", lambda d: d["info"].update(settings="fast"), ": info.settings must be an object, got 'fast'"),
    ("threshold-string", lambda d: d["info"]["settings"].update(keypoint_threshold="0.4"),
     ": info.settings.keypoint_threshold must be a number, got '0.4'"),
    ("stage-seconds-huge", lambda d: d["info"]["stage_seconds"].update(decode=1e308),
     ": info.stage_seconds.decode is 1e+308; it must be a number in [0, 1e+09]"),
    ("models-list", lambda d: d["info"].update(models=[1]),
     ": info.models must be an object of model names, got a list"),
]


@pytest.mark.parametrize(("change", "tail"), [(c, t) for _, c, t in WRONG_SHAPES], ids=[n for n, _, _ in WRONG_SHAPES])
def test_a_field_of_the_wrong_type_is_one_line_naming_it(change: Callable[[dict], Any], tail: str, document: dict,
                                                         tmp_path: Path) -> None:
    """`info` as a string was an AttributeError; every field the readers use is checked, by one check."""
    track = put(tmp_path / "clip.json", changed(document, change))
    before = track.read_bytes()
    assert one_error(cli("export", str(track))) == f"posetrack: error: {track}{tail}"
    assert one_error(cli("report", str(track))) == f"posetrack: error: {track}{tail}"
    with pytest.raises(PosetrackError) as info:
        document_to_frames(json.loads(before), str(track))
    assert str(info.value) == f"{track}{tail}"
    assert track.read_bytes() == before and files_under(tmp_path) == ["clip.json"]


@pytest.mark.parametrize("value", [[], "text", 3, None])
def test_a_file_that_is_not_a_document_at_all(value: Any, tmp_path: Path) -> None:
    track = put(tmp_path / "clip.json", json.dumps(value))
    line = one_error(cli("export", str(track)))
    assert line.startswith(f"posetrack: error: not a posetrack track file: {track} holds ")
    one_error(cli("report", str(track)), "not a posetrack track file")


def test_evaluate_and_track_refuse_wrong_types_in_one_line(document: dict, clip: Path, tmp_path: Path) -> None:
    good = put(tmp_path / "gt" / "clip.json", document)
    listed = put(tmp_path / "p" / "clip.json", changed(document, lambda d: d["annotations"].__setitem__(0, "person")))
    one_error(cli("evaluate", str(good), str(listed)), f"{listed} annotation 0 must be an object, got 'person'")
    rects = {"annolist": [{"annorect": "everyone"}]}
    one_error(cli("evaluate", str(put(tmp_path / "q" / "clip.json", rects)), str(good)),
              "clip.json, frame 0: annorect must be a list of people, got 'everyone'")
    info = put(tmp_path / "t" / "clip.json", changed(document, lambda d: d.update(info=[1])))
    out = tmp_path / "out"
    one_error(cli("track", str(info), "--video", str(clip), "-o", str(out), "--no-progress"),
              "clip.json: info must be an object, got a list")
    assert not out.exists()


def test_real_posetrack_files_still_read(document: dict, tmp_path: Path, shared_data: Path) -> None:
    """The checks refuse nothing the readers took before: the sample PoseTrack 2018 ground truth and
    posetrack's own output."""
    for path in sorted((shared_data / "tracking_dev").glob("*.json")):
        assert read_sequence(path).frames
    frames, _, names = document_to_frames(document)
    assert names == list(COCO_KEYPOINTS) and [len(f) for f in frames] == [2, 2, 2]
    written = write_exports(document, tmp_path, "clip")
    assert all(strict_json(p) for p in written if p.suffix == ".json")


# ---------------------------------------------------------------- 5. names at the file system's limit


def _long_name(tmp_path: Path, stem: str) -> str:
    """``stem``, checked to fit with ``.mp4`` under the name limit of ``tmp_path``'s file system."""
    assert len(os.fsencode(stem + ".tracks.json")) <= name_max(tmp_path)
    return stem


def test_track_writes_the_outputs_of_an_input_named_236_characters(clip: Path, tmp_path: Path) -> None:
    """The 241-character output name fit, but the temporary name beside it passed 255 bytes:
    "File name too long". Temporary names are shortened; the outputs keep their names."""
    name = _long_name(tmp_path, "v" * 236)
    video = tmp_path / f"{name}.mp4"
    video.write_bytes(clip.read_bytes())
    poses = put(tmp_path / "poses.json", [pose(t) for t in range(6)])
    out = tmp_path / "out"
    result = cli("track", str(poses), "--video", str(video), "-o", str(out), "--no-progress")
    assert result.exit_code == 0 and not result.stderr, result.output
    assert files_under(out) == sorted([f"{name}.tracks.csv", f"{name}.tracks.json", "summary.csv"])
    assert len(strict_json(out / f"{name}.tracks.json")["annotations"]) == 6


@pytest.mark.parametrize("stem", ["p" * 236, "é" * 118, "人" * 78 + "ab"], ids=["ascii", "two-byte", "three-byte"])
def test_the_writers_fit_their_temporary_names_under_the_limit(stem: str, tmp_path: Path) -> None:
    """The writers of ``posetrack run`` (JSON, CSV, overlay) on a name of 236 bytes or more, counted
    in bytes of the file system's encoding, not characters."""
    limit = name_max(tmp_path)
    temp = f".{stem}.json.4194304-0123abcd.annotations.partial"  # the temporary name it had
    assert len(os.fsencode(stem + ".json")) <= limit < len(os.fsencode(temp))
    outputs = OutputSet(tmp_path, stem, render=True)
    writers = outputs.open(COCO_KEYPOINTS, fps=10.0, draw=lambda image, tracked: image)
    with writers:
        for tracked in _tracked():
            writers.add(Frame(tracked.frame_index, tracked.timestamp, np.zeros((48, 64, 3), np.uint8)), tracked)
        temps = [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # each writer's parts
        assert len(temps) >= 3 and all(len(os.fsencode(p.name)) <= limit for p in temps)
        assert sorted(stale_temp_files(outputs.paths().values())) == sorted(temps)  # still recognised as ours
        writers.commit({"command": "run", "frames": 3})
    assert files_under(tmp_path) == sorted(f"{stem}.{kind}" for kind in ("csv", "json", "mp4"))
    assert len(strict_json(tmp_path / f"{stem}.json")["annotations"]) == 6
    with atomic_write(tmp_path / f"{stem}.json") as f:  # atomic_write's temporary name fits too
        f.write("{}")
    assert files_under(tmp_path) == sorted(f"{stem}.{kind}" for kind in ("csv", "json", "mp4"))


def test_stale_temporary_files_of_a_long_name_are_found_and_no_other(tmp_path: Path) -> None:
    long, other = tmp_path / ("a" * 240 + ".json"), tmp_path / ("a" * 240 + ".csv")
    killed = JsonWriter(long, COCO_KEYPOINTS, 0.4)  # a killed process's temporary files: never aborted
    open(killed.temp, "w").close()
    left = sorted(tmp_path.iterdir())
    assert len(left) >= 2 and all(len(os.fsencode(p.name)) <= name_max(tmp_path) for p in left)
    elsewhere = temp_path(other)
    open(elsewhere, "w").close()
    assert sorted(stale_temp_files([long])) == left
    assert stale_temp_files([other]) == [elsewhere]
    assert stale_temp_files([tmp_path / "clip.json"]) == []
    assert fitted_name(long.name, 200) != fitted_name(other.name, 200)  # same prefix, told apart by the digest
    killed.abort()


@pytest.mark.parametrize("name", ["l" * 250, "ü" * 125, "x" * 255], ids=["250-bytes", "250-bytes-utf8", "255-bytes"])
def test_the_lock_of_a_long_output_name_works(name: str, tmp_path: Path) -> None:
    lock = OutputLock(tmp_path, name)
    assert len(os.fsencode(lock.path.name)) <= name_max(tmp_path)
    assert lock.acquire(wait=False)
    try:
        assert lock.path.exists()
        # another open file of the same lock cannot take it (flock locks per open file)
        assert not OutputLock(tmp_path, name).acquire(wait=False)
        fd = os.open(lock.path, os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)
    finally:
        lock.release()
    assert not lock.path.exists() and OutputLock(tmp_path, "clip").path.name == ".clip.lock"  # short names as before
