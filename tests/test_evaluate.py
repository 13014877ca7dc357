"""Evaluation: COCO keypoint AP through pycocotools, PoseTrack mAP / MOTA, formats and the CLI.

Expected numbers are worked out by hand in each test from the definitions the metrics use.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from posetrack_cli.cli import main
from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.keypoints import COCO_KEYPOINTS, COCO_SIGMAS
from posetrack_cli.core.types import Poses, TrackedFrame
from posetrack_cli.evaluation.coco import coco_keypoint_ap
from posetrack_cli.evaluation.posetrack import (
    PoseTrackMetrics,
    assign_people,
    average_precision,
    evaluate_posetrack,
    inside_polygons,
)
from posetrack_cli.io.formats import POSETRACK17_JOINTS, read_sequence, read_sequences

from helpers import write_track_document

# --------------------------------------------------------------------------------------------- COCO


def _coco_results(gt: dict) -> list[dict]:
    """The ground truth as COCO results: every annotation with keypoints, score 1."""
    return [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": list(a["keypoints"]), "score": 1.0}
        for a in gt["annotations"] if a["num_keypoints"] > 0
    ]


def _shift_to_oks(gt: dict, results: list[dict], oks: float) -> list[dict]:
    """Move each result's keypoints right so that its OKS with its own ground truth is exactly ``oks``.

    COCO's OKS averages exp(-d^2 / (2 * area * (2 sigma)^2)) over the labelled joints, so moving
    joint j by d_j = sqrt(2 * area * (2 sigma_j)^2 * ln(1 / oks)) gives every joint, and the pose, ``oks``.
    """
    shifted = []
    for res, ann in zip(results, [a for a in gt["annotations"] if a["num_keypoints"] > 0]):
        assert res["image_id"] == ann["image_id"]
        d = np.sqrt(2 * ann["area"] * (2 * COCO_SIGMAS.astype(float)) ** 2 * math.log(1 / oks))
        kps = np.array(res["keypoints"], float).reshape(17, 3)
        kps[:, 0] += d
        shifted.append({**res, "keypoints": kps.ravel().tolist()})
    return shifted


def test_coco_ap_of_sample_ground_truth_against_itself_is_one(shared_data: Path) -> None:
    gt = json.loads((shared_data / "coco_sample" / "test_coco.json").read_text())
    before = copy.deepcopy(gt)
    stats = coco_keypoint_ap(gt, _coco_results(gt))
    assert list(stats) == ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]
    assert all(v == pytest.approx(1.0) for v in stats.values()), stats
    assert gt == before  # COCOeval writes flags into annotations; the caller's document is untouched


def test_coco_ap_of_sample_with_jittered_keypoints(shared_data: Path) -> None:
    """Every pose moved to OKS 0.78 passes the thresholds 0.50..0.75 and fails 0.80..0.95: AP = 6/10."""
    gt = json.loads((shared_data / "coco_sample" / "test_coco.json").read_text())
    stats = coco_keypoint_ap(gt, _shift_to_oks(gt, _coco_results(gt), 0.78))
    assert stats["AP"] == pytest.approx(0.6) and stats["AR"] == pytest.approx(0.6)
    assert stats["AP50"] == pytest.approx(1.0) and stats["AP75"] == pytest.approx(1.0)


def test_coco_ap_counts_missed_people_and_false_positives() -> None:
    """Two people, one found exactly, plus a confident false pose: precision 1/2 at the top."""
    kps = lambda x0: [v for j in range(17) for v in (x0 + 3.0 * j, 10.0 + 5.0 * j, 2)]  # noqa: E731
    gt = {
        "images": [{"id": 1, "width": 640, "height": 480}],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": [
            {"id": i + 1, "image_id": 1, "category_id": 1, "keypoints": kps(x0), "num_keypoints": 17,
             "area": 100.0 * 100.0, "bbox": [x0, 10.0, 60.0, 90.0], "iscrowd": 0}
            for i, x0 in enumerate((0.0, 300.0))
        ],
    }
    found = {"image_id": 1, "category_id": 1, "keypoints": kps(0.0), "score": 0.5}
    assert coco_keypoint_ap(gt, [found])["AR"] == pytest.approx(0.5)
    # One of two people found: precision 1 up to recall 0.5, nothing beyond: AP = 51 / 101 points.
    assert coco_keypoint_ap(gt, [found])["AP"] == pytest.approx(51 / 101)
    # A false pose scored above the true one: precision 1/2 at recall 0.5, so AP = 51 * 0.5 / 101.
    false = {"image_id": 1, "category_id": 1, "keypoints": kps(500.0), "score": 0.9}
    assert coco_keypoint_ap(gt, [found, false])["AP"] == pytest.approx(51 * 0.5 / 101)
    assert coco_keypoint_ap(gt, [])["AP"] == 0.0


def test_coco_ap_rejects_results_for_unknown_images_and_wrong_keypoint_counts() -> None:
    gt = {"images": [{"id": 1}], "categories": [{"id": 1}], "annotations": []}
    with pytest.raises(PosetrackError, match="image_id 7"):
        coco_keypoint_ap(gt, [{"image_id": 7, "category_id": 1, "keypoints": [0] * 51, "score": 1}])
    with pytest.raises(PosetrackError, match="16 keypoints"):
        coco_keypoint_ap(gt, [{"image_id": 1, "category_id": 1, "keypoints": [0] * 48, "score": 1}])


# ---------------------------------------------------------------------------------------- PoseTrack

PT18_NAMES = (
    "nose", "head_bottom", "head_top", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle",
)
EARS = (3, 4)  # PoseTrack 2018 names the ears but never annotates them: stored as (0, 0, 0)
HEAD_BOX = (30.0, 40.0)  # w, h: diagonal 50, so the head size is 0.6 * 50 = 30 px and PCKh@0.5 is 15 px
HEAD_SIZE = 30.0
T = 5  # frames per sequence; two people each, so 10 annotated instances of every joint


def _person(track_id: int, x0: float, t: int) -> dict:
    """A person at ``x0`` walking right 2 px a frame; every joint annotated except the ears."""
    j = np.arange(17, dtype=float)
    kps = np.stack([x0 + 2 * t + 4 * j, 50 + 10 * j, np.full(17, 2.0)], axis=1)
    kps[list(EARS)] = 0
    return {"track_id": track_id, "kps": kps, "head": [x0 + 2 * t, 20.0, *HEAD_BOX], "scores": np.full(17, 0.9)}


def _scene() -> list[list[dict]]:
    """T frames of two people, track ids 1 (at x 100) and 2 (at x 400)."""
    return [[_person(1, 100.0, t), _person(2, 400.0, t)] for t in range(T)]


def _pt18(frames: list[list[dict]], *, scores: bool = True, ignore: list | None = None) -> dict:
    """A PoseTrack 2018 document of ``frames``; ``ignore`` = per-frame (xs, ys) polygons or None."""
    images, annotations = [], []
    for t, people in enumerate(frames):
        image = {"id": 10000 + t, "file_name": f"images/val/000001_mpii_test/{t:06d}.jpg", "frame_id": 10000 + t}
        if ignore and ignore[t]:
            image["ignore_regions_x"] = [list(ignore[t][0])]
            image["ignore_regions_y"] = [list(ignore[t][1])]
        images.append(image)
        for p in people:
            ann = {"id": len(annotations), "image_id": 10000 + t, "category_id": 1, "track_id": p["track_id"],
                   "bbox_head": list(p["head"]), "keypoints": p["kps"].ravel().tolist()}
            if scores:
                ann["scores"] = p["scores"].tolist()
            annotations.append(ann)
    categories = [{"id": 1, "name": "person", "keypoints": list(PT18_NAMES)}]
    return {"images": images, "annotations": annotations, "categories": categories}


def _pt17(frames: list[list[dict]]) -> dict:
    """The same people as PoseTrack 2017: joint ids 0-14, head box corners, values in lists."""
    annolist = []
    for t, people in enumerate(frames):
        rects = []
        for p in people:
            x, y, w, h = p["head"]
            points = [{"id": [POSETRACK17_JOINTS.index(name)], "x": [p["kps"][i, 0]], "y": [p["kps"][i, 1]],
                       "score": [p["scores"][i]]}
                      for i, name in enumerate(PT18_NAMES) if name in POSETRACK17_JOINTS]
            rects.append({"x1": [x], "y1": [y], "x2": [x + w], "y2": [y + h], "track_id": [p["track_id"]],
                          "annopoints": [{"point": points}]})
        annolist.append({"image": [{"name": f"images/bonn/000001_mpii/{t + 1:08d}.jpg"}], "annorect": rects})
    return {"annolist": annolist}


def _write(folder: Path, name: str, doc: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


def _evaluate(tmp_path: Path, gt_doc: dict, pred_doc: dict) -> PoseTrackMetrics:
    gt = read_sequences(_write(tmp_path / "gt", "seq", gt_doc))
    pred = read_sequences(_write(tmp_path / "pred", "seq", pred_doc))
    return evaluate_posetrack(gt, pred)


def _all(values: np.ndarray, expected: float) -> bool:
    return bool(np.allclose(values, expected))


def test_ground_truth_against_itself_scores_100(tmp_path: Path) -> None:
    m = _evaluate(tmp_path, _pt18(_scene()), _pt18(_scene()))
    assert len(m.joints) == 15 and m.unannotated_joints == ("left_ear", "right_ear")
    assert m.num_frames == T and m.sequences == ("seq",) and _all(m.num_gt, 2 * T)
    for name in ("AP", "MOTA", "MOTP", "Prec", "Rec"):
        assert m.totals[name] == pytest.approx(100.0), name
    assert m.switches.sum() == m.misses.sum() == m.false_positives.sum() == 0


def test_swapping_two_ids_in_one_frame_costs_four_switches_per_joint(tmp_path: Path) -> None:
    """Frame 2 swaps the ids: both people switch there and switch back in frame 3, 4 switches
    per joint over 10 instances: MOTA = 100 * (1 - 4 / 10) = 60, while AP is untouched."""
    pred = _scene()
    pred[2][0]["track_id"], pred[2][1]["track_id"] = 2, 1
    m = _evaluate(tmp_path, _pt18(_scene()), _pt18(pred))
    assert _all(m.switches, 4) and _all(m.mota, 60.0) and m.totals["MOTA"] == pytest.approx(60.0)
    assert m.totals["AP"] == pytest.approx(100.0) and m.totals["Rec"] == pytest.approx(100.0)


def test_swap_in_the_last_frame_counts_too(tmp_path: Path) -> None:
    """Only two switches (nothing to switch back to); poseval would skip the last frame entirely."""
    pred = _scene()
    pred[-1][0]["track_id"], pred[-1][1]["track_id"] = 2, 1
    m = _evaluate(tmp_path, _pt18(_scene()), _pt18(pred))
    assert _all(m.switches, 2) and _all(m.mota, 100 * (1 - 2 / 10))


def test_dropping_a_person_in_one_frame(tmp_path: Path) -> None:
    """One of 10 instances missed per joint: recall 90, MOTA 90, AP 90 (precision stays 1)."""
    pred = _scene()
    del pred[2][1]
    m = _evaluate(tmp_path, _pt18(_scene()), _pt18(pred))
    assert _all(m.misses, 1) and _all(m.mota, 90.0) and _all(m.recall, 90.0) and _all(m.precision, 100.0)
    assert _all(m.ap, 90.0)


def test_a_frame_without_any_prediction_misses_everyone_in_it(tmp_path: Path) -> None:
    """Both people missed in frame 2: 2 misses per joint, MOTA 80 (poseval would book 1 miss + 1 FP)."""
    pred = _scene()
    pred[2] = []
    m = _evaluate(tmp_path, _pt18(_scene()), _pt18(pred))
    assert _all(m.misses, 2) and _all(m.false_positives, 0) and _all(m.mota, 80.0) and _all(m.ap, 80.0)


def test_a_confident_false_person(tmp_path: Path) -> None:
    """A false person in frame 1 scored 1.0, above every true joint (0.9): the ranking starts with a
    false positive, so precision is k / (k + 1) after k hits, and its best, 10 / 11, holds at every
    recall: AP = 100 * 10 / 11. MOTA = 100 * (1 - 1 / 10), precision 100 * 10 / 11."""
    pred = _scene()
    ghost = _person(3, 700.0, 1)
    ghost["scores"] = np.full(17, 1.0)
    pred[1].append(ghost)
    m = _evaluate(tmp_path, _pt18(_scene()), _pt18(pred))
    assert _all(m.false_positives, 1) and _all(m.mota, 90.0)
    assert _all(m.ap, 100 * 10 / 11) and _all(m.precision, 100 * 10 / 11) and _all(m.recall, 100.0)


def test_a_false_person_inside_an_ignore_region_is_not_counted(tmp_path: Path) -> None:
    pred = _scene()
    pred[1].append(_person(3, 700.0, 1))
    box = ([650, 900, 900, 650], [0, 0, 400, 400])  # around the false person only
    gt = _pt18(_scene(), ignore=[None, box, None, None, None])
    m = _evaluate(tmp_path, gt, _pt18(pred))
    assert m.false_positives.sum() == 0 and m.totals["MOTA"] == pytest.approx(100.0)
    assert m.totals["AP"] == pytest.approx(100.0)


def test_jittered_joints(tmp_path: Path) -> None:
    """Every joint moved right by 0.45 head sizes: still within PCKh@0.5, so AP and MOTA stay 100
    while MOTP = 100 * (1 - 0.45) = 55. One left wrist moved 0.55 head sizes instead (score 0.5, the
    lowest): that joint is a false positive and a miss, so for left_wrist MOTA = 100 * (1 - 2 / 10) = 80,
    AP = 90 (nine hits ranked first, then the miss), and MOTP stays 55 over the nine matches."""
    pred = _scene()
    for people in pred:
        for p in people:
            p["kps"][:, 0] += np.where(p["kps"][:, 2] > 0, 0.45 * HEAD_SIZE, 0)
    wrist = PT18_NAMES.index("left_wrist")
    pred[3][0]["kps"][wrist, 0] += (0.55 - 0.45) * HEAD_SIZE
    pred[3][0]["scores"][wrist] = 0.5
    m = _evaluate(tmp_path, _pt18(_scene()), _pt18(pred))
    lw = m.joints.index("left_wrist")
    others = np.arange(len(m.joints)) != lw
    assert _all(m.ap[others], 100.0) and _all(m.mota[others], 100.0) and _all(m.motp, 55.0)
    assert m.mota[lw] == pytest.approx(80.0) and m.ap[lw] == pytest.approx(90.0)
    assert m.misses[lw] == 1 and m.false_positives[lw] == 1


def test_track_ids_belong_to_their_sequence(tmp_path: Path) -> None:
    """Sequence b's tracker numbers the same two people the other way round: still perfect tracking."""
    swapped = _scene()
    for people in swapped:
        people[0]["track_id"], people[1]["track_id"] = 2, 1
    for name, pred in (("a", _scene()), ("b", swapped)):
        _write(tmp_path / "gt", name, _pt18(_scene()))
        _write(tmp_path / "pred", name, _pt18(pred))
    m = evaluate_posetrack(read_sequences(tmp_path / "gt"), read_sequences(tmp_path / "pred"))
    assert m.sequences == ("a", "b") and m.num_frames == 2 * T and _all(m.num_gt, 4 * T)
    assert m.switches.sum() == 0 and m.totals["MOTA"] == pytest.approx(100.0)


