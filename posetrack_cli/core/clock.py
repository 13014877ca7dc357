"""How long this process has been running, in wall and CPU seconds: the time to a run's first frame.

A user waits from the moment the command starts (interpreter, imports, model files checked,
networks loaded, converted or read from the cache) to the first frame processed; the output JSON
records that wait (``info.timings``) so a slow start shows where the per-frame figures do not.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def process_age() -> float | None:
    """Wall seconds since this process started, to the kernel's clock tick (10 ms); None where the
    system does not say when a process started (Linux's ``/proc/self/stat`` does)."""
    try:
        stat = Path("/proc/self/stat").read_text()
        ticks = os.sysconf("SC_CLK_TCK")
        now = time.clock_gettime(time.CLOCK_BOOTTIME)  # the clock /proc's start times count on
    except (OSError, ValueError, AttributeError):
        return None
    # Field 22 is the start time in ticks since boot; fields are counted after the command name,
    # which is in parentheses and may hold spaces.
    started = int(stat[stat.rindex(")") + 2:].split()[19]) / ticks
    return max(0.0, now - started)


def first_frame_timings() -> dict[str, float | None]:
    """``first_frame_s`` (:func:`process_age`, None where unknown) and ``first_frame_cpu_s`` (CPU
    seconds of every thread of this process so far), rounded to milliseconds; taken as a run's
    first frame is done."""
    age = process_age()
    return {"first_frame_s": None if age is None else round(age, 3),
            "first_frame_cpu_s": round(time.process_time(), 3)}
