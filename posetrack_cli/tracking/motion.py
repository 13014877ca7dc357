"""A track's own motion: its velocity, where it is predicted while unseen, and how sure that is.

Optical flow cannot follow a person who is hidden (it moves their joints with whoever passes in
front) and sees nothing on textureless clothing or background, so the tracker also predicts each
track from its own recent velocity. Pure functions on small arrays; positions in frame pixels,
times in seconds (timestamps, so a variable frame rate is respected).
"""

from __future__ import annotations

import numpy as np

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


# A track's velocity is a constant-velocity Kalman filter per axis (isotropic: one variance for
# both), in units of the person's body height so one setting suits people near and far:
# - before its first move is seen, a person may be walking in any direction at up to about a run;
VELOCITY_PRIOR_HEIGHTS = 1.5  # standard deviation of the unknown velocity, body heights per second
# - a person changes pace and direction, and a hand-held camera turns, which moves everyone in
#   the picture (the process noise: acceleration in the image; chosen on benchmarks/tracking.py);
ACCELERATION_HEIGHTS = 4.0  # standard deviation, body heights per second squared
# - and a pose's position is measured with the joints' jitter.
POSITION_NOISE_HEIGHTS = 0.03  # standard deviation, body heights


def velocity_update(velocity: np.ndarray, variance: np.ndarray, moved: np.ndarray, dt: np.ndarray,
                    height: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One Kalman step of ``M`` tracks' velocities ``(M, 2)`` px/s with variances ``(M,)`` px^2/s^2,
    given how far each pose ``moved`` ``(M, 2)`` px in ``dt`` ``(M,)`` seconds, for bodies ``height``
    ``(M,)`` px tall: the prediction widens by the acceleration a person may have had, and the
    measured velocity ``moved / dt`` (noisy by two positions' jitter over ``dt``) pulls it in
    proportion to how sure each is. Tracks with ``dt`` 0 keep their velocity.

    Example:
        A new track (no velocity known) seen moving 10 px in 0.04 s, twice:

        >>> import numpy as np
        >>> v, var = np.zeros((1, 2), np.float32), initial_velocity_variance(np.array([200.0]))
        >>> for _ in range(2):
        ...     v, var = velocity_update(v, var, np.array([[10.0, 0.0]]), np.array([0.04]), np.array([200.0]))
        >>> [round(float(x)) for x in v[0]], round(float(np.sqrt(var[0])))
        ([201, 0], 136)
    """
    dt = np.asarray(dt, np.float32)
    h = np.asarray(height, np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        predicted = variance + np.square(ACCELERATION_HEIGHTS * h * dt)
        noise = 2.0 * np.square(POSITION_NOISE_HEIGHTS * h / dt)  # variance of moved / dt
        gain = predicted / (predicted + noise)
        measured = moved / dt[:, None]
    ok = dt > 0
    new_velocity = np.where(ok[:, None], velocity + gain[:, None] * (measured - velocity), velocity)
    new_variance = np.where(ok, (1.0 - gain) * predicted, variance)
    return new_velocity.astype(np.float32), new_variance.astype(np.float32)


def initial_velocity_variance(height: np.ndarray) -> np.ndarray:
    """The velocity variance ``(M,)`` px^2/s^2 of tracks just started, bodies ``height`` ``(M,)`` px."""
    variance: np.ndarray = np.square(VELOCITY_PRIOR_HEIGHTS * np.asarray(height, np.float32)).astype(np.float32)
    return variance


def prediction_spread(variance: np.ndarray, seconds: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Standard deviation ``(M,)`` px of where tracks are predicted ``seconds`` ``(M,)`` after they were
    last seen, from their velocity variance ``(M,)`` and the acceleration since, plus the jitter of
    the pose they were last seen in."""
    t = np.maximum(np.asarray(seconds, np.float32), 0.0)
    h = np.asarray(height, np.float32)
    velocity_var = np.asarray(variance, np.float32) + np.square(ACCELERATION_HEIGHTS * h * t) / 3.0
    spread: np.ndarray = (np.sqrt(velocity_var) * t + POSITION_NOISE_HEIGHTS * h).astype(np.float32)
    return spread


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