def test_both_posetrack_formats_load_to_the_same_people(tmp_path: Path) -> None:
    seq17 = read_sequence(_write(tmp_path / "a", "seq", _pt17(_scene())))
    seq18 = read_sequence(_write(tmp_path / "b", "seq", _pt18(_scene())))
    assert (seq17.format, seq18.format) == ("PoseTrack17", "PoseTrack18")
    assert seq17.keypoint_names == POSETRACK17_JOINTS and seq18.keypoint_names == PT18_NAMES
    order = [PT18_NAMES.index(n) for n in POSETRACK17_JOINTS]
    for f17, f18 in zip(seq17.frames, seq18.frames):
        np.testing.assert_allclose(f17.keypoints, f18.keypoints[:, order])
        np.testing.assert_array_equal(f17.labelled, f18.labelled[:, order])
        np.testing.assert_allclose(f17.head_boxes, f18.head_boxes)
        np.testing.assert_array_equal(f17.track_ids, [1, 2])
    assert not seq18.frames[0].labelled[:, list(EARS)].any()  # (0, 0, 0) is "not annotated"
    # PoseTrack 2017 ground truth against 2018 predictions: joints meet by name.
    m = _evaluate(tmp_path, _pt17(_scene()), _pt18(_scene()))
    assert len(m.joints) == 15 and m.pred_only_joints == ("left_ear", "right_ear") and m.totals["MOTA"] == 100.0


