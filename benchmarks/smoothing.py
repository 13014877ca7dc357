"""One Euro smoothing: keypoint error against the truth for a few settings, still and moving.

A rendered person 150 px tall, keypoints with 2 px Gaussian noise (an estimator's jitter), at
30 fps, standing still, walking (1 body height per second) and moving fast (4 heights per
second); RMS error in pixels of the raw and the smoothed keypoints. Deterministic.

    python benchmarks/smoothing.py
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test figure

from posetrack_cli.core.types import Poses, TrackedFrame
from posetrack_cli.tracking.smoothing import KeypointSmoother, SmoothingConfig

from synthetic import Person

FPS, FRAMES, HEIGHT, NOISE = 30.0, 150, 150.0, 2.0
ONE_EURO = SmoothingConfig("one-euro")
SETTINGS = [None, ONE_EURO] + [replace(ONE_EURO, smooth_min_cutoff=c) for c in (0.5, 2.0)] + \
    [replace(ONE_EURO, smooth_beta=b) for b in (0.0, 5.0, 40.0)]


def rms(config: SmoothingConfig | None, speed: float) -> float:
    """RMS keypoint error (px) over frames 10.. for a person moving ``speed`` heights/s to the right."""
    path = np.stack([50 + speed * HEIGHT * np.arange(FRAMES) / FPS, np.full(FRAMES, 50.0)], 1).astype(np.float32)
    person, rng = Person(HEIGHT, path, seed=1), np.random.default_rng(0)
    smoother = KeypointSmoother(config) if config is not None else None
    errors = []
    for t in range(FRAMES):
        kps = person.keypoints(t)[None] + rng.normal(0, NOISE, (1, 17, 2))
        frame = TrackedFrame(t, t / FPS, Poses(kps, np.ones((1, 17)), person.box(t)[None], [1.0]), [0])
        out = smoother.apply(frame) if smoother is not None else frame
        if t >= 10:
            errors.append(((out.poses.keypoints[0] - person.keypoints(t)) ** 2).sum(-1))
    return float(np.sqrt(np.mean(errors)))


def main() -> None:
    print(f"# RMS keypoint error in px: {HEIGHT:g} px person, {NOISE:g} px noise, {FPS:g} fps")
    print(f"{'setting':<32} {'still':>6} {'walking 1 h/s':>14} {'fast 4 h/s':>11}")
    for config in SETTINGS:
        name = "raw" if config is None else \
            f"one-euro min_cutoff={config.smooth_min_cutoff:g} beta={config.smooth_beta:g}"
        print(f"{name:<32} {rms(config, 0):>6.2f} {rms(config, 1):>14.2f} {rms(config, 4):>11.2f}")


if __name__ == "__main__":
    main()
