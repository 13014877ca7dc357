"""Overlay drawing: each person's box, skeleton and id label, in a colour fixed by the track id.

``OverlayRenderer(config).draw(image, frame)`` draws one frame; it is stateful only for the trails
(the last N positions of each track), so one renderer is made per video. What is drawn is chosen by
a frozen ``OverlayConfig``. Joints scoring below the keypoint threshold are drawn faded (blended
into the frame) rather than left out, so a reader sees where the network put a joint it doubts.

In a crowd, id labels are placed so that they do not cover each other (:func:`place_labels`);
their text is sized from the frame height, never below :data:`MIN_GLYPH_PX` (:func:`text_style`).
An optional stamp gives the frame number and time in the corner with the fewest people
(:func:`stamp_box`).
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
# Label text: digits this share of the frame height tall (30 px at 1080p, 20 px at 720p), and never
# shorter than MIN_GLYPH_PX, below which OpenCV's anti-aliased Hershey digits blur into each other
# (a 360p frame gets the minimum, 3.3 % of its height).
GLYPH_SHARE = 1 / 36
MIN_GLYPH_PX = 12
# How tall a digit of _FONT is drawn at font scale 1, in pixels (cv2.getTextSize's height adds the
# stroke and a margin; this is the drawn height, measured).
_DIGIT_PX_AT_SCALE_1 = 20.5


def track_colour(track_id: int) -> tuple[int, int, int]:
    """The BGR colour of a track id: the same in every frame of a video (and across videos)."""
    return PALETTE[int(track_id) % len(PALETTE)]


def text_colour(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``background`` (BGR), by its luma (Rec. 601)."""
    b, g, r = background
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


@dataclass(frozen=True)
class TextStyle:
    """How label text is drawn: OpenCV's ``font_scale`` and stroke ``thickness``, and the ``pad``
    (pixels) between the text and its label's edge; ``glyph`` is the digits' height in pixels."""

    glyph: float
    font_scale: float
    thickness: int
    pad: int


def text_style(frame_height: int, scale: float | None = None) -> TextStyle:
    """The label text of a frame ``frame_height`` pixels high: digits ``GLYPH_SHARE`` of its height
    tall, or, with ``scale`` (size relative to a 480-pixel-high frame), that of a 480-pixel frame
    times ``scale``; never shorter than :data:`MIN_GLYPH_PX`, so a 360p overlay stays readable.
    The stroke thickens with the glyph (1/8 of its height), as a bold face does."""
    glyph = max(float(MIN_GLYPH_PX), (480 * scale if scale is not None else frame_height) * GLYPH_SHARE)
    return TextStyle(glyph, glyph / _DIGIT_PX_AT_SCALE_1, max(1, round(glyph / 8)), max(2, round(glyph / 4)))


def text_box_size(text: str, style: TextStyle) -> tuple[int, int]:
    """The (w, h) in pixels of a label holding ``text`` in ``style``, its padding included."""
    (tw, th), baseline = cv2.getTextSize(text, _FONT, style.font_scale, style.thickness)
    return tw + 2 * style.pad, th + baseline + 2 * style.pad