def test_posetrack_output_against_posetrack18_ground_truth(tmp_path: Path) -> None:
    """posetrack's own JSON (COCO names): the 13 joints both name are scored, and the rest listed."""
    coco_from_pt18 = [PT18_NAMES.index(n) if n in PT18_NAMES else 0 for n in COCO_KEYPOINTS]  # eyes: anywhere
    frames = []
    for t, people in enumerate(_scene()):
        kps = np.stack([p["kps"][coco_from_pt18, :2] for p in people])
        boxes = np.array([[0, 0, 10, 10]] * len(people), np.float32)
        poses = Poses(kps, np.full(kps.shape[:2], 0.9), boxes, np.ones(len(people)))
        frames.append(TrackedFrame(t, t / 25, poses, [p["track_id"] for p in people]))
    doc = write_track_document(tmp_path / "written", "seq", frames, [(640, 480, None)] * T, COCO_KEYPOINTS,
                               {"source": "seq.mp4"})
    m = _evaluate(tmp_path, _pt18(_scene()), doc)
    assert read_sequence(tmp_path / "pred" / "seq.json").format == "posetrack"
    assert len(m.joints) == 13 and "head_top" not in m.joints
    assert m.unannotated_joints == ("left_ear", "right_ear")
    assert m.gt_only_joints == ("head_bottom", "head_top") and m.pred_only_joints == ("left_eye", "right_eye")
    assert m.totals["AP"] == pytest.approx(100.0) and m.totals["MOTA"] == pytest.approx(100.0)


