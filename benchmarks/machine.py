"""The line every benchmark table starts with: which CPU measured it, and the vector extensions
that decide its speed (posetrack_cli.runtime.cpu reads them)."""

from __future__ import annotations

from posetrack_cli.runtime.cpu import cpu_info


def cpu_line() -> str:
    """``"<model>, <n> cores; flags: <speed flags it has>"`` from ``/proc/cpuinfo``."""
    return cpu_info().line()
