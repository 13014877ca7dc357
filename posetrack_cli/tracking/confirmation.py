"""Confirming tracks before they are written: a person seen in a frame or two is more often an
estimator's false positive than somebody who came and went that fast.

SORT and DeepSORT keep a new track *tentative* until it has been matched in 3 frames and never
report it before; ByteTrack reports from its second frame. Either way every real person loses their
first frames. Here the frames are held back instead, ``frames - 1`` of them at most, until each
track in them is confirmed (has a pose in ``frames`` frames) or can no longer be in time: a
confirmed track is written from its first frame, one that is not is never written. The input's
two ends cut tracks short: a track seen in its first frame was there before the recording began, and
one still seen in its last frame did not end either; both count as confirmed.

The tracker keeps its side of the rule: a tentative track is not remembered once it leaves the
queue (:class:`~posetrack_cli.tracking.tracker.PoseTracker`), so two short false positives far
apart never chain into one lasting id.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Generic, Iterator, TypeVar

import numpy as np

Item = TypeVar("Item")


class Confirmation(Generic[Item]):
    """Holds frames back until their tracks are confirmed; releases them in order with a mask of
    the poses to write.

    Args:
        frames: frames a track needs a pose in to be confirmed; 1 writes every pose at once (no
            delay, the paper).

    Example:
        Track 0 is in the first frame; track 1 is seen in three frames in a row, track 2 (a false
        positive) in one: every pose of tracks 0 and 1 is written, from their first frames on, and
        track 2 never.

        >>> confirm = Confirmation(3)
        >>> released = []
        >>> for frame, ids in enumerate([[0], [0, 1, 2], [0, 1], [1], [1]]):
        ...     released += confirm.push(frame, ids)
        >>> released += confirm.flush()
        >>> [(frame, keep.tolist()) for frame, keep in released]
        [(0, [True]), (1, [True, True, False]), (2, [True, True]), (3, [True]), (4, [True])]
        >>> confirm.dropped
        1
    """

    def __init__(self, frames: int) -> None:
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        self.frames = frames
        self.hits: dict[int, int] = {}  # track id -> frames it had a pose in
        self.pending: deque[tuple[Item, np.ndarray]] = deque()  # frames held back, each with its ids (N,)
        self.dropped = 0  # poses not written: their tracks were not confirmed in time
        self.pushed = 0  # frames taken so far
        self.written: set[int] = set()  # tracks with a pose released to be written

    def push(self, item: Item, track_ids: Any) -> list[tuple[Item, np.ndarray]]:
        """Take the next frame (``item``, anything the caller wants back) with its poses' track ids
        ``(N,)``; return the frames now decided, oldest first, each with its mask ``(N,)`` of poses
        to write."""
        ids = np.asarray(track_ids, np.int64).reshape(-1)
        for tid in ids.tolist():  # the first frame's people were there before it
            self.hits[tid] = self.frames if self.pushed == 0 else self.hits.get(tid, 0) + 1
        self.pushed += 1
        self.pending.append((item, ids))
        released = []
        while len(self.pending) >= self.frames:
            released.append(self._release(*self.pending.popleft(), frozenset()))
        return released

    def flush(self) -> Iterator[tuple[Item, np.ndarray]]:
        """The input ended: every frame still held, decided (tracks seen in the last frame count as
        confirmed), oldest first. Each leaves ``pending`` as it is yielded, so a state saved between
        two of them holds the rest."""
        alive = frozenset(self.pending[-1][1].tolist()) if self.pending else frozenset()
        while self.pending:
            item, ids = self.pending.popleft()
            yield self._release(item, ids, alive)

    def confirmed(self, track_id: int) -> bool:
        """Whether the track has had a pose in enough frames to be written."""
        return self.hits.get(track_id, 0) >= self.frames

    def _release(self, item: Item, ids: np.ndarray, alive: frozenset[int]) -> tuple[Item, np.ndarray]:
        keep = np.array([self.confirmed(t) or t in alive for t in ids.tolist()], bool)
        self.dropped += int(len(keep) - keep.sum())
        self.written.update(ids[keep].tolist())
        return item, keep

    def state(self, item_state: Callable[[Item], Any]) -> dict[str, Any]:
        """A state tree (:mod:`posetrack_cli.core.state`); ``item_state`` gives each held item's."""
        return {"frames": self.frames, "hits": [[t, n] for t, n in self.hits.items()], "dropped": self.dropped,
                "pushed": self.pushed, "written": sorted(self.written),
                "pending": [{"item": item_state(item), "ids": ids} for item, ids in self.pending]}

    def load_state(self, state: dict[str, Any], item_from_state: Callable[[Any], Item]) -> None:
        """Continue from a :meth:`state` (``item_from_state`` rebuilds each held item)."""
        if int(state["frames"]) != self.frames:
            raise ValueError(f"the state confirms after {state['frames']} frames, this after {self.frames}")
        self.hits = {int(t): int(n) for t, n in state["hits"]}
        self.dropped, self.pushed = int(state["dropped"]), int(state["pushed"])
        self.written = {int(t) for t in state["written"]}
        self.pending = deque((item_from_state(p["item"]), np.asarray(p["ids"], np.int64)) for p in state["pending"])
