"""Validation during training: COCO keypoint AP of the current network, with ground-truth boxes.

As the released training code validates (``USE_GT_BBOX``), every annotated person of a COCO
keypoint file is cropped from its ground-truth box and estimated through the same ``PoseEstimator``
``posetrack run`` uses (flip test included), each pose is scored by the mean of its joint scores
above 0.2 (MSRA's rescoring with a box score of 1), and ``evaluation.coco.coco_keypoint_ap`` scores
the lot. The number is comparable across epochs and with the published "GT box" results; it is an
optimistic bound on what the model reaches with detected boxes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import cv2
import numpy as np
import torch
from tqdm import tqdm

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.keypoints import COCO_KEYPOINTS
from posetrack_cli.core.paper import RESCORE_JOINT_THRESHOLD
from posetrack_cli.core.types import Detections
from posetrack_cli.evaluation.coco import coco_keypoint_ap
from posetrack_cli.inference.config import EstimatorConfig
from posetrack_cli.inference.estimator import PoseEstimator
from posetrack_cli.models.checkpoints import InputNorm
from posetrack_cli.training.data import PersonSamples, SkipReport, load_keypoint_annotations, read_keypoint_document


@dataclass(frozen=True, eq=False)
class CocoValidation:
    """A COCO keypoint file to score the network on.

    Attributes:
        path: the annotation file.
        gt: its document, as ``coco_keypoint_ap`` takes it.
        samples: the annotated people (ground-truth boxes) and their images.
        category_id: the person category results are reported under.
        skipped: annotations that give no person to estimate (crowd, no keypoints, ...).
    """

    path: Path
    gt: dict[str, Any]
    samples: PersonSamples
    category_id: Any
    skipped: SkipReport

    @classmethod
    def from_file(cls, path: str | Path, images: str | Path | None = None) -> CocoValidation:
        """Read and check a validation file before any training happens.

        Raises:
            PosetrackError: not COCO-17 keypoints, or missing what COCO AP needs (``area``,
                ``num_keypoints``): found now rather than after the first epoch.
        """
        path = Path(path)
        doc, categories, names = read_keypoint_document(path)
        if names != COCO_KEYPOINTS:
            raise PosetrackError(f"{path}: validation reports COCO keypoint AP, which needs the 17 COCO keypoints; "
                                 f"this file names {', '.join(names[:3])}, ...")
        coco_keypoint_ap(doc, [])  # the evaluator's own checks of the ground truth, up front
        samples, skipped = load_keypoint_annotations([path], images)
        return cls(path, doc, samples, sorted(categories, key=str)[0], skipped)

    def check_model(self, keypoint_names: Sequence[str]) -> None:
        """Refuse a network whose channels are not the COCO keypoints (its AP would be meaningless)."""
        if tuple(keypoint_names) != COCO_KEYPOINTS:
            raise PosetrackError(
                "validation with COCO AP needs a network trained on the 17 COCO keypoints; "
                f"this one predicts {', '.join(list(keypoint_names)[:3])}, ..."
            )

    def results(
        self, model: torch.nn.Module, *, norm: InputNorm, keypoint_names: Sequence[str], input_size: tuple[int, int],
        device: torch.device | str = "cpu", progress: bool = False,
    ) -> list[dict[str, Any]]:
        """COCO results (``image_id``, ``category_id``, ``keypoints`` [x, y, score] * 17, ``score``) of ``model``.

        ``model`` is not modified: the estimator works on a BatchNorm-folded copy in eval mode.
        """
        width, height = input_size
        # torch, not OpenVINO: the network changes every epoch (a conversion each time would cost more
        # than it saves), and OpenVINO's thread pool must not be alive when DataLoader workers fork.
        estimator = PoseEstimator(model, norm=norm, keypoint_names=keypoint_names,
                                  config=EstimatorConfig(input_size=(width, height), device=str(device),
                                                         runtime="torch", precision="fp32"))
        rows_of: dict[int, list[int]] = {}
        for row, image in enumerate(self.samples.image_index.tolist()):
            rows_of.setdefault(image, []).append(row)
        results = []
        images: Iterable[tuple[int, list[int]]] = tqdm(rows_of.items(), desc="validation", unit="image",
                                                       leave=False, disable=not progress)  # tqdm is untyped
        for image, rows in images:
            frame = cv2.imread(str(self.samples.image_paths[image]), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
            if frame is None:
                continue  # its people count as missed, which is what they are
            poses = estimator.estimate(frame, Detections(self.samples.boxes[rows], np.ones(len(rows))))
            for keypoints, scores in zip(poses.keypoints, poses.keypoint_scores):
                kept = scores[scores > RESCORE_JOINT_THRESHOLD]  # MSRA in_vis_thre: the person score's joints
                flat = np.concatenate([keypoints, scores[:, None]], axis=1).ravel()  # [x, y, score] * K
                results.append({
                    "image_id": self.samples.image_ids[image], "category_id": self.category_id,
                    "keypoints": [round(float(v), 3) for v in flat], "score": float(kept.mean()) if len(kept) else 0.0,
                })
        return results

    def evaluate(self, model: torch.nn.Module, **kwargs: Any) -> dict[str, float]:
        """The ten COCO keypoint statistics (``AP``, ``AP50``, ...) of ``model``; arguments as ``results``."""
        return coco_keypoint_ap(self.gt, self.results(model, **kwargs))
