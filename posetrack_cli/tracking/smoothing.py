"""Keypoint smoothing on request: the One Euro filter (Casiez, Roussel, Vogel, CHI 2012) per track.

A low-pass filter whose cutoff rises with speed: at rest it removes the estimator's jitter (low
cutoff), in fast motion it follows without lag (high cutoff). Applied to the written keypoints
only -- the tracker always matches the raw ones -- with the frames' timestamps, so a variable frame
rate is respected, and restarted whenever a track was absent from the previous frame (a gap says
nothing about where the joints were in between). Speed is measured in body heights per second, so
one setting behaves the same for a person near the camera and one far away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from posetrack_cli.core.errors import OptionsError
from posetrack_cli.core.types import Poses, TrackedFrame

SMOOTHERS = ("none", "one-euro")


@dataclass(frozen=True)
class SmoothingConfig:
    """Smoothing of the written keypoints (field names are the command-line flags).

    Attributes:
        smooth: ``none`` (raw keypoints) or ``one-euro``.
        smooth_min_cutoff: One Euro cutoff frequency in Hz at rest; lower removes more jitter
            from still joints.
        smooth_beta: how fast the cutoff rises with speed, in Hz per (body height per second);
            higher follows fast motion with less lag.
        smooth_derivative_cutoff: cutoff in Hz of the filtered speed that drives the cutoff.

    Example:
        One Euro smoothing that follows fast motion more closely than the default, for a tracker's output:

        >>> from posetrack_cli import FrameTracker, SmoothingConfig
        >>> smoothing = SmoothingConfig(smooth="one-euro", smooth_beta=40.0)
        >>> tracker = FrameTracker(flow=None, smoothing=smoothing)
        >>> SmoothingConfig(smooth_min_cutoff=0.5)  # a One Euro setting without the filter
        Traceback (most recent call last):
        ...
        posetrack_cli.core.errors.OptionsError: --smooth-min-cutoff applies to --smooth one-euro only
    """

    smooth: str = "none"  # raw keypoints unless asked: evaluation against ground truth wants them
    # The filter's paper suggests starting at 1 Hz: jitter above it is removed from still joints.
    smooth_min_cutoff: float = 1.0
    # Chosen on benchmarks/smoothing.py: with 20, a walker's keypoints (1 body height per second) are
    # no worse than raw while a still person's jitter is almost halved; lower values lag behind motion.
    smooth_beta: float = 20.0
    # The filter's paper: 1 Hz, and it rarely needs changing.
    smooth_derivative_cutoff: float = 1.0

    def __post_init__(self) -> None:
        if self.smooth not in SMOOTHERS:
            raise ValueError(f"smooth must be one of {SMOOTHERS}, got {self.smooth!r}")
        for name in ("smooth_min_cutoff", "smooth_derivative_cutoff"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0 Hz, got {value}")
        if not (math.isfinite(self.smooth_beta) and self.smooth_beta >= 0):
            raise ValueError(f"smooth_beta must be >= 0, got {self.smooth_beta}")
        if self.smooth != "one-euro":  # a One Euro setting without the filter is refused, not ignored
            given = [f"--{f.name.replace('_', '-')}" for f in fields(self)
                     if f.name != "smooth" and getattr(self, f.name) != f.default]
            if given:
                verb = "apply" if len(given) > 1 else "applies"
                raise OptionsError(f"{' and '.join(given)} {verb} to --smooth one-euro only")


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray:
    """Exponential smoothing factor of a first-order low-pass at ``cutoff`` Hz for steps of ``dt`` s."""
    tau = 1.0 / (2.0 * np.pi * np.asarray(cutoff, np.float32))
    return 1.0 / (1.0 + tau / dt)


def make_smoother(config: SmoothingConfig) -> KeypointSmoother | None:
    """The smoother ``config`` asks for, or None for raw keypoints."""
    return KeypointSmoother(config) if config.smooth == "one-euro" else None


@dataclass
class KeypointSmoother:
    """Smooths each track's keypoints frame by frame; call ``apply`` once per frame, in order.

    Only the tracks of the previous frame are remembered, so memory stays flat with video length.
    """

    config: SmoothingConfig = field(default_factory=lambda: SmoothingConfig("one-euro"))
    # track id -> (timestamp, filtered keypoints (K, 2), filtered velocity (K, 2) in px/s)
    _state: dict[int, tuple[float, np.ndarray, np.ndarray]] = field(default_factory=dict, init=False)

    def reset(self) -> None:
        """Forget every track (a new video)."""
        self._state.clear()

    def state(self) -> list[list[Any]]:
        """Each track's filter, as a state tree (:mod:`posetrack_cli.core.state`), to resume a video."""
        return [[tid, t, x, v] for tid, (t, x, v) in self._state.items()]

    def load_state(self, state: list[list[Any]]) -> None:
        """Continue from a :meth:`state`."""
        self._state = {int(tid): (float(t), x, v) for tid, t, x, v in state}

    def apply(self, frame: TrackedFrame) -> TrackedFrame:
        """The same frame with each pose's keypoints filtered; scores, boxes, ids kept as they are."""
        cfg = self.config
        raw = frame.poses.keypoints  # (N, K, 2)
        out = raw.copy()
        state: dict[int, tuple[float, np.ndarray, np.ndarray]] = {}
        heights = np.maximum(frame.poses.boxes[:, 3] - frame.poses.boxes[:, 1], 1.0)  # (N,)
        for i, tid in enumerate(frame.track_ids.tolist()):
            previous = self._state.get(tid)
            if previous is None or not frame.timestamp > previous[0]:  # new, back after a gap, or time stood still
                state[tid] = (frame.timestamp, raw[i].copy(), np.zeros_like(raw[i]))
                continue
            t0, x0, v0 = previous
            dt = float(frame.timestamp - t0)
            velocity = v0 + _alpha(cfg.smooth_derivative_cutoff, dt) * ((raw[i] - x0) / dt - v0)  # (K, 2) px/s
            speed = np.sqrt((velocity ** 2).sum(-1, keepdims=True)) / heights[i]  # (K, 1) heights/s
            x = x0 + _alpha(cfg.smooth_min_cutoff + cfg.smooth_beta * speed, dt) * (raw[i] - x0)
            out[i] = x
            state[tid] = (frame.timestamp, x, velocity)
        self._state = state
        poses = Poses(out, frame.poses.keypoint_scores, frame.poses.boxes, frame.poses.scores)
        return TrackedFrame(frame.frame_index, frame.timestamp, poses, frame.track_ids, frame.sources, frame.matches)
