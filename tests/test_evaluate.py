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

from posetrack_cli.errors import PosetrackError
from posetrack_cli.evaluation.coco import coco_keypoint_ap
from posetrack_cli.keypoints import COCO_SIGMAS


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