def test_assignment_follows_poseval() -> None:
    """Two predictions both best match ground truth 0; ground truth 0 takes the better one, and the
    other stays unassigned though it half-matches ground truth 1 (poseval's rule, not a full matching)."""
    labelled = np.ones((2, 4), bool)
    match = np.zeros((2, 2, 4), bool)
    match[0, 0] = True  # prediction 0: PCKh 1.0 with gt 0
    match[1, 0, :3] = True  # prediction 1: PCKh 0.75 with gt 0 ...
    match[1, 1, :2] = True  # ... and 0.5 with gt 1
    np.testing.assert_array_equal(assign_people(match, labelled), [0, -1])
    assert assign_people(np.zeros((0, 2, 4), bool), labelled).shape == (0,)


def test_average_precision_by_hand() -> None:
    """Ranks: hit, miss, hit with 3 ground truths: precision 1 to recall 1/3, 2/3 to recall 2/3."""
    ap = average_precision(np.array([0.9, 0.8, 0.7]), np.array([True, False, True]), 3)
    assert ap == pytest.approx(1 / 3 * 1 + 1 / 3 * 2 / 3)
    assert math.isnan(average_precision(np.array([0.5]), np.array([False]), 0))


def test_inside_polygons_uses_the_polygon_not_its_box() -> None:
    triangle = np.array([[0, 0], [10, 0], [0, 10]], float)
    points = np.array([[2, 2], [8, 8], [-1, 1], [1, 8]], float)
    np.testing.assert_array_equal(inside_polygons(points, [triangle]), [True, False, False, True])


