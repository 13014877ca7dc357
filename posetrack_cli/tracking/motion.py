"""A track's own motion: its velocity, where it is predicted while unseen, and how sure that is.

Optical flow cannot follow a person who is hidden (it moves their joints with whoever passes in
front) and sees nothing on textureless clothing or background, so the tracker also predicts each
track from its own recent velocity. Pure functions on small arrays; positions in frame pixels,
times in seconds (timestamps, so a variable frame rate is respected).
"""

from __future__ import annotations

import numpy as np

# Weight of the newest frame-to-frame velocity in the running average (an exponential moving
# average over about the last 3 matches): smooths keypoint noise, follows a change of pace in a few frames.
VELOCITY_SMOOTHING = 0.5
# Time constant of the velocity's decay while a track is lost. People behind a pillar mostly keep
# walking, but not for ever: after 1 s the prediction has travelled 79 % of the constant-velocity
# distance, after 2 s 63 %.
DAMPING_SECONDS = 2.0
# Growth of the predicted position's uncertainty (one standard deviation, pixels) with time lost:
# a share of the distance the velocity predicts (the speed is uncertain) ...
UNCERTAINTY_PER_DISTANCE = 0.3
# ... plus a change of pace anyone can make, in body heights per second, so a track lost while
# standing still may still have moved.
UNCERTAINTY_HEIGHTS_PER_SECOND = 0.25


def displacements(before: np.ndarray, before_valid: np.ndarray, after: np.ndarray, after_valid: np.ndarray,
                  before_boxes: np.ndarray, after_boxes: np.ndarray) -> np.ndarray:
    """Translation ``(N, 2)`` of each of ``N`` people between two observations: the median
    displacement of the joints valid in both ``(N, K, 2)`` poses (robust to a swinging limb), else
    that of the box centre ``(N, 4)``."""
    both = before_valid & after_valid  # (N, K)
    moved = np.where(both[..., None], after - before, np.inf)  # (N, K, 2), invalid joints sort last
    moved.sort(axis=1)
    count = both.sum(1)  # (N,)
    low = np.maximum((count - 1) // 2, 0)[:, None, None]
    high = np.maximum(count // 2, 0)[:, None, None]
    median = (np.take_along_axis(moved, np.broadcast_to(low, (len(moved), 1, 2)), 1)
              + np.take_along_axis(moved, np.broadcast_to(high, (len(moved), 1, 2)), 1))[:, 0] / 2  # (N, 2)
    centres = ((after_boxes[:, :2] + after_boxes[:, 2:]) - (before_boxes[:, :2] + before_boxes[:, 2:])) / 2
    return np.asarray(np.where((count > 0)[:, None], median, centres), np.float32)


def damped_distance(seconds: np.ndarray | float, tau: float = DAMPING_SECONDS) -> np.ndarray:
    """Seconds of constant-velocity travel a decaying velocity covers in ``seconds``:
    ``tau * (1 - exp(-t / tau))`` (``t`` for short times, at most ``tau``)."""
    t = np.maximum(np.asarray(seconds, np.float32), 0.0)
    return (tau * -np.expm1(-t / tau)).astype(np.float32)


def uncertainty(seconds: np.ndarray, speed: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Standard deviation ``(M,)`` in pixels of a predicted position after ``seconds`` ``(M,)`` lost,
    for tracks moving at ``speed`` ``(M,)`` px/s with body ``height`` ``(M,)`` px."""
    t = np.maximum(np.asarray(seconds, np.float32), 0.0)
    return np.asarray(UNCERTAINTY_PER_DISTANCE * speed * damped_distance(t)
                      + UNCERTAINTY_HEIGHTS_PER_SECOND * height * t, np.float32)


def keep_in_frame(keypoints: np.ndarray, valid: np.ndarray, frame_size: tuple[int, int] | None) -> np.ndarray:
    """Shift each predicted pose ``(M, K, 2)`` so its centre stays inside the frame ``(width, height)``.

    A person who walked out of the picture can only come back through its edge, so the prediction
    waits there instead of walking on outside.
    """
    if frame_size is None or not len(keypoints):
        return keypoints
    count = np.maximum(valid.sum(1), 1)[:, None]  # (M, 1)
    centre = (keypoints * valid[..., None]).sum(1) / count  # (M, 2)
    inside = np.clip(centre, 0, np.asarray(frame_size, np.float32) - 1)
    return np.asarray(keypoints + (inside - centre)[:, None, :], np.float32)
