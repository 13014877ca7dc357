"""Overlay drawing: each person's box, skeleton and id label, in a colour fixed by the track id.

``OverlayRenderer(config).draw(image, frame)`` draws one frame; it is stateful only for the trails
(the last N positions of each track), so one renderer is made per video. What is drawn is chosen by
a frozen ``OverlayConfig``. Joints scoring below the keypoint threshold are drawn faded (blended
into the frame) rather than left out, so a reader sees where the network put a joint it doubts.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Sequence

import cv2
import numpy as np

from posetrack_cli.core.keypoints import COCO_SKELETON
from posetrack_cli.core.paper import JOINT_THRESHOLD
from posetrack_cli.core.types import TrackedFrame

# 20 well-separated colours (BGR); track id t is drawn in PALETTE[t % 20] in every frame.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (75, 25, 230), (75, 180, 60), (25, 225, 255), (200, 130, 0), (48, 130, 245), (180, 30, 145),
    (240, 240, 70), (230, 50, 240), (60, 245, 210), (212, 190, 250), (128, 128, 0), (255, 190, 220),
    (40, 110, 170), (200, 250, 255), (0, 0, 128), (195, 255, 170), (0, 128, 128), (180, 215, 255),
    (128, 0, 0), (128, 128, 128),
)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def track_colour(track_id: int) -> tuple[int, int, int]:
    """The BGR colour of a track id: the same in every frame of a video (and across videos)."""
    return PALETTE[int(track_id) % len(PALETTE)]


def text_colour(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``background`` (BGR), by its luma (Rec. 601)."""
    b, g, r = background
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


@dataclass(frozen=True)
class OverlayConfig:
    """What an overlay shows. Every field is one ``posetrack run`` flag.

    Attributes:
        boxes: draw each person's box.
        ids: draw the track id in a filled label at the box's top-left corner, kept inside the frame.
        skeleton: draw limbs and joints.
        trail: how many past positions (box bottom centres, one per frame) of each track to draw as
            a fading line; 0 draws none.
        keypoint_threshold: joints scoring below are drawn faded (limbs touching one too).
        dim: opacity in ``(0, 1]`` of faded joints and limbs; 0 hides them.
        scale: line and text size relative to a 480-pixel-high frame; None follows the frame height.

    Example:
        Skeletons and ids without boxes, each track trailing its last second at 30 fps:

        >>> from posetrack_cli import OverlayConfig
        >>> config = OverlayConfig(boxes=False, trail=30)
        >>> config.ids, config.skeleton, config.trail
        (True, True, 30)
        >>> OverlayConfig(dim=1.5)
        Traceback (most recent call last):
        ...
        ValueError: dim must be in [0, 1], got 1.5
    """

    boxes: bool = True  # where the person was found, and what the tracker matched
    ids: bool = True
    skeleton: bool = True
    trail: int = 0  # off by default: a trail hides the people behind it in crowds
    keypoint_threshold: float = JOINT_THRESHOLD  # the paper's: below it, a joint is not trusted
    dim: float = 0.35  # visible, yet clearly weaker than a trusted joint
    scale: float | None = None

    def __post_init__(self) -> None:
        if self.trail < 0:
            raise ValueError(f"trail must be >= 0, got {self.trail}")
        if not 0.0 <= self.dim <= 1.0:
            raise ValueError(f"dim must be in [0, 1], got {self.dim}")
        if self.scale is not None and not self.scale > 0:
            raise ValueError(f"scale must be > 0, got {self.scale}")


def label_box(text_size: tuple[int, int], anchor: tuple[float, float], frame_size: tuple[int, int],
              pad: int) -> tuple[int, int, int, int]:
    """Where a label of ``text_size`` (w, h) goes: ``x1, y1, x2, y2`` inside a ``frame_size`` (W, H) frame.

    Above the box corner ``anchor`` (x, y) when there is room, else just below it (inside the box);
    then shifted, never cut, to stay within the frame. A label wider than the frame starts at 0.
    """
    (tw, th), (width, height) = text_size, frame_size
    w, h = tw + 2 * pad, th + 2 * pad
    x1 = round(anchor[0])
    y1 = round(anchor[1]) - h
    if y1 < 0:
        y1 = round(anchor[1])
    x1 = max(0, min(x1, width - w))
    y1 = max(0, min(y1, height - h))
    return x1, y1, x1 + w, y1 + h


