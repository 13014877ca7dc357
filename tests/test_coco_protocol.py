"""COCO's top-down protocol: a person detector's COCO results for a folder of images, poses in
those boxes (``posetrack run --images DIR --detections boxes.json``), and ``posetrack evaluate
--metric coco`` giving what pycocotools' COCOeval gives run directly on the same two files; and a
pose file that records no input size, run at its architecture's standard size."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from posetrack_cli.cli import main
from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.inference.config import EstimatorConfig
from posetrack_cli.io.coco_results import ImageBoxes
from posetrack_cli.run.job import load_estimator
from posetrack_cli.run.settings import ModelChoice

from synthetic_people import render_dataset

# Given boxes need no detector (no detector file is present in these tests); the pose network in torch.
POSE = ["--no-flip-test", "--runtime", "torch", "--precision", "fp32", "--no-progress", "--offline"]


def _cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def _pycocotools(gt: Path, results: Path) -> list[float]:
    """COCOeval's ten keypoint statistics, run directly on the two files as its documentation does."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt))
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(str(results)), iouType="keypoints")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return [float(v) for v in evaluator.stats]


def _evaluate(gt: Path, results: Path, scores: Path) -> list[float]:
    result = _cli("evaluate", str(gt), str(results), "--metric", "coco", "--json", str(scores))
    assert result.exit_code == 0, result.output
    stats = json.loads(scores.read_text())["stats"]
    return [-1.0 if v is None else v for v in stats.values()]  # pycocotools' -1 where a statistic is undefined


def _protocol(images: Path, boxes: Path, out: Path, *pose: str) -> tuple[list[dict[str, Any]], Any]:
    """Run the protocol; the COCO results written and the run's result."""
    result = _cli("run", str(images), "--images", "--detections", str(boxes), "--det-threshold", "0", "-o", str(out),
                  *pose, *POSE)
    assert result.exit_code == 0, result.output
    return json.loads((out / f"{images.name}.coco.json").read_text()), result


