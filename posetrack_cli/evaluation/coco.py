"""COCO keypoint AP/AR with the reference implementation (pycocotools' COCOeval).

The numbers must be comparable with published COCO results, so the matching (OKS with the COCO
sigmas, 20 detections per image, the small/medium/large area ranges) is left to pycocotools; this
module only checks the inputs, keeps pycocotools from printing, and names the ten statistics.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
from typing import Any

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.keypoints import COCO_KEYPOINTS

# The order of COCOeval.stats for iouType="keypoints" (maxDets 20, area "all" unless named).
COCO_STAT_NAMES: tuple[str, ...] = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")

_NUM_VALUES = 3 * len(COCO_KEYPOINTS)  # [x, y, v] * 17
_GT_FIELDS = ("image_id", "category_id", "keypoints", "num_keypoints", "area", "bbox")
_RESULT_FIELDS = ("image_id", "category_id", "keypoints", "score")


def _check_gt(gt: dict[str, Any]) -> None:
    if not (isinstance(gt, dict) and isinstance(gt.get("images"), list) and isinstance(gt.get("annotations"), list)):
        raise PosetrackError("COCO ground truth must be a document with 'images' and 'annotations' lists")
    for ann in gt["annotations"]:
        missing = [f for f in _GT_FIELDS if f not in ann]
        if missing:
            raise PosetrackError(f"COCO ground-truth annotation {ann.get('id', '?')} has no {missing[0]!r}")
        if len(ann["keypoints"]) != _NUM_VALUES:
            raise PosetrackError(
                f"COCO ground-truth annotation {ann.get('id', '?')} has {len(ann['keypoints']) // 3} keypoints; "
                f"COCO keypoint AP needs the {len(COCO_KEYPOINTS)} COCO keypoints"
            )


def _clean_results(results: list[dict[str, Any]], image_ids: set[Any]) -> list[dict[str, Any]]:
    """Copies holding only what COCOeval reads for keypoints.

    A ``bbox`` is dropped on purpose: pycocotools takes a result's area from its keypoints only when
    it has no box, and that is how published keypoint results are scored.
    """
    clean = []
    for i, res in enumerate(results):
        missing = [f for f in _RESULT_FIELDS if f not in res]
        if missing:
            raise PosetrackError(f"COCO result {i} has no {missing[0]!r}")
        if len(res["keypoints"]) != _NUM_VALUES:
            raise PosetrackError(f"COCO result {i} has {len(res['keypoints']) // 3} keypoints, "
                                 f"expected {len(COCO_KEYPOINTS)}")
        if res["image_id"] not in image_ids:
            raise PosetrackError(f"COCO result {i} is for image_id {res['image_id']!r}, "
                                 "which the ground truth does not have")
        clean.append({f: res[f] for f in _RESULT_FIELDS})
    return clean


def coco_keypoint_ap(gt: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, float]:
    """The ten COCO keypoint statistics of ``results`` against ``gt``, on the 0..1 scale.

    Args:
        gt: a COCO person-keypoint ground-truth document (``images``, ``annotations`` with
            ``keypoints`` [x, y, v] * 17, ``num_keypoints``, ``area``, ``bbox``, ``categories``).
        results: COCO results: dicts with ``image_id``, ``category_id``, ``keypoints`` [x, y, v] * 17
            and ``score``. Neither argument is modified.

    Returns:
        ``{"AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"}`` as floats; a
        statistic pycocotools cannot define (no ground truth in that area range) is NaN.

    Raises:
        PosetrackError: a document or result lacks a field COCOeval needs, has other than 17
            keypoints, or a result names an image the ground truth does not have.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    _check_gt(gt)
    clean = _clean_results(results, {im["id"] for im in gt["images"]})
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools reports progress with print()
        coco_gt = COCO()
        # A copy: COCOeval writes an 'ignore' flag into every ground-truth annotation it reads.
        coco_gt.dataset = copy.deepcopy({k: gt[k] for k in ("images", "annotations", "categories") if k in gt})
        coco_gt.createIndex()
        if clean:
            coco_dt = coco_gt.loadRes(clean)
        else:  # loadRes cannot take an empty list; nothing detected scores 0, not an error
            coco_dt = COCO()
            coco_dt.dataset = {"images": gt["images"], "categories": gt.get("categories", []), "annotations": []}
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    # pycocotools marks an undefined statistic with -1; NaN keeps it out of any average by accident.
    return {name: (math.nan if v < 0 else float(v)) for name, v in zip(COCO_STAT_NAMES, evaluator.stats)}
