"""A tiny COCO-format keypoint dataset rendered on the fly: stick figures with known joints.

Each figure faces the camera, so, as with real people, a joint's left/right name follows from
which side of the body it is on (the person's left is on the image's right): a mirrored figure with
its joints renamed is again a valid figure, which is what flip augmentation assumes. Joints of a
left/right pair share a colour; limbs are thick bars; the background is smooth colour noise with
random strokes, so a network has to find the figure rather than any bright pixel.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from posetrack_cli.core.keypoints import COCO_KEYPOINTS, COCO_SKELETON

# One colour (BGR) per joint pair: nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles.
_PAIR_OF = [0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8]
_COLOURS = [(255, 255, 255), (0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255),
            (255, 0, 255), (255, 255, 0), (0, 128, 255), (255, 128, 0)]


def _figure(rng: np.random.Generator) -> np.ndarray:
    """Joint positions ``(17, 2)`` of an upright figure about 100 units tall, hips' midpoint at 0."""
    half, nose = rng.uniform(14, 20), rng.uniform(-3, 3)
    angles = []
    for _ in range(2):  # the figure's left, then its right
        upper = rng.uniform(10, 150)
        lower = np.clip(upper + rng.uniform(-40, 60), 5, 175)
        thigh = rng.uniform(-5, 40)
        angles.append((upper, lower, thigh, thigh + rng.uniform(-25, 10)))
    return posed_figure(half, nose, np.array(angles))


def posed_figure(half: float, nose: float, angles: np.ndarray) -> np.ndarray:
    """Joints ``(17, 2)`` of a figure about 100 units tall, hips' midpoint at 0: shoulders ``half``
    from the middle, nose at ``nose``; ``angles`` ``(2, 4)`` in degrees from straight down, turning
    outward, for (upper arm, forearm, thigh, shin) of its left then its right side."""
    p = np.zeros((17, 2))
    names = {n: i for i, n in enumerate(COCO_KEYPOINTS)}

    def put(name: str, x: float, y: float) -> None:
        p[names[name]] = (x, y)

    def limb(start: str, end: str, length: float, angle: float, side: float) -> None:
        a = np.deg2rad(angle)
        p[names[end]] = p[names[start]] + length * np.array([side * np.sin(a), np.cos(a)])

    put("nose", nose, -80)
    for (side, tag), (upper, lower, thigh, shin) in zip(((1.0, "left"), (-1.0, "right")), angles):
        put(f"{tag}_eye", p[0, 0] + side * 5, -85)
        put(f"{tag}_ear", p[0, 0] + side * 11, -82)
        put(f"{tag}_shoulder", side * half, -62)
        put(f"{tag}_hip", side * 10, 0)
        limb(f"{tag}_shoulder", f"{tag}_elbow", 22, upper, side)
        limb(f"{tag}_elbow", f"{tag}_wrist", 20, lower, side)
        limb(f"{tag}_hip", f"{tag}_knee", 26, thigh, side)
        limb(f"{tag}_knee", f"{tag}_ankle", 25, shin, side)
    return p