def test_given_boxes_on_generated_coco_images_score_as_pycocotools_scores_them(checkpoints: dict[str, Path],
                                                                                 tmp_path: Path) -> None:
    """Rendered COCO-style images (``000001.png``, ids 1..N), a detector's results of their people by
    COCO image id, and ground truth placed around what the network found at spread distances and
    sizes, so that AP, AR and their medium/large parts are far from 0 and 1: the equality of the two
    evaluations is not 0 == 0."""
    images = tmp_path / "images"
    annotations = render_dataset(images, images=10, size=(256, 192), seed=3)
    doc = json.loads(annotations.read_text())
    annotations.unlink()  # the folder holds the images only
    rng = np.random.default_rng(0)
    without = doc["images"][-1]["id"]  # an image the detector found nobody in
    detections = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"],
                   "score": round(float(rng.uniform(0.3, 1.0)), 3)} for a in doc["annotations"]
                  if a["image_id"] != without]
    detections.append({"image_id": 999_999, "category_id": 1, "bbox": [1, 1, 20, 20], "score": 0.9})  # not here
    detections.append({"image_id": 1, "category_id": 3, "bbox": [1, 1, 20, 20], "score": 0.9})  # a car
    boxes = tmp_path / "detections.json"
    boxes.write_text(json.dumps(detections))

    results, run = _protocol(images, boxes, tmp_path / "out", "--pose-weights", str(checkpoints["pose"]),
                             "--input-size", "64x64")
    # Each result is one of the given person boxes, on the image the box names.
    assert {r["image_id"] for r in results} == {im["id"] for im in doc["images"]} - {without}
    assert len(results) == len(detections) - 2
    assert "detections.json: 1 box for 1 image not in" in run.stderr
    assert "1 of 10 images without a box scoring 0 or more (first: 000010.png)" in run.stderr

    gt_people = [a for a in doc["annotations"] if a["image_id"] == without]  # people nobody found
    for r in results:
        xy = np.reshape(r["keypoints"], (17, 3))[:, :2] + rng.normal(0, rng.choice([0.5, 2, 4, 8, 16]), (17, 2))
        (x1, y1), (x2, y2) = xy.min(0) - 10, xy.max(0) + 10
        area = float((x2 - x1) * (y2 - y1) * rng.choice([0.2, 1.0]))  # medium and large (COCO: 32² to 96², over)
        flat = np.concatenate([xy, np.full((17, 1), 2)], 1).ravel().tolist()
        gt_people.append({"image_id": r["image_id"], "category_id": 1, "iscrowd": 0, "area": area, "num_keypoints": 17,
                          "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)], "keypoints": flat})
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({**doc, "annotations": [{**a, "id": i + 1} for i, a in enumerate(gt_people)]}))

    ours = _evaluate(gt, tmp_path / "out" / "images.coco.json", tmp_path / "scores.json")
    theirs = _pycocotools(gt, tmp_path / "out" / "images.coco.json")
    assert ours == [round(v, 4) for v in theirs]  # --json's four decimals
    ap, apm, apl = ours[0], ours[3], ours[4]
    assert 0.1 < ap < 0.95 and 0.0 < apm < 1.0 and 0.0 < apl < 1.0, ours


def test_the_authors_detection_file_on_coco_val2017_images(shared_data: Path, checkpoints: dict[str, Path],
                                                           tmp_path: Path) -> None:
    """The real protocol's files: COCO val2017 images named by their zero-padded id, a detection
    file in COCO results (AP_H_56, the boxes the paper's COCO numbers were made with) and COCO's
    ground truth for them."""
    sample = shared_data / "coco_sample"
    images = tmp_path / "val2017"
    images.mkdir()
    for jpg in sample.glob("*.jpg"):
        (images / jpg.name).symlink_to(jpg)
    boxes, gt = sample / "test_coco_det_AP_H_56.json", sample / "test_coco.json"
    results, _ = _protocol(images, boxes, tmp_path / "out", "--pose-weights", str(checkpoints["pose"]),
                           "--input-size", "64x64")
    people = [d for d in json.loads(boxes.read_text()) if d.get("category_id", 1) == 1]
    assert {r["image_id"] for r in results} == {d["image_id"] for d in people} == {
        im["id"] for im in json.loads(gt.read_text())["images"]}
    ours = _evaluate(gt, tmp_path / "out" / "val2017.coco.json", tmp_path / "scores.json")
    assert ours == [round(v, 4) for v in _pycocotools(gt, tmp_path / "out" / "val2017.coco.json")]


def test_boxes_that_name_no_image_of_the_folder_are_refused_before_models_load(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for name in ("000000000785.jpg", "street.png"):
        cv2.imwrite(str(images / name), np.zeros((40, 30, 3), np.uint8))
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"image_id": 42, "category_id": 1, "bbox": [1, 1, 10, 10], "score": 0.9}]))
    result = _cli("run", str(images), "--images", "--detections", str(boxes), "-o", str(tmp_path / "out"), *POSE)
    assert result.exit_code == 1  # no model file is present: the boxes were checked first
    assert "none of the 1 person boxes of boxes.json is of an image in" in result.stderr
    assert "785 for 000000000785.jpg" in result.stderr and "Traceback" not in result.output

    # By COCO number or by file name (with or without extension), clipped to the image.
    boxes.write_text(json.dumps([{"image_id": 785, "bbox": [-5, 1, 10, 10], "score": 0.9},
                                 {"image_id": "street", "bbox": [1, 1, 100, 10], "score": 0.2},
                                 {"image_id": 42, "bbox": [1, 1, 10, 10], "score": 0.9}]))
    said: list[str] = []
    found = ImageBoxes(boxes, images, ["000000000785.jpg", "street.png"], 0.0, warn=said.append)
    assert found.unused == 1 and not found.without_boxes
    assert said == [f"boxes.json: 1 box for 1 image not in {images}: not used"]
    assert found.get("000000000785.jpg", 30, 40).boxes.tolist() == [[0.0, 1.0, 5.0, 11.0]]
    assert found.get("street.png", 30, 40).boxes.tolist() == [[1.0, 1.0, 29.0, 11.0]]
    assert ImageBoxes(boxes, images, ["000000000785.jpg", "street.png"], 0.5).without_boxes == ["street.png"]
    boxes.write_text(json.dumps([{"image_id": 785, "bbox": [0, 0, 10, float("nan")], "score": 0.9}]))
    with pytest.raises(PosetrackError, match="boxes.json entry 0"):
        ImageBoxes(boxes, images, ["000000000785.jpg"], 0.0)


def test_a_pose_file_without_an_input_size_takes_its_architectures_standard_one(checkpoints: dict[str, Path],
                                                                                 tmp_path: Path) -> None:
    plain = tmp_path / "model.pth"  # a name that says no size, and a released layout that records none
    plain.symlink_to(checkpoints["pose"])
    lines: list[str] = []
    estimator = load_estimator(ModelChoice(pose_weights=plain), EstimatorConfig(runtime="torch", precision="fp32"),
                               allow_download=False, note=lines.append)
    assert estimator.config.input_size == (192, 256)
    assert lines == ["model.pth does not record its input size: using 192x256 (width x height), the standard size "
                     "of a ResNet-18 with 17 keypoints; --input-size WIDTHxHEIGHT (input_size=(width, height) in "
                     "Python) chooses another"]
    torch_fp32 = EstimatorConfig(runtime="torch", precision="fp32")
    told = load_estimator(ModelChoice(pose_weights=plain, input_size=(64, 64)), torch_fp32, allow_download=False,
                          note=lines.append)
    assert told.config.input_size == (64, 64) and len(lines) == 1

    # On the command line: one line on stderr, and the run goes on at that size.
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "000000000001.jpg"), np.full((120, 90, 3), 128, np.uint8))
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [10, 10, 60, 100], "score": 0.9}]))
    result = _cli("run", str(images), "--images", "--detections", str(boxes), "--pose-weights", str(plain),
                  "-o", str(tmp_path / "out"), *POSE)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [f"posetrack: {lines[0]}"]
