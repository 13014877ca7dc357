"""One Euro smoothing of each track's written keypoints."""

from __future__ import annotations

import numpy as np
import pytest

from posetrack_cli.core.types import Poses, TrackedFrame
from posetrack_cli.tracking.smoothing import KeypointSmoother, SmoothingConfig

from synthetic import Person, linear_path


def frames_of(path: np.ndarray, times: np.ndarray, noise: float, ids=None, seed: int = 0) -> list[TrackedFrame]:
    """One person (height 150) along ``path`` (T, 2), with Gaussian keypoint noise, at ``times``."""
    person, rng = Person(150, path, seed=1), np.random.default_rng(seed)
    out = []
    for t, time in enumerate(times):
        kps = person.keypoints(t)[None] + rng.normal(0, noise, (1, 17, 2))
        scores = rng.uniform(0.5, 1.0, (1, 17))
        poses = Poses(kps, scores, person.box(t)[None], [0.9])
        out.append(TrackedFrame(t, float(time), poses, [0 if ids is None else ids[t]], matches=["live"]))
    return out


def smooth(frames: list[TrackedFrame], config: SmoothingConfig | None = None) -> list[TrackedFrame]:
    smoother = KeypointSmoother(config or SmoothingConfig("one-euro"))
    return [smoother.apply(f) for f in frames]


def error(frames: list[TrackedFrame], truth: np.ndarray, skip: int = 10) -> float:
    person = Person(150, truth, seed=1)
    return float(np.sqrt(np.mean([(f.poses.keypoints[0] - person.keypoints(i)) ** 2
                                  for i, f in enumerate(frames) if i >= skip])))


def test_still_person_jitter_is_removed_and_scores_stay_raw() -> None:
    n = 90
    path = np.tile(np.float32([[200, 50]]), (n, 1))
    raw = frames_of(path, np.arange(n) / 30, noise=2.0)
    smoothed = smooth(raw)
    assert error(smoothed, path) < 0.7 * error(raw, path)
    for r, s in zip(raw, smoothed):
        np.testing.assert_array_equal(s.poses.keypoint_scores, r.poses.keypoint_scores)
        np.testing.assert_array_equal(s.poses.boxes, r.poses.boxes)
        assert s.track_ids.tolist() == r.track_ids.tolist() and s.matches.tolist() == ["live"]


def test_walker_is_followed_with_little_lag() -> None:
    # Walking at one body height per second: smoothed keypoints stay within a few pixels of the truth.
    n = 90
    path = linear_path((50, 50), (150 / 30, 0), n)
    smoothed = smooth(frames_of(path, np.arange(n) / 30, noise=0.0))
    assert error(smoothed, path) < 0.5 * error(smoothed[:1] * n, path)  # sanity: far better than standing still
    assert error(smoothed, path) < 4.0


def test_timestamps_not_frame_counts_set_the_filter() -> None:
    # Variable frame rate: the same jump after a long interval is believed more than after a short one
    # (beta 0: a plain 1 Hz low-pass, so speed does not enter).
    n = 12
    path = np.tile(np.float32([[200, 50]]), (n, 1))
    path[-1] += [20, 0]  # the person moved 20 px by the last frame
    moved = {}
    for last_gap in (1 / 60, 0.5):
        times = np.r_[np.arange(n - 1) / 60, (n - 2) / 60 + last_gap]
        low_pass = SmoothingConfig("one-euro", smooth_beta=0.0)
        last = smooth(frames_of(path, times, noise=0.0), low_pass)[-1].poses.keypoints[0]
        moved[last_gap] = float(np.median(last[:, 0] - Person(150, path, seed=1).keypoints(0)[:, 0]))
    assert moved[1 / 60] < 5 and moved[0.5] > 12, moved


def test_filter_restarts_when_a_track_was_absent() -> None:
    n = 20
    path = np.tile(np.float32([[200, 50]]), (n, 1))
    path[10:] += [100, 0]  # back after a gap somewhere else
    frames = frames_of(path, np.arange(n) / 30, noise=0.0)
    smoother = KeypointSmoother()
    for f in frames[:9]:
        smoother.apply(f)
    empty = TrackedFrame(9, 9 / 30, Poses.empty(17), np.zeros(0, np.int64))
    smoother.apply(empty)
    np.testing.assert_allclose(smoother.apply(frames[10]).poses.keypoints, frames[10].poses.keypoints)


@pytest.mark.parametrize("bad", [{"smooth_min_cutoff": 0}, {"smooth_beta": -1},
                                 {"smooth_derivative_cutoff": float("nan")}, {"smooth": "kalman"}])
def test_config_rejects_bad_values(bad) -> None:
    with pytest.raises(ValueError):
        SmoothingConfig(**bad)
