"""The line every benchmark table starts with: which CPU measured it, and the vector extensions
that decide its speed (posetrack_cli.runtime.cpu reads them)."""

from __future__ import annotations

import os

from posetrack_cli.runtime.cpu import cpu_info

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def cpu_line() -> str:
    """``"<model>, <n> cores; flags: <speed flags it has>"`` from ``/proc/cpuinfo``."""
    return cpu_info().line()


def timed_env(**extra: str) -> dict[str, str]:
    """The environment of a timed child process: this one's, one thread, and ``extra``.

    ``PYTHONDONTWRITEBYTECODE`` is left out. A user's install has bytecode (pip compiles it on
    install; an editable install writes it on the first import), so their starts do not compile
    posetrack's modules. A shell that sets the variable would make every timed start compile
    them again (0.5 s a start on the 2-core EPYC).
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **ONE_THREAD, **extra}
