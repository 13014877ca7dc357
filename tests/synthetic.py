"""Rendered test sequences: textured stick people moving over a textured background.

Real optical flow needs texture, so both the background and each person carry their own random
pattern, and a person's pattern moves with them. Ground truth (keypoints, boxes, identities) is
known exactly, so tests can check what the tracker and the pipeline do with real flow.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from posetrack_cli.core.keypoints import COCO_SKELETON
from posetrack_cli.core.types import Poses

# COCO-17 keypoints of a person facing the camera, x right / y down, in units of body height,
# origin at the top-centre of the head. The person's left side is on the image's right (+x).
TEMPLATE = np.array([
    (0.00, 0.07), (0.025, 0.05), (-0.025, 0.05), (0.05, 0.06), (-0.05, 0.06),
    (0.12, 0.19), (-0.12, 0.19), (0.16, 0.34), (-0.16, 0.34), (0.18, 0.48), (-0.18, 0.48),
    (0.08, 0.53), (-0.08, 0.53), (0.09, 0.74), (-0.09, 0.74), (0.10, 0.96), (-0.10, 0.96),
], dtype=np.float32)


@dataclass
class Person:
    """A figure of ``height`` pixels whose head-top centre moves along ``path`` (one (x, y) per frame)."""

    height: float
    path: np.ndarray  # (T, 2)
    seed: int

    def keypoints(self, t: int) -> np.ndarray:
        return TEMPLATE * self.height + self.path[t]

    def box(self, t: int) -> np.ndarray:
        kps = self.keypoints(t)
        pad = 0.02 * self.height  # a tight box, as around a pose's joints
        return np.array([kps[:, 0].min() - pad, self.path[t][1] - 0.02 * self.height,
                         kps[:, 0].max() + pad, kps[:, 1].max() + 0.03 * self.height], np.float32)


def _texture(shape: tuple[int, int], seed: int, blur: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), blur)


def _scene(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Texture at several scales, like a real scene: fine grain for small motion, large blobs so a
    coarse flow pyramid level still sees structure when the camera moves fast."""
    rng = np.random.default_rng(seed)
    out = np.zeros((*shape, 3), np.float32)
    for blur, weight in ((1.5, 0.35), (6.0, 0.35), (24.0, 0.30)):
        layer = cv2.GaussianBlur(rng.uniform(0, 1, (*shape, 3)).astype(np.float32), (0, 0), blur)
        layer = (layer - layer.mean()) / (layer.std() + 1e-6)
        out += weight * layer
    return np.clip(128 + 40 * out, 0, 255).astype(np.uint8)


def _figure_sprite(height: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured figure on its own canvas: image, mask and the canvas position of the head top."""
    h = int(np.ceil(height * 1.1)) + 8
    w = int(np.ceil(height * 0.6)) + 8
    origin = np.array([w / 2, 4], np.float32)
    kps = TEMPLATE * height + origin
    mask = np.zeros((h, w), np.uint8)
    thick = max(3, int(round(0.11 * height)))
    for a, b in COCO_SKELETON:
        cv2.line(mask, tuple(np.round(kps[a]).astype(int)), tuple(np.round(kps[b]).astype(int)), 255, thick)
    torso = np.round(kps[[5, 6, 12, 11]]).astype(np.int32)
    cv2.fillPoly(mask, [torso], 255)
    cv2.circle(mask, tuple(np.round(kps[0] + [0, -0.005 * height]).astype(int)), int(0.075 * height), 255, -1)
    # Clothing: darker or brighter than the scene (people stand out from the background in
    # luminance, which is what grey-level flow sees), with its own fine pattern.
    rng = np.random.default_rng(seed)
    base = rng.uniform(40, 80) if rng.random() < 0.5 else rng.uniform(180, 220)
    tint = np.clip(base + rng.uniform(-30, 30, 3), 0, 255).astype(np.float32)
    pattern = _texture((h, w), seed, 1.5).astype(np.float32) - 128.0
    image = np.clip(tint + 0.6 * pattern, 0, 255).astype(np.uint8)
    return image, mask, origin


def render(people: list[Person], num_frames: int, size: tuple[int, int] = (480, 320), seed: int = 0,
           camera: np.ndarray | None = None) -> list[np.ndarray]:
    """Frames ``(H, W, 3)`` uint8 BGR; people are drawn in list order (later ones in front).

    ``camera`` ``(T, 2)`` pans the background: frame ``t`` shows the scene shifted by ``-camera[t]``.
    People's paths are in frame coordinates (pan them too by subtracting ``camera``).
    """
    width, height = size
    camera = np.zeros((num_frames, 2), np.float32) if camera is None else np.asarray(camera, np.float32)
    margin = np.ceil(np.abs(camera).max(0)).astype(int) + 1
    scene = _scene((height + 2 * margin[1], width + 2 * margin[0]), seed)
    sprites = [_figure_sprite(p.height, p.seed) for p in people]
    frames = []
    for t in range(num_frames):
        pan = np.float32([[1, 0, -margin[0] - camera[t][0]], [0, 1, -margin[1] - camera[t][1]]])
        frame = cv2.warpAffine(scene, pan, (width, height), flags=cv2.INTER_LINEAR)
        for person, (image, mask, origin) in zip(people, sprites):
            dx, dy = person.path[t] - origin
            m = np.float32([[1, 0, dx], [0, 1, dy]])
            warped = cv2.warpAffine(image, m, (width, height), flags=cv2.INTER_LINEAR)
            alpha = cv2.warpAffine(mask, m, (width, height), flags=cv2.INTER_LINEAR).astype(np.float32)[..., None] / 255
            frame = (frame * (1 - alpha) + warped * alpha).astype(np.uint8)
        frames.append(frame)
    return frames


def poses_at(people: list[Person], t: int, present: list[bool] | None = None, noise: float = 0.5,
             rng: np.random.Generator | None = None) -> tuple[Poses, list[int]]:
    """Ground-truth poses of frame ``t`` as an estimator would report them, and whose they are."""
    rng = rng or np.random.default_rng(t)
    who = [i for i, _ in enumerate(people) if present is None or present[i]]
    if not who:
        return Poses.empty(17), []
    kps = np.stack([people[i].keypoints(t) for i in who]) + rng.normal(0, noise, (len(who), 17, 2))
    boxes = np.stack([people[i].box(t) for i in who])
    return Poses(kps, np.full((len(who), 17), 0.9), boxes, np.full(len(who), 0.95)), who


def linear_path(start: tuple[float, float], step: tuple[float, float], num_frames: int) -> np.ndarray:
    steps = np.arange(num_frames, dtype=np.float32)[:, None]  # (T, 1)
    return np.asarray(start, np.float32) + steps * np.asarray(step, np.float32)
