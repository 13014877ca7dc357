"""Offline stitching: after the video, join tracklets whose end and start fit (``--stitch``).

The online tracker decides when a person reappears, with only the past to go on. After the video
the start of the new tracklet is known too: where it went next and how fast. A tracklet ``a`` that
ends is joined to a tracklet ``b`` that begins later when

- the gap is at most ``max_lost`` seconds (the online lost memory's) and they never overlap in time;
- ``b``'s first pose fits where ``a`` went, under the better of three explanations: ``a`` walked
  on (its end velocity, damped), ``b`` came from where it was first seen (its start velocity,
  run backwards), or the person turned round or waited while unseen (``a``'s last position) --
  compared by OKS widened by the uncertainty of the gap, as the online lost memory does, and
  at least the tracker's ``min_similarity``;
- the body sizes agree and the torso colours, when both are known, do not veto it;
- the pair is a clear winner: no other end or start fits nearly as well.

A pure function of the tracker's ``Tracklet`` summaries; it returns the ids to rewrite, which the
writer applies to the outputs before committing them.
"""

from __future__ import annotations

import numpy as np

from posetrack_cli.core.keypoints import COCO_SIGMAS
from posetrack_cli.tracking.appearance import histogram_distance
from posetrack_cli.tracking.motion import damped_distance, uncertainty
from posetrack_cli.tracking.similarity import oks_matrix, size_ratio
from posetrack_cli.tracking.tracker import (
    APPEARANCE_VETO,
    MAX_SIZE_RATIO,
    TIE_MARGIN,
    TrackerConfig,
    Tracklet,
    clear_winners,
)


def _height(box: np.ndarray) -> float:
    return float(max(box[3] - box[1], 1.0))


def _fit(a: Tracklet, b: Tracklet, sigmas: np.ndarray) -> float:
    """How well ``b``'s start continues ``a``'s end, in [0, 1] (OKS under the best explanation)."""
    gap = b.first_time - a.last_time
    travel = float(damped_distance(gap))
    speed = max(float(np.hypot(*a.end_velocity)), float(np.hypot(*b.start_velocity)))
    spread = uncertainty(np.array([gap]), np.array([speed]), np.array([_height(a.last_box)]))
    hypotheses = np.stack([
        a.last_keypoints + a.end_velocity * travel,  # walked on
        a.last_keypoints + b.start_velocity * travel,  # b walked in the way it went on
        a.last_keypoints,  # turned round or waited
    ])  # (3, K, 2)
    valid = np.repeat(a.last_valid[None], 3, axis=0)
    area = (b.first_box[2] - b.first_box[0]) * (b.first_box[3] - b.first_box[1])
    sim = oks_matrix(hypotheses, valid, b.first_keypoints[None], b.first_valid[None], np.array([area]), sigmas,
                     np.repeat(spread, 3))
    return float(sim.max())


def stitch(tracklets: list[Tracklet], config: TrackerConfig, sigmas: np.ndarray = COCO_SIGMAS) -> dict[int, int]:
    """Id remapping ``{old_id: new_id}`` that joins tracklets belonging to one person.

    Chains collapse to the earliest id (``a -> b -> c`` maps ``b`` and ``c`` to ``a``); ids not in
    the mapping keep theirs. Each tracklet is joined to at most one successor and one predecessor.

    Args:
        tracklets: the tracker's summaries (``PoseTracker.tracklets()``).
        config: the tracker's settings: ``max_lost`` is the longest gap in seconds between an end
            and a start that may be joined, ``min_similarity`` the lowest fit (OKS) considered,
            as online.
        sigmas: ``(K,)`` OKS falloff per joint.
    """
    n = len(tracklets)
    max_gap, min_similarity = config.max_lost, config.min_similarity
    if n < 2 or max_gap <= 0:
        return {}
    score = np.zeros((n, n), np.float32)  # (ends, starts)
    admissible = np.zeros((n, n), bool)
    for i, a in enumerate(tracklets):
        for j, b in enumerate(tracklets):
            gap = b.first_time - a.last_time
            if i == j or not 0 < gap <= max_gap or b.first_frame <= a.last_frame:
                continue
            ratio = float(size_ratio(a.last_keypoints[None], a.last_valid[None], a.last_box[None],
                                     b.first_keypoints[None], b.first_valid[None], b.first_box[None])[0, 0])
            if not 1 / MAX_SIZE_RATIO <= ratio <= MAX_SIZE_RATIO:
                continue
            if a.appearance is not None and b.appearance is not None \
                    and histogram_distance(a.appearance[None], b.appearance[None])[0, 0] > APPEARANCE_VETO:
                continue
            score[i, j] = _fit(a, b, sigmas)
            admissible[i, j] = score[i, j] >= min_similarity
    predecessor = {j: i for i, j in clear_winners(score, admissible, TIE_MARGIN)}
    mapping = {}
    for j in range(n):
        root = j
        while root in predecessor:
            root = predecessor[root]
        if root != j:
            mapping[tracklets[j].track_id] = tracklets[root].track_id
    return mapping