def _inside(rects: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """``rects`` ``(C, 4)`` xyxy shifted, not resized, to lie inside a ``frame_size`` (W, H) frame;
    one larger than the frame starts at its left or top edge."""
    width, height = frame_size
    w, h = rects[:, 2] - rects[:, 0], rects[:, 3] - rects[:, 1]
    x1 = np.maximum(0, np.minimum(rects[:, 0], width - w))
    y1 = np.maximum(0, np.minimum(rects[:, 1], height - h))
    return np.stack([x1, y1, x1 + w, y1 + h], axis=1)


def _overlap_areas(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection areas ``(M, N)`` of xyxy rectangles ``a (M, 4)`` and ``b (N, 4)`` (0 where apart)."""
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    areas: np.ndarray = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    return areas


def label_candidates(size: tuple[int, int], box: Sequence[float] | np.ndarray) -> np.ndarray:
    """Where a label of ``size`` (w, h) may go around a person's ``box`` (x1, y1, x2, y2), in order
    of preference: ``(8, 4)`` xyxy, not yet kept inside the frame.

    Above the box at its left corner (where a reader looks first, and where a lone person's label
    always goes), above at its right corner, inside its top left and top right corners, below it
    (left, right), and beside its top, outside (left, right).
    """
    cands: np.ndarray = _candidates(np.array([size], np.float64), np.asarray(box, np.float64).reshape(1, 4))[0]
    return cands


def _candidates(sizes: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """:func:`label_candidates` of ``N`` labels at once: sizes ``(N, 2)``, boxes ``(N, 4)`` -> ``(N, 8, 4)``."""
    x1, y1, x2, y2 = (boxes[:, k:k + 1] for k in range(4))  # (N, 1) each
    w, h = sizes[:, :1], sizes[:, 1:]
    xs = np.round(np.concatenate([x1, x2 - w, x1, x2 - w, x1, x2 - w, x1 - w, x2], axis=1))  # (N, 8)
    ys = np.round(np.concatenate([y1 - h, y1 - h, y1, y1, y2, y2, y1, y1], axis=1))
    return np.stack([xs, ys, xs + w, ys + h], axis=2)


def place_labels(sizes: Sequence[tuple[int, int]], boxes: np.ndarray, frame_size: tuple[int, int],
                 taken: np.ndarray | None = None) -> np.ndarray:
    """Where each person's label goes, so that labels of people standing close together do not
    cover each other: ``(N, 4)`` int xyxy rectangles, each whole inside the ``frame_size`` (W, H) frame.

    Greedy, in the order given (the renderer passes people by track id, so a person keeps their
    priority from frame to frame and their label stays put): each label takes, of its
    :func:`label_candidates` moved inside the frame, the one overlapping the fewest labels placed
    before it (and rectangles ``taken``, ``(M, 4)`` xyxy, such as the frame stamp), then the least
    area of them, then the most preferred. Greedy rather than an optimal assignment: each label
    costs one small array computation against those before it, and where every candidate overlaps
    (no room left) the least-covering one is used.

    Args:
        sizes: each label's (w, h) in pixels, padding included.
        boxes: ``(N, 4)`` xyxy person boxes in frame pixels (may reach outside the frame).
        frame_size: the frame's (W, H).
        taken: rectangles labels should avoid too.

    Returns:
        ``(N, 4)`` int64 xyxy, one per label, in the order given.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(sizes) != len(boxes):
        raise ValueError(f"one label size per box: got {len(sizes)} sizes and {len(boxes)} boxes")
    n = len(boxes)
    cands = _inside(_candidates(np.asarray(sizes, np.float64).reshape(-1, 2), boxes).reshape(-1, 4),
                    frame_size).reshape(n, -1, 4)  # (N, C, 4)
    given = np.asarray(taken, np.float64).reshape(-1, 4) if taken is not None else np.zeros((0, 4))
    placed = np.concatenate([given, np.zeros((n, 4))])  # the taken rectangles, then each label as placed
    rank = np.arange(cands.shape[1])
    for i in range(n):
        area = _overlap_areas(cands[i], placed[:len(given) + i])  # each candidate against those placed: (C, P)
        best = np.lexsort((rank, area.sum(axis=1), (area > 0).sum(axis=1)))[0]
        placed[len(given) + i] = cands[i, best]
    return placed[len(given):].astype(np.int64)


def stamp_text(frame_index: int, timestamp: float) -> str:
    """The frame stamp: the frame's index in its video (``image_id`` in the JSON) and its time,
    ``frame 1234  0:41.13`` (hours shown from one hour on)."""
    minutes, seconds = divmod(max(0.0, float(timestamp)), 60)
    hours, minutes = divmod(int(minutes), 60)
    clock = f"{hours}:{minutes:02d}:{seconds:05.2f}" if hours else f"{minutes}:{seconds:05.2f}"
    return f"frame {int(frame_index)}  {clock}"


def stamp_box(size: tuple[int, int], boxes: np.ndarray, frame_size: tuple[int, int], margin: int) -> np.ndarray:
    """Where the frame stamp of ``size`` (w, h) goes: the corner of the ``frame_size`` (W, H) frame,
    ``margin`` pixels in, whose rectangle covers the least area of the people's ``boxes``
    (``(N, 4)`` xyxy); top left, top right, bottom left, bottom right in that order on a tie, so it
    stays top left unless someone stands there. Returns ``(4,)`` int64 xyxy."""
    (w, h), (width, height) = size, frame_size
    xs, ys = (margin, width - margin - w), (margin, height - margin - h)
    cands = _inside(np.array([[x, y, x + w, y + h] for y in ys for x in xs], np.float64), frame_size)  # (4, 4)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    covered = _overlap_areas(cands, boxes).sum(axis=1)  # (4,)
    best: np.ndarray = cands[int(np.argmin(covered))].astype(np.int64)
    return best


@dataclass(frozen=True)
class OverlayConfig:
    """What an overlay shows. Every field is one ``posetrack run`` flag.

    Attributes:
        boxes: draw each person's box.
        ids: draw the track id in a filled label by the box (above its top-left corner unless that
            covers another label: :func:`place_labels`), kept inside the frame.
        skeleton: draw limbs and joints.
        trail: how many past positions (box bottom centres, one per frame) of each track to draw as
            a fading line; 0 draws none.
        keypoint_threshold: joints scoring below are drawn faded (limbs touching one too).
        dim: opacity in ``(0, 1]`` of faded joints and limbs; 0 hides them.
        scale: line and text size relative to a 480-pixel-high frame; None follows the frame height.
        frame_stamp: write the frame number and time (``frame 1234  0:41.13``, the frame's own
            timestamp) on a dark background in the corner where it covers the fewest people.

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
    frame_stamp: bool = False  # off by default: the JSON has each frame's index and time

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


def write_label(image: np.ndarray, text: str, rect: Sequence[int] | np.ndarray, colour: tuple[int, int, int],
                style: TextStyle) -> None:
    """Fill ``rect`` (x1, y1, x2, y2, from :func:`text_box_size`) of ``image`` with ``colour`` and
    write ``text`` on it in black or white (:func:`text_colour`), in place."""
    x1, y1, x2, y2 = (int(v) for v in rect)
    baseline = cv2.getTextSize(text, _FONT, style.font_scale, style.thickness)[1]
    cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), colour, -1)
    cv2.putText(image, text, (x1 + style.pad, y2 - style.pad - baseline), _FONT, style.font_scale,
                text_colour(colour), style.thickness, cv2.LINE_AA)


def draw_label(image: np.ndarray, text: str, corner: tuple[int, int], colour: tuple[int, int, int],
               scale: float = 1.0) -> None:
    """Write ``text`` in black or white on a filled ``colour`` label above ``corner`` (x, y), in place,
    kept whole inside ``image`` (see ``label_box``); ``scale`` 1 suits a 480-pixel-high frame."""
    style = text_style(image.shape[0], scale)
    w, h = text_box_size(text, style)
    rect = label_box((w - 2 * style.pad, h - 2 * style.pad), corner, (image.shape[1], image.shape[0]), style.pad)
    write_label(image, text, rect, colour, style)


def draw_stamp(image: np.ndarray, text: str, rect: Sequence[int] | np.ndarray, style: TextStyle) -> None:
    """White ``text`` on ``rect`` of ``image`` darkened to a quarter of its brightness, in place:
    readable on any video, while what is behind it still shows."""
    x1, y1, x2, y2 = (int(v) for v in rect)
    region = image[y1:y2, x1:x2]
    region[...] = region // 4
    baseline = cv2.getTextSize(text, _FONT, style.font_scale, style.thickness)[1]
    cv2.putText(image, text, (x1 + style.pad, y2 - style.pad - baseline), _FONT, style.font_scale,
                (255, 255, 255), style.thickness, cv2.LINE_AA)


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

        Frames must come in order; a frame without people (None) still ages the trails (and its
        stamp, not knowing the frame's time, gives the frame number only).
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
        size = (image.shape[1], image.shape[0])
        style = text_style(image.shape[0], cfg.scale)
        stamp: np.ndarray | None = None
        if cfg.frame_stamp:  # placed first: labels keep off it
            stamp_words = (stamp_text(frame.frame_index, frame.timestamp) if frame is not None
                           else f"frame {self._now}")
            stamp = stamp_box(text_box_size(stamp_words, style),
                              frame.poses.boxes if frame is not None else np.zeros((0, 4)), size, margin=style.pad)
        if frame is None or not len(frame):
            if stamp is not None:
                draw_stamp(out, stamp_words, stamp, style)
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
        if cfg.boxes:
            for box, tid in zip(poses.boxes, frame.track_ids):
                x1, y1, x2, y2 = (round(v) for v in box)
                cv2.rectangle(out, (x1, y1), (x2, y2), track_colour(int(tid)), thick, cv2.LINE_AA)
        if cfg.ids:
            order = np.argsort(frame.track_ids, kind="stable")  # the oldest tracks choose first, every frame
            texts = [str(int(frame.track_ids[i])) for i in order]
            rects = place_labels([text_box_size(t, style) for t in texts], poses.boxes[order], size,
                                 taken=None if stamp is None else stamp[None])
            for i, text, rect in zip(order, texts, rects):
                write_label(out, text, rect, track_colour(int(frame.track_ids[i])), style)
        if stamp is not None:
            draw_stamp(out, stamp_words, stamp, style)
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

