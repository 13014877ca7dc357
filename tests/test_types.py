"""Core types refuse wrong shapes where they are made and keep their type under selection."""

from __future__ import annotations

import numpy as np
import pytest

from posetrack_cli.core.types import Detections, Poses, TrackedFrame


def test_wrong_shapes_name_the_expected_shape() -> None:
    with pytest.raises(ValueError, match=r"boxes must have shape \(N, 4\), got \(3, 5\)"):
        Detections(np.zeros((3, 5)), np.ones(3))
    with pytest.raises(ValueError, match=r"keypoint_scores must have shape \(N, 17\), got \(2, 16\)"):
        Poses(np.zeros((2, 17, 2)), np.zeros((2, 16)), np.zeros((2, 4)), np.zeros(2))
    with pytest.raises(ValueError, match="scores has 2 rows but boxes has 3"):
        Detections(np.zeros((3, 4)), np.ones(2))
    poses = Poses.empty(17)
    with pytest.raises(ValueError, match=r"track_ids must have shape \(0,\)"):
        TrackedFrame(0, 0.0, poses, np.zeros(2))


def test_mask_and_index_selection_keep_the_type_and_dtypes() -> None:
    poses = Poses(np.random.rand(4, 17, 2), np.random.rand(4, 17), np.random.rand(4, 4), [0.9, 0.2, 0.8, 0.1])
    strong = poses[poses.scores > 0.5]
    assert isinstance(strong, Poses) and len(strong) == 2
    assert strong.keypoints.dtype == np.float32 and strong.keypoints.shape == (2, 17, 2)
    np.testing.assert_array_equal(poses[[3, 0]].scores, np.float32([0.1, 0.9]))
    with pytest.raises(IndexError, match=r"mask must have shape \(4,\)"):
        poses[np.array([True, False])]
    both = Poses.concatenate([poses, strong])
    assert len(both) == 6 and both.num_keypoints == 17
