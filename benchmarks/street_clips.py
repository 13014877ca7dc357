"""Benchmark clips of real people, made from the shared 5-frame street video.

The shared clip (``/work/shared/data/video/street_5frames.mp4``, 960x540, a shopping street) is
played forward and back (0 1 2 3 4 3 2 1 0 1 ...) to the length asked for, then written as two
1280x720 mp4s at 30 fps (a common camera rate; posetrack's tracker counts time in seconds):

* ``street``: each frame scaled to 1280x720 (about 4 people large enough to be found);
* ``street 2x2``: four copies at 640x360 tiled into 1280x720, each tile one frame further along
  the forward-and-back sequence so that the tiles differ (about 10 people, smaller).

How many people a detector actually finds is measured by the benchmark, not assumed here.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

STREET = Path("/work/shared/data/video/street_5frames.mp4")
SIZE = (1280, 720)  # (width, height) of every clip
FPS = 30.0
CLIPS = ("street", "street 2x2")


def read_frames(path: Path) -> list[np.ndarray]:
    """Every frame of ``path`` as ``(H, W, 3)`` uint8 BGR; an error when none decodes."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if not frames:
        raise RuntimeError(f"{path}: no frame could be decoded")
    return frames


def ping_pong(count: int, length: int) -> list[int]:
    """Indices ``0 .. count-1`` played forward then back, repeated to ``length`` entries."""
    cycle = list(range(count)) + list(range(count - 2, 0, -1))
    return [cycle[i % len(cycle)] for i in range(length)]


def compose(frames: list[np.ndarray], name: str, t: int) -> np.ndarray:
    """Frame ``t`` of clip ``name`` (one of :data:`CLIPS`), ``(720, 1280, 3)`` uint8 BGR."""
    order = ping_pong(len(frames), t + 4)
    if name == "street":
        return cv2.resize(frames[order[t]], SIZE, interpolation=cv2.INTER_LINEAR)
    if name == "street 2x2":
        half = (SIZE[0] // 2, SIZE[1] // 2)
        tiles = [cv2.resize(frames[order[t + i]], half, interpolation=cv2.INTER_AREA) for i in range(4)]
        return np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])])
    raise ValueError(f"unknown clip {name!r}; known: {', '.join(CLIPS)}")


def make_clip(path: Path, name: str, length: int, source: Path = STREET) -> None:
    """Write clip ``name`` of ``length`` frames to ``path`` (mp4v)."""
    frames = read_frames(source)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot write mp4v here")
    for t in range(length):
        writer.write(compose(frames, name, t))
    writer.release()