def walking_figures(frames: int, *, size: tuple[int, int] = (480, 160), people: int = 3, speeds: tuple[float, ...] = (
        1.5, 3.0, 5.0), seed: int = 0) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """A clip of figures walking to and fro across their own lanes, swinging arms and legs.

    Returns:
        frames ``(H, W, 3)`` uint8 BGR; true joints ``(T, P, 17, 2)``; boxes ``(T, P, 4)`` as
        :func:`render_dataset` draws them (the joints' extent grown by 6 units of scale).
    """
    rng = np.random.default_rng(seed)
    w, h = size
    background = _background(rng, h, w)
    scale = 0.8 * h / 150
    lane = w / people
    joints = np.zeros((frames, people, 17, 2))
    for n in range(people):
        half, nose = rng.uniform(14, 20), rng.uniform(-3, 3)
        period, phase = rng.uniform(14, 24), rng.uniform(0, 2 * np.pi)
        speed = speeds[n % len(speeds)]
        base_y = rng.uniform(95, 105) * scale  # hips, so that the head stays in the frame
        span = lane / 2 - 55 * scale
        for t in range(frames):
            swing = np.sin(2 * np.pi * t / period + phase)
            angles = np.array([[60 + 40 * swing, 70 + 50 * swing, 15 + 18 * swing, 8 + 14 * swing],
                               [60 - 40 * swing, 70 - 50 * swing, 15 - 18 * swing, 8 - 14 * swing]])
            travel = speed * t % (4 * span)  # to and fro across the lane
            x = lane * (n + 0.5) - span + (travel if travel < 2 * span else 4 * span - travel)
            joints[t, n] = posed_figure(half, nose, angles) * scale + (x, base_y)
    clip, boxes = [], np.zeros((frames, people, 4))
    for t in range(frames):
        img = background.copy()
        for n in range(people):
            render_person(img, joints[t, n], scale)
            boxes[t, n, :2] = joints[t, n].min(axis=0) - 6 * scale
            boxes[t, n, 2:] = joints[t, n].max(axis=0) + 6 * scale
        clip.append(img)
    return clip, joints, boxes


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    noise = rng.uniform(40, 200, (h // 16 + 2, w // 16 + 2, 3)).astype(np.float32)
    img = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0, 12, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(6):
        a, b = rng.uniform(0, (w, h), (2, 2)).astype(int)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.line(img, tuple(map(int, a)), tuple(map(int, b)), colour, int(rng.integers(1, 4)))
    return img


def render_person(img: np.ndarray, joints: np.ndarray, scale: float) -> None:
    """Draw one figure with joints ``(17, 2)`` in image pixels onto ``img``."""
    thick = max(2, int(round(5 * scale)))
    torso = joints[[5, 6, 12, 11]].round().astype(np.int32)
    cv2.fillConvexPoly(img, torso, (90, 90, 90), lineType=cv2.LINE_AA)
    head = joints[[1, 2, 3, 4, 0]].mean(axis=0)
    cv2.circle(img, tuple(int(v) for v in head.round()), int(round(11 * scale)), (150, 150, 150), -1, cv2.LINE_AA)
    for a, b in COCO_SKELETON:
        if min(a, b) >= 5:  # limbs below the head
            pa, pb = (tuple(int(v) for v in joints[i].round()) for i in (a, b))
            cv2.line(img, pa, pb, (70, 70, 70), thick, cv2.LINE_AA)
    for k, (x, y) in enumerate(joints):
        radius = max(2, int(round((2.5 if k < 5 else 4) * scale)))
        cv2.circle(img, (int(round(x)), int(round(y))), radius, _COLOURS[_PAIR_OF[k]], -1, cv2.LINE_AA)


def render_dataset(
    folder: Path, *, images: int = 24, size: tuple[int, int] = (192, 160), people: tuple[int, int] = (1, 2),
    unlabelled: float = 0.05, seed: int = 0,
) -> Path:
    """Write ``images`` PNG files and ``annotations.json`` (COCO person keypoints) into ``folder``.

    Args:
        size: image ``(width, height)``.
        people: fewest and most figures per image (side by side, never overlapping).
        unlabelled: fraction of joints marked ``v = 0`` (drawn, but not annotated).

    Returns:
        the annotation file.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    doc = {
        "images": [], "annotations": [],
        "categories": [{"id": 1, "name": "person", "keypoints": list(COCO_KEYPOINTS),
                        "skeleton": [[a + 1, b + 1] for a, b in COCO_SKELETON]}],
    }
    for image_id in range(1, images + 1):
        img = _background(rng, h, w)
        count = int(rng.integers(people[0], people[1] + 1))
        slot = w / count
        for n in range(count):
            scale = rng.uniform(0.7, 0.9) * h / 150
            angle = np.deg2rad(rng.uniform(-15, 15))
            rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
            joints = _figure(rng) @ rot.T * scale
            lo, hi = joints.min(axis=0), joints.max(axis=0)
            centre_x = slot * (n + 0.5) + rng.uniform(-0.1, 0.1) * slot
            offset = np.array([centre_x - (lo[0] + hi[0]) / 2, rng.uniform(-lo[1] + 4, h - hi[1] - 4)])
            joints = joints + offset
            render_person(img, joints, scale)
            visible = np.where(rng.random(17) < unlabelled, 0, 2)
            x1, y1 = joints.min(axis=0) - 6 * scale
            x2, y2 = joints.max(axis=0) + 6 * scale
            flat = np.concatenate([np.where(visible[:, None] > 0, joints, 0), visible[:, None]], axis=1)
            doc["annotations"].append({
                "id": len(doc["annotations"]) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)], "area": float((x2 - x1) * (y2 - y1)),
                "num_keypoints": int((visible > 0).sum()), "keypoints": [round(float(v), 2) for v in flat.ravel()],
            })
        name = f"{image_id:06d}.png"
        cv2.imwrite(str(folder / name), img)
        doc["images"].append({"id": image_id, "file_name": name, "width": w, "height": h})
    path = folder / "annotations.json"
    path.write_text(json.dumps(doc))
    return path
