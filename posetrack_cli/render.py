"""Overlay drawing: each person's skeleton, keypoints and track id in a colour fixed by the id."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from posetrack_cli.keypoints import COCO_SKELETON
from posetrack_cli.types import TrackedFrame

# 20 well-separated colours (BGR); track id t is drawn in PALETTE[t % 20] in every frame.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (75, 25, 230), (75, 180, 60), (25, 225, 255), (200, 130, 0), (48, 130, 245), (180, 30, 145),
    (240, 240, 70), (230, 50, 240), (60, 245, 210), (212, 190, 250), (128, 128, 0), (255, 190, 220),
    (40, 110, 170), (200, 250, 255), (0, 0, 128), (195, 255, 170), (0, 128, 128), (180, 215, 255),
    (128, 0, 0), (128, 128, 128),
)


def track_colour(track_id: int) -> tuple[int, int, int]:
    return PALETTE[int(track_id) % len(PALETTE)]


def draw_tracks(
    image: np.ndarray,
    frame: TrackedFrame | None,
    *,
    skeleton: Sequence[tuple[int, int]] = COCO_SKELETON,
    keypoint_threshold: float = 0.4,
) -> np.ndarray:
    """A copy of ``image`` (``(H, W, 3)`` uint8 BGR) with the frame's people drawn on it.

    Limbs and keypoints scoring below ``keypoint_threshold`` are left out; the id is written
    above each person's box.
    """
    out = image.copy()
    if frame is None:
        return out
    scale = max(1.0, image.shape[0] / 480)
    thick = max(1, int(round(2 * scale)))
    for kps, scores, box, tid in zip(frame.poses.keypoints, frame.poses.keypoint_scores, frame.poses.boxes, frame.track_ids):
        colour = track_colour(int(tid))
        ok = scores >= keypoint_threshold
        for a, b in skeleton:
            if ok[a] and ok[b]:
                cv2.line(out, tuple(np.round(kps[a]).astype(int)), tuple(np.round(kps[b]).astype(int)), colour, thick, cv2.LINE_AA)
        for (x, y), good in zip(kps, ok):
            if good:
                cv2.circle(out, (int(round(x)), int(round(y))), thick + 1, colour, -1, cv2.LINE_AA)
        x1, y1 = int(box[0]), int(box[1])
        cv2.putText(out, str(int(tid)), (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, colour, thick, cv2.LINE_AA)
    return out
