"""What this CPU is: its model name and the vector extensions that decide each runtime's speed.

An AVX2-only CPU and one with AVX-512 VNNI/BF16 and AMX differ 7-19x in bf16 and int8 convolution
rates, so which form of a layer runs fastest is a property of the CPU (see :mod:`.tuning`), and
every benchmark table names it.
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass
from pathlib import Path

# The extensions that change which number format or kernel is fastest, in the order tables print them.
SPEED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


@dataclass(frozen=True)
class CpuInfo:
    """Attributes:
        model: the model name ``/proc/cpuinfo`` gives (or the platform's processor string).
        flags: those of :data:`SPEED_FLAGS` the CPU reports, in that order.
        cores: logical CPUs this process may run on.
    """

    model: str
    flags: tuple[str, ...]
    cores: int

    @property
    def native_bf16(self) -> bool:
        """bf16 arithmetic in hardware (AVX512_BF16 or AMX), where bf16 runs ~2x fp32 or more."""
        return "avx512_bf16" in self.flags or "amx_bf16" in self.flags

    def line(self) -> str:
        """``"<model>, <n> cores; flags: <speed flags>"``: the first line of every benchmark table."""
        return f"{self.model}, {self.cores} cores; flags: {' '.join(self.flags) or 'none of AVX2+'}"

    def identity(self) -> str:
        """What a measured choice is valid for: the model and its speed flags (not the core count,
        which a container may change without changing which kernel is fastest)."""
        return f"{self.model} [{' '.join(self.flags)}]"


@functools.cache  # the CPU does not change while a process runs
def cpu_info() -> CpuInfo:
    """This machine's :class:`CpuInfo`, read from ``/proc/cpuinfo`` where there is one."""
    found: str | None = None
    flags: set[str] = set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and found is None:
            found = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    model = found or platform.processor() or platform.machine() or "unknown CPU"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return CpuInfo(model, tuple(f for f in SPEED_FLAGS if f in flags), cores)
