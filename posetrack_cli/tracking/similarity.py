"""Pose and box similarity matrices for matching new poses to tracked ones (paper section 3.3).

Pure vectorised functions; shapes in each docstring. OKS is COCO's object keypoint similarity with
the object's area taken from its box, as the paper does for tracking.

The tracker asks a :class:`Similarity` for its matrix: :class:`FlowOKS` (the paper's default),
:class:`OKS` and :class:`BoxIoU` (its ablations), looked up by name with :func:`similarity_named`
(the names are what ``--similarity`` and the settings record say), or one of the caller's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar, Protocol

import numpy as np

from posetrack_cli.core.boxes import box_iou


def oks_matrix(
    tracked: np.ndarray,
    tracked_valid: np.ndarray,
    new: np.ndarray,
    new_valid: np.ndarray,
    new_areas: np.ndarray,
    sigmas: np.ndarray,
    tracked_spread: np.ndarray | None = None,
) -> np.ndarray:
    """OKS between every tracked pose and every new pose.

    ``OKS = mean over joints valid in both of exp(-d^2 / (2 * area * (2 sigma)^2))``; 0 where two
    poses share no valid joint. The new pose's box area is the scale (it is this frame's observation).
    ``tracked_spread`` widens it for tracked poses whose position is uncertain (a prediction for a
    person unseen for a while): its square is added to each joint's variance ``area * (2 sigma)^2``.

    Args:
        tracked: ``(M, K, 2)`` keypoints of tracked poses (propagated to this frame for flow-OKS).
        tracked_valid: ``(M, K)`` bool, joints confident enough to compare.
        new: ``(N, K, 2)`` keypoints of this frame's poses.
        new_valid: ``(N, K)`` bool.
        new_areas: ``(N,)`` box areas of the new poses in square pixels.
        sigmas: ``(K,)`` per-joint falloff (COCO's).
        tracked_spread: ``(M,)`` standard deviation in pixels of each tracked pose's position, or None.

    Returns:
        ``(M, N)`` float32 in ``[0, 1]``.
    """
    variances = np.square(2.0 * np.asarray(sigmas, np.float32))  # (K,)
    scale = (2.0 * np.maximum(np.asarray(new_areas, np.float32), 1.0))[:, None] * variances  # (N, K)
    if tracked_spread is not None:
        extra = 2.0 * np.square(np.asarray(tracked_spread, np.float32))  # (M,)
        if len(extra) and np.all(extra == extra[0]):  # one spread for all (a joint's noise): (N, K) stays
            scale = scale + extra[0]
        else:
            scale = scale[None] + extra[:, None, None]  # (M, N, K)
    # x and y apart (a reduction over a length-2 axis is slow in numpy), in place where possible
    t, n = np.asarray(tracked, np.float32), np.asarray(new, np.float32)
    tx, ty = np.ascontiguousarray(t[..., 0]), np.ascontiguousarray(t[..., 1])  # (M, K)
    nx, ny = np.ascontiguousarray(n[..., 0]), np.ascontiguousarray(n[..., 1])  # (N, K)
    d = tx[:, None] - nx[None]  # (M, N, K)
    d *= d
    dy = ty[:, None] - ny[None]
    dy *= dy
    d += dy
    d /= scale
    np.negative(d, out=d)
    np.exp(d, out=d)
    tracked_on, new_on = np.asarray(tracked_valid, np.float32), np.asarray(new_valid, np.float32)
    d *= tracked_on[:, None]
    total = np.einsum("mnk,nk->mn", d, new_on)  # over the joints valid in both
    count = tracked_on @ new_on.T  # (M, N) joints valid in both
    return np.where(count > 0, total / np.maximum(count, 1), 0.0).astype(np.float32)


# Joints two poses must share for their spread to tell their sizes apart; with fewer, the boxes do.
SIZE_JOINTS = 3


def size_ratio(tracked: np.ndarray, tracked_valid: np.ndarray, tracked_boxes: np.ndarray, new: np.ndarray,
               new_valid: np.ndarray, new_boxes: np.ndarray) -> np.ndarray:
    """How much larger each new person is than each tracked one ``(M, N)``: the ratio of the RMS
    spread about their centroid of the joints valid in both poses (at least ``SIZE_JOINTS``), else
    of the box heights.

    A box spans only the joints seen, so a person half hidden has a short box; the spread of the
    joints both poses show measures the same body parts, whatever else is hidden.

    Args:
        tracked: ``(M, K, 2)``, with ``tracked_valid (M, K)`` and xyxy ``tracked_boxes (M, 4)``.
        new: ``(N, K, 2)``, with ``new_valid (N, K)`` and ``new_boxes (N, 4)``.

    Example:
        A person whose legs went out of view: the box halves, the shared joints keep their size.

        >>> import numpy as np
        >>> body = np.stack([np.zeros(17), np.linspace(0, 160, 17)], -1)[None].astype(np.float32)
        >>> legs_out = np.arange(17)[None] < 9
        >>> ratio = size_ratio(body, np.ones((1, 17), bool), np.array([[0, 0, 10, 160]], np.float32),
        ...                    body, legs_out, np.array([[0, 0, 10, 80]], np.float32))
        >>> float(ratio[0, 0])
        1.0
    """
    both = tracked_valid[:, None] & new_valid[None]  # (M, N, K)
    count = both.sum(-1)  # (M, N)

    def spread(points: np.ndarray) -> np.ndarray:  # (P, K, 2) -> (M, N) RMS distance about the centroid
        p = np.where(both[..., None], points, 0.0)
        centre = p.sum(-2, keepdims=True) / np.maximum(count, 1)[..., None, None]
        squared = np.where(both, np.square(p - centre).sum(-1), 0.0).sum(-1)
        rms: np.ndarray = np.sqrt(squared / np.maximum(count, 1))
        return rms

    with np.errstate(divide="ignore", invalid="ignore"):
        joints = spread(new[None]) / spread(tracked[:, None])
        heights = (np.maximum(new_boxes[:, 3] - new_boxes[:, 1], 1.0)[None, :]
                   / np.maximum(tracked_boxes[:, 3] - tracked_boxes[:, 1], 1.0)[:, None])
    ratio: np.ndarray = np.where((count >= SIZE_JOINTS) & np.isfinite(joints) & (joints > 0), joints, heights)
    return ratio.astype(np.float32)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU ``(M, N)`` of xyxy boxes ``a (M, 4)`` and ``b (N, 4)`` (torchvision's ``box_iou`` values,
    computed in numpy: :func:`posetrack_cli.core.boxes.box_iou`)."""
    return box_iou(a, b)


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """Areas ``(N,)`` of xyxy boxes ``(N, 4)``."""
    boxes = np.asarray(boxes, np.float32)
    areas: np.ndarray = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    return areas


class Similarity(Protocol):
    """How the tracker compares its tracked poses with a frame's new poses.

    The tracker calls :meth:`matrix` twice a frame: with the queued poses of the last ``L_Q``
    frames (carried to this frame by the optical flow first when :attr:`uses_flow` is true; their
    boxes stay as observed), and with each live track's last pose moved by its own velocity
    (keypoints and boxes shifted alike). Pairs scoring below the tracker's ``min_similarity`` are
    never matched, so the values should be on OKS's and IoU's scale, ``[0, 1]``, higher is closer.

    Attributes:
        name: what it is called; the built-ins' names are ``--similarity``'s choices and what the
            track file's ``info.settings`` records.
        uses_flow: whether queued poses are carried to the new frame by the flow before comparing.

    Example:
        A similarity of the caller's own: box centres closer than a box height apart.

        >>> from dataclasses import dataclass
        >>> import numpy as np
        >>> from posetrack_cli.core.types import Poses
        >>> from posetrack_cli.tracking.tracker import PoseTracker
        >>> @dataclass(frozen=True)
        ... class CentreDistance:
        ...     name = "centres"
        ...     uses_flow = False
        ...     def matrix(self, tracked_keypoints, tracked_valid, tracked_boxes,
        ...                new_keypoints, new_valid, new_boxes, new_areas, sigmas, tracked_spread=None):
        ...         centre = lambda b: (b[..., :2] + b[..., 2:]) / 2
        ...         distance = np.linalg.norm(centre(tracked_boxes)[:, None] - centre(new_boxes)[None], axis=-1)
        ...         height = new_boxes[None, :, 3] - new_boxes[None, :, 1]
        ...         return np.clip(1 - distance / height, 0, 1).astype(np.float32)
        >>> def frame(x):  # one person, 17 joints down the middle of a 20 x 80 px box from x
        ...     kps = np.stack([np.full(17, x + 10), np.linspace(0, 80, 17)], -1).astype(np.float32)
        ...     box = np.array([[x, 0, x + 20, 80]], np.float32)
        ...     return Poses(kps[None], np.ones((1, 17), np.float32), box, np.ones(1, np.float32))
        >>> tracker = PoseTracker(similarity=CentreDistance())
        >>> [tracker.update(frame(x)).tolist() for x in (0, 30, 300)]
        [[0], [0], [1]]
    """

    @property
    def name(self) -> str: ...

    @property
    def uses_flow(self) -> bool: ...

    def matrix(
        self,
        tracked_keypoints: np.ndarray,
        tracked_valid: np.ndarray,
        tracked_boxes: np.ndarray,
        new_keypoints: np.ndarray,
        new_valid: np.ndarray,
        new_boxes: np.ndarray,
        new_areas: np.ndarray,
        sigmas: np.ndarray,
        tracked_spread: np.ndarray | None = None,
    ) -> np.ndarray:
        """Similarity ``(M, N)`` of every tracked pose to every new pose.

        Args:
            tracked_keypoints: ``(M, K, 2)`` keypoints of the tracked poses, in this frame's pixels
                (carried by the flow if :attr:`uses_flow`, or by the track's own motion).
            tracked_valid: ``(M, K)`` bool, their joints confident enough to compare.
            tracked_boxes: ``(M, 4)`` xyxy boxes of the tracked poses.
            new_keypoints: ``(N, K, 2)`` keypoints of this frame's poses.
            new_valid: ``(N, K)`` bool.
            new_boxes: ``(N, 4)`` xyxy boxes of this frame's poses.
            new_areas: ``(N,)`` areas of ``new_boxes`` in square pixels (OKS's scale).
            sigmas: ``(K,)`` OKS falloff per joint.
            tracked_spread: ``(M,)`` standard deviation in pixels of each tracked pose's position
                where it is a prediction (a track's own motion), or None: a similarity that can,
                widens its tolerance by it.

        Returns:
            ``(M, N)`` float32, higher is more alike.
        """
        ...


@dataclass(frozen=True)
class OKS:
    """OKS of the tracked poses where they were last seen (no flow): one of the paper's ablations.

    Example:
        >>> import numpy as np
        >>> pose = np.array([[[10.0, 10.0], [20.0, 30.0]]], np.float32)  # (1, K=2, 2)
        >>> valid = np.ones((1, 2), bool)
        >>> box = np.array([[0.0, 0.0, 40.0, 80.0]], np.float32)
        >>> sim = OKS().matrix(pose, valid, box, pose + np.float32([3, 0]), valid, box, box_areas(box),
        ...                    np.array([0.1, 0.1], np.float32))
        >>> OKS.name, OKS.uses_flow, sim.shape, round(float(sim[0, 0]), 3)
        ('oks', False, (1, 1), 0.965)
    """

    name: ClassVar[str] = "oks"
    uses_flow: ClassVar[bool] = False

    def matrix(
        self,
        tracked_keypoints: np.ndarray,
        tracked_valid: np.ndarray,
        tracked_boxes: np.ndarray,
        new_keypoints: np.ndarray,
        new_valid: np.ndarray,
        new_boxes: np.ndarray,
        new_areas: np.ndarray,
        sigmas: np.ndarray,
        tracked_spread: np.ndarray | None = None,
    ) -> np.ndarray:
        """:func:`oks_matrix` ``(M, N)`` of the tracked keypoints ``(M, K, 2)`` to the new ones
        ``(N, K, 2)`` with the new boxes' areas ``(N,)`` as scale, widened by ``tracked_spread``;
        for a pair that shares no confident joint (a person entering the picture hand first, then
        showing their elbow), which OKS cannot compare, the IoU of their boxes ``(M, 4)``, ``(N, 4)``."""
        oks = oks_matrix(tracked_keypoints, tracked_valid, new_keypoints, new_valid, new_areas, sigmas, tracked_spread)
        disjoint = (tracked_valid.astype(np.float32) @ new_valid.T.astype(np.float32)) == 0  # (M, N)
        if disjoint.any():
            oks = np.where(disjoint, iou_matrix(tracked_boxes, new_boxes), oks).astype(np.float32)
        return oks


@dataclass(frozen=True)
class FlowOKS(OKS):
    """OKS of the tracked poses after the optical flow carried them to this frame: the paper's default.

    The comparison is :class:`OKS`'s; only the tracker's carrying of its queue differs.

    Example:
        >>> import numpy as np
        >>> pose = np.array([[[10.0, 10.0], [20.0, 30.0]]], np.float32)  # (1, K=2, 2), already carried
        >>> valid = np.ones((1, 2), bool)
        >>> box = np.array([[0.0, 0.0, 40.0, 80.0]], np.float32)
        >>> sim = FlowOKS().matrix(pose, valid, box, pose, valid, box, box_areas(box), np.array([0.1, 0.1], np.float32))
        >>> FlowOKS.name, FlowOKS.uses_flow, sim.tolist()
        ('flow-oks', True, [[1.0]])
    """

    name: ClassVar[str] = "flow-oks"
    uses_flow: ClassVar[bool] = True


@dataclass(frozen=True)
class BoxIoU:
    """IoU of the tracked poses' boxes (as observed, no flow) with the new ones: one of the paper's ablations.

    Example:
        >>> import numpy as np
        >>> tracked = np.array([[0.0, 0.0, 10.0, 10.0]], np.float32)
        >>> new = np.array([[5.0, 0.0, 15.0, 10.0], [50.0, 50.0, 60.0, 60.0]], np.float32)
        >>> kps, valid = np.zeros((2, 1, 2), np.float32), np.ones((2, 1), bool)  # (N, K=1, 2): not used
        >>> sim = BoxIoU().matrix(kps[:1], valid[:1], tracked, kps, valid, new, box_areas(new), np.ones(1, np.float32))
        >>> BoxIoU.name, BoxIoU.uses_flow, [round(float(v), 3) for v in sim[0]]
        ('iou', False, [0.333, 0.0])
    """

    name: ClassVar[str] = "iou"
    uses_flow: ClassVar[bool] = False

    def matrix(
        self,
        tracked_keypoints: np.ndarray,
        tracked_valid: np.ndarray,
        tracked_boxes: np.ndarray,
        new_keypoints: np.ndarray,
        new_valid: np.ndarray,
        new_boxes: np.ndarray,
        new_areas: np.ndarray,
        sigmas: np.ndarray,
        tracked_spread: np.ndarray | None = None,
    ) -> np.ndarray:
        """:func:`iou_matrix` ``(M, N)`` of the tracked boxes ``(M, 4)`` and the new ones ``(N, 4)``;
        keypoints, areas, sigmas and the spread are not used."""
        return iou_matrix(tracked_boxes, new_boxes)


# The built-in similarities by name, the paper's default first (the order of ``--similarity``'s choices).
SIMILARITY_BY_NAME: Mapping[str, Similarity] = MappingProxyType({s.name: s for s in (FlowOKS(), OKS(), BoxIoU())})


def similarity_named(name: str) -> Similarity:
    """The built-in similarity called ``name`` (``flow-oks``, ``oks`` or ``iou``).

    Raises:
        ValueError: for any other name.

    Example:
        >>> similarity_named("flow-oks")
        FlowOKS()
        >>> similarity_named("iou").uses_flow
        False
    """
    try:
        return SIMILARITY_BY_NAME[name]
    except KeyError:
        raise ValueError(f"similarity must be one of {tuple(SIMILARITY_BY_NAME)}, got {name!r}") from None
