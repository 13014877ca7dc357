"""Run a producer ahead of its consumer in a background thread, through a small bounded queue."""

from __future__ import annotations

import queue
import threading
from typing import Generator, Iterable, TypeVar, cast

T = TypeVar("T")
_DONE = object()


def prefetch(items: Iterable[T], depth: int) -> Generator[T, None, None]:
    """Yield ``items`` in order while a background thread produces up to ``depth`` of them ahead.

    Used to decode video frames while the models work: memory stays bounded by ``depth`` items
    however long the video. An exception in the producer is raised in the consumer at the point
    it would have occurred; closing the generator (a ``break``, an error, Ctrl-C) stops the
    producer at its next item.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    buffer: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(exc)
            return
        put(_DONE)

    thread = threading.Thread(target=produce, name="posetrack-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield cast(T, item)
    finally:
        stop.set()
        thread.join(timeout=5)