def draw_label(image: np.ndarray, text: str, corner: tuple[int, int], colour: tuple[int, int, int],
               scale: float = 1.0) -> None:
    """Write ``text`` in black or white on a filled ``colour`` label above ``corner`` (x, y), in place,
    kept whole inside ``image`` (see ``label_box``); ``scale`` 1 suits a 480-pixel-high frame."""
    font_scale = 0.6 * scale
    weight = max(1, round(1.5 * scale))
    (tw, th), baseline = cv2.getTextSize(text, _FONT, font_scale, weight)
    pad = max(2, round(3 * scale))
    x1, y1, x2, y2 = label_box((tw, th + baseline), corner, (image.shape[1], image.shape[0]), pad)
    cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), colour, -1)
    cv2.putText(image, text, (x1 + pad, y2 - pad - baseline), _FONT, font_scale, text_colour(colour), weight,
                cv2.LINE_AA)


class OverlayRenderer:
    """Draws tracked people on frames of one video; keeps each track's recent positions for trails.

    Args:
        config: what to draw.
        skeleton: pairs of keypoint indices joined by a limb (0-indexed; COCO's by default).

    Example:
        One person (track 0) drawn on a small black frame:

        >>> import numpy as np
        >>> from posetrack_cli import OverlayConfig, OverlayRenderer, Poses, TrackedFrame
        >>> body = np.array([[40.0 + 20 * (k % 2), 20.0 + 8 * k] for k in range(17)])  # (17, 2) in COCO's order
        >>> tracked = TrackedFrame(0, 0.0, Poses.from_keypoints([body], [[0.9] * 17]), track_ids=[0])
        >>> renderer = OverlayRenderer(OverlayConfig(trail=10))  # one renderer per video: it keeps the trails
        >>> image = np.zeros((180, 120, 3), np.uint8)
        >>> drawn = renderer.draw(image, tracked)
        >>> drawn.shape, bool(drawn.any()), bool(image.any())  # drawn on a copy
        ((180, 120, 3), True, False)
        >>> drawn[84, 40].tolist()  # the right elbow (keypoint 8), in track 0's colour (BGR)
        [75, 25, 230]
    """

    def __init__(self, config: OverlayConfig | None = None, *,
                 skeleton: Sequence[tuple[int, int]] = COCO_SKELETON) -> None:
        self.config = config or OverlayConfig()
        self.skeleton = tuple(skeleton)
        self._trails: dict[int, deque[tuple[int, tuple[float, float]]]] = {}
        self._now = -1  # index of the last frame drawn

    def state(self) -> dict[str, Any]:
        """The trails and the last frame drawn, as a state tree (:mod:`posetrack_cli.core.state`),
        so a resumed video's overlay goes on as it would have."""
        return {"now": self._now, "trails": [[tid, [[t, list(point)] for t, point in trail]]
                                             for tid, trail in self._trails.items()]}

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state`."""
        self._now = int(state["now"])
        self._trails = {int(tid): deque(((int(t), (float(p[0]), float(p[1]))) for t, p in trail),
                                         maxlen=self.config.trail)
                        for tid, trail in state["trails"]}

    def draw(self, image: np.ndarray, frame: TrackedFrame | None) -> np.ndarray:
        """A copy of ``image`` (``(H, W, 3)`` uint8 BGR) with ``frame``'s people drawn on it.

        Frames must come in order; a frame without people (None) still ages the trails.
        """
        out: np.ndarray = image.copy()
        cfg = self.config
        scale = cfg.scale if cfg.scale is not None else max(1.0, image.shape[0] / 480)
        thick = max(1, round(2 * scale))
        self._now = self._now + 1 if frame is None else frame.frame_index
        if cfg.trail:
            if frame is not None:
                self._remember(frame)
            self._draw_trails(out, thick)
        if frame is None or not len(frame):
            return out
        poses = frame.poses
        if cfg.skeleton:
            people = [(kps, scores >= cfg.keypoint_threshold, track_colour(int(tid)))
                      for kps, scores, tid in zip(poses.keypoints, poses.keypoint_scores, frame.track_ids)]
            if cfg.dim > 0:  # doubted parts first, each person's blended in over their own region
                for kps, ok, colour in people:
                    if not ok.all():
                        self._draw_faded(out, kps, ok, colour, thick)
            for kps, ok, colour in people:
                self._draw_pose(out, kps, ok, colour, thick, trusted=True)
        for box, tid in zip(poses.boxes, frame.track_ids):
            colour = track_colour(int(tid))
            x1, y1, x2, y2 = (round(v) for v in box)
            if cfg.boxes:
                cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick, cv2.LINE_AA)
            if cfg.ids:
                draw_label(out, str(int(tid)), (x1, y1), colour, scale)
        return out

    def _draw_faded(self, out: np.ndarray, kps: np.ndarray, ok: np.ndarray, colour: tuple[int, int, int],
                    thick: int) -> None:
        """One pose's doubted limbs and joints blended into ``out`` at ``dim`` opacity, in place.

        Drawn on a copy of the pose's region only (a whole-frame compare costs tens of ms at 720p),
        then blended where the copy changed; people drawn later compare against what is there now,
        so overlapping people are each blended once.
        """
        height, width = out.shape[:2]
        pad = thick + 3
        x0, y0 = (max(0, int(np.floor(v)) - pad) for v in kps.min(axis=0))
        x1, y1 = (int(np.ceil(v)) + pad + 1 for v in kps.max(axis=0))
        x1, y1 = min(width, x1), min(height, y1)
        if x1 <= x0 or y1 <= y0:
            return
        region = out[y0:y1, x0:x1]
        faded = region.copy()
        self._draw_pose(faded, kps - np.array([x0, y0], np.float32), ok, colour, thick, trusted=False)
        # OpenCV for the per-pixel work: numpy's channel reduce and masked copies cost ms per person
        b, g, r = cv2.split(cv2.absdiff(faded, region))
        changed = cv2.bitwise_or(cv2.bitwise_or(b, g), r)  # (h, w), non-zero where the copy was drawn on
        blended = cv2.addWeighted(faded, self.config.dim, region, 1 - self.config.dim, 0)
        result = region.copy()  # contiguous, so OpenCV writes into it
        cv2.copyTo(blended, changed, result)
        region[...] = result

    def _draw_pose(self, out: np.ndarray, kps: np.ndarray, ok: np.ndarray, colour: tuple[int, int, int],
                   thick: int, *, trusted: bool) -> None:
        """The limbs and joints of one pose that are ``trusted`` (both ends scoring at the threshold), or the others."""
        points = [(round(x), round(y)) for x, y in kps]
        for a, b in self.skeleton:
            if bool(ok[a] and ok[b]) == trusted:
                cv2.line(out, points[a], points[b], colour, thick, cv2.LINE_AA)
        for point, good in zip(points, ok):
            if bool(good) == trusted:
                cv2.circle(out, point, thick + 1, colour, -1, cv2.LINE_AA)
                if trusted:  # a dark rim keeps a joint readable on a background of its own colour
                    cv2.circle(out, point, thick + 1, (0, 0, 0), 1, cv2.LINE_AA)

    def _remember(self, frame: TrackedFrame) -> None:
        for box, tid in zip(frame.poses.boxes, frame.track_ids):
            trail = self._trails.setdefault(int(tid), deque(maxlen=self.config.trail))
            trail.append((frame.frame_index, ((box[0] + box[2]) / 2, float(box[3]))))

    def _draw_trails(self, out: np.ndarray, thick: int) -> None:
        """Each track's positions of the last ``trail`` frames, older segments thinner."""
        for tid in list(self._trails):
            trail = self._trails[tid]
            while trail and trail[0][0] <= self._now - self.config.trail:
                trail.popleft()
            if not trail:
                del self._trails[tid]
                continue
            points = [(round(x), round(y)) for _, (x, y) in trail]
            for i, (p, q) in enumerate(pairwise(points)):
                width = max(1, round(thick * (i + 1) / max(1, len(points) - 1)))
                cv2.line(out, p, q, track_colour(tid), width, cv2.LINE_AA)