# ---------------------------------------------------------------------------------------------- CLI


def _cli(*args: str):
    result = CliRunner().invoke(main, ["evaluate", *args])
    assert "Traceback" not in result.output
    return result


def _fails_with(result, *phrases: str) -> None:
    """One line on stderr naming the problem, and a non-zero exit."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("posetrack: error: "), result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


def test_cli_ground_truth_file_against_itself(tmp_path: Path) -> None:
    """The 2018 ground truth has no joint scores; as predictions they rank as ties, as in poseval."""
    gt = _write(tmp_path, "seq", _pt18(_scene(), scores=False))
    out = tmp_path / "reports" / "scores.json"
    result = _cli(str(gt), str(gt), "--json", str(out))
    assert result.exit_code == 0, result.output
    total = next(line for line in result.stdout.splitlines() if line.startswith("total"))
    assert total.split()[1:6] == ["100.0"] * 5  # AP, MOTA, MOTP, Prec, Rec
    assert "named by both, never annotated: left_ear, right_ear" in result.stdout
    assert "have no score" in result.stdout
    doc = json.loads(out.read_text())
    assert doc["total"]["AP"] == 100.0 and doc["total"]["MOTA"] == 100.0
    assert doc["joints"]["left_wrist"]["num_gt"] == 2 * T and doc["parts"]["MOTA"]["Total"] == 100.0


def test_cli_folders_pair_sequences_by_name_and_report_the_rest(tmp_path: Path) -> None:
    pred = _scene()
    pred[2][0]["track_id"], pred[2][1]["track_id"] = 2, 1
    _write(tmp_path / "gt", "a", _pt18(_scene()))
    _write(tmp_path / "gt", "b", _pt18(_scene()))
    _write(tmp_path / "pred", "a", _pt18(pred))
    result = _cli(str(tmp_path / "gt"), str(tmp_path / "pred"), "--json", str(tmp_path / "m.json"))
    assert result.exit_code == 0, result.output
    assert "1 sequence, 5 frames" in result.stdout
    assert "ground-truth sequences without predictions (not evaluated): b" in result.stdout
    assert json.loads((tmp_path / "m.json").read_text())["total"]["MOTA"] == pytest.approx(60.0)


def test_cli_coco_sample_against_itself_and_a_posetrack_output(shared_data: Path, tmp_path: Path) -> None:
    gt_path = shared_data / "coco_sample" / "test_coco.json"
    result = _cli(str(gt_path), str(gt_path), "--metric", "coco")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].split() == ["1.000"] * 10
    # posetrack's output for the folder of images, every pose moved to OKS 0.78: AP = 0.6.
    gt = json.loads(gt_path.read_text())
    shifted = _shift_to_oks(gt, _coco_results(gt), 0.78)
    images = {im["id"]: im for im in gt["images"]}
    frames, sizes = [], []
    for t, image_id in enumerate(sorted(images)):
        mine = [r for r in shifted if r["image_id"] == image_id]
        kps = np.array([r["keypoints"] for r in mine]).reshape(-1, 17, 3)[..., :2]
        poses = Poses(kps, np.ones(kps.shape[:2]), np.zeros((len(mine), 4)), np.ones(len(mine)))
        frames.append(TrackedFrame(t, 0.0, poses, np.arange(len(mine))))
        image = images[image_id]
        sizes.append((image["width"], image["height"], image["file_name"]))
    written = write_track_document(tmp_path / "written", "coco", frames, sizes, COCO_KEYPOINTS)
    pred = _write(tmp_path, "coco_sample", written)
    result = _cli(str(gt_path), str(pred), "--metric", "coco", "--json", str(tmp_path / "c.json"))
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "c.json").read_text())["stats"]["AP"] == pytest.approx(0.6)


def test_cli_no_common_sequences(tmp_path: Path) -> None:
    _write(tmp_path / "gt", "a", _pt18(_scene()))
    _write(tmp_path / "pred", "b", _pt18(_scene()))
    _fails_with(_cli(str(tmp_path / "gt"), str(tmp_path / "pred")), "no sequence in common", "a", "b")


def test_cli_file_of_neither_format(tmp_path: Path) -> None:
    gt = _write(tmp_path, "seq", _pt18(_scene()))
    other = _write(tmp_path / "x", "seq", {"frames": []})
    _fails_with(_cli(str(gt), str(other)), str(other), "neither PoseTrack 2017")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    _fails_with(_cli(str(gt), str(broken)), "not valid JSON")
    pt17 = _write(tmp_path / "17", "seq", _pt17(_scene()))
    _fails_with(_cli(str(pt17), str(gt), "--metric", "coco"), "PoseTrack 2017", "use --metric posetrack")


def test_cli_mismatched_keypoint_names(tmp_path: Path) -> None:
    gt = _write(tmp_path, "seq", _pt18(_scene()))
    pred_doc = _pt18(_scene())
    pred_doc["categories"][0]["keypoints"] = [f"point_{i}" for i in range(17)]
    pred = _write(tmp_path / "p", "seq", pred_doc)
    _fails_with(_cli(str(gt), str(pred)), "no keypoint name in common", "point_0")
    _fails_with(_cli(str(gt), str(pred), "--metric", "coco"), "COCO keypoint AP needs the 17 COCO keypoints")


def test_cli_other_bad_input(tmp_path: Path) -> None:
    gt = _write(tmp_path, "seq", _pt18(_scene()))
    short = _write(tmp_path / "p", "seq", _pt18(_scene()[:3]))
    _fails_with(_cli(str(gt), str(short)), "has 3 frames", "has 5")
    headless = _pt18(_scene())
    del headless["annotations"][0]["bbox_head"]
    _fails_with(_cli(str(_write(tmp_path / "h", "seq", headless)), str(gt)), "no usable head box")
    twins = _scene()
    twins[1][1]["track_id"] = 1
    _fails_with(_cli(str(gt), str(_write(tmp_path / "t", "seq", _pt18(twins)))), "track id 1 is used by two people")
    assert _cli(str(gt), str(tmp_path / "missing.json")).exit_code == 2  # click: path does not exist
    assert _cli(str(gt), str(gt), "--metric", "mota").exit_code == 2  # click: not a choice


# ------------------------------------------------------------------- two runs: box MOTA and IDF1


def _run_document(frames: list[list[dict]], folder: Path) -> dict:
    """posetrack's JSON of ``frames`` (no head boxes), person boxes around each person's joints."""
    coco_from_pt18 = [PT18_NAMES.index(n) if n in PT18_NAMES else 0 for n in COCO_KEYPOINTS]
    tracked = []
    for t, people in enumerate(frames):
        if not people:
            continue
        kps = np.stack([p["kps"][coco_from_pt18, :2] for p in people])
        boxes = np.concatenate([kps.min(axis=1) - 10, kps.max(axis=1) + 10], axis=1)
        poses = Poses(kps, np.full(kps.shape[:2], 0.9), boxes, np.ones(len(people)))
        tracked.append(TrackedFrame(t, t / 25, poses, [p["track_id"] for p in people]))
    return write_track_document(folder, "clip", tracked, [(640, 480, None)] * len(frames), COCO_KEYPOINTS,
                                {"source": "clip.mp4", "settings": {}})


def test_box_metrics_by_hand(tmp_path: Path) -> None:
    """10 boxes of 2 tracks. Ids swapped in frame 2 and back in 3: 4 switches, MOTA 60; IDF1 under the
    best track mapping (1-1, 2-2): 8 of 10 boxes keep their identity on each side, IDF1 = 80."""
    from posetrack_cli.evaluation.mot import evaluate_boxes

    gt = read_sequences(_write(tmp_path / "a", "clip", _run_document(_scene(), tmp_path / "w1")))
    same = evaluate_boxes(gt, gt)
    assert (same.mota, same.motp, same.idf1, same.precision, same.recall) == (100.0, 100.0, 100.0, 100.0, 100.0)
    swapped = _scene()
    swapped[2][0]["track_id"], swapped[2][1]["track_id"] = 2, 1
    m = evaluate_boxes(gt, read_sequences(_write(tmp_path / "b", "clip", _run_document(swapped, tmp_path / "w2"))))
    assert m.counts["num_switches"] == 4 and m.mota == pytest.approx(60.0) and m.idf1 == pytest.approx(80.0)
    assert m.counts["num_objects"] == 10 and m.counts["num_unique_objects"] == 2 and m.recall == 100.0
    # one person missed in frame 4 and a false one added in frame 1: MOTA 1 - 2/10; IDF1 = 2*9 / (2*9 + 1 + 1)
    other = _scene()
    del other[4][1]
    other[1].append(_person(3, 700.0, 1))
    m = evaluate_boxes(gt, read_sequences(_write(tmp_path / "c", "clip", _run_document(other, tmp_path / "w3"))))
    assert (m.counts["num_misses"], m.counts["num_false_positives"]) == (1, 1)
    assert m.mota == pytest.approx(80.0) and m.idf1 == pytest.approx(90.0) and m.precision == pytest.approx(90.0)


def test_cli_compares_two_runs_without_head_boxes(tmp_path: Path) -> None:
    """posetrack's own JSON as ground truth: box metrics by default, with a line saying so; PCKh refused."""
    swapped = _scene()
    swapped[2][0]["track_id"], swapped[2][1]["track_id"] = 2, 1
    a = _write(tmp_path / "a", "clip", _run_document(_scene(), tmp_path / "w4"))
    b = _write(tmp_path / "b", "clip", _run_document(swapped, tmp_path / "w5"))
    result = _cli(str(a), str(b), "--json", str(tmp_path / "m.json"))
    assert result.exit_code == 0, result.output
    assert "no head boxes for PCKh: scoring person boxes and track ids (--metric mot)" in result.stdout
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[:1] == ["MOTA"])
    row = dict(zip(lines[at].split(), lines[at + 1].split()))
    assert (row["MOTA"], row["IDF1"], row["IDsw"]) == ("60.0", "80.0", "4")
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["metric"] == "mot" and doc["total"]["IDF1"] == 80.0 and doc["counts"]["num_switches"] == 4
    _fails_with(_cli(str(a), str(b), "--metric", "posetrack"), "no usable head box", "--metric mot")
    # PoseTrack 2018 ground truth has boxes too: --metric mot scores a run against it
    gt18 = _pt18(_scene())
    for ann, box in zip(gt18["annotations"], (a_["bbox"] for a_ in json.loads(a.read_text())["annotations"])):
        ann["bbox"] = box
    result = _cli(str(_write(tmp_path / "g", "clip", gt18)), str(b), "--metric", "mot")
    assert result.exit_code == 0 and "(--metric mot)" not in result.stdout
    assert result.stdout.splitlines()[-1].split()[0] == "60.0"
    _fails_with(_cli(str(_write(tmp_path / "n", "clip", _pt18(_scene()))), str(b), "--metric", "mot"),
                "has no box ('bbox')")


def test_cli_coco_warns_when_predictions_cover_fewer_images(shared_data: Path, tmp_path: Path) -> None:
    gt_path = shared_data / "coco_sample" / "test_coco.json"
    gt = json.loads(gt_path.read_text())
    results = _coco_results(gt)
    first = results[0]["image_id"]
    pred = tmp_path / "one_image.json"
    pred.write_text(json.dumps([r for r in results if r["image_id"] == first]))
    result = _cli(str(gt_path), str(pred), "--metric", "coco")
    assert result.exit_code == 0, result.output
    warning = result.stderr.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("posetrack: warning: the predictions cover 1 of the 4 "
                                                       "ground-truth images with people")
    full = _cli(str(gt_path), str(gt_path), "--metric", "coco")
    assert full.exit_code == 0 and "warning" not in full.stderr
