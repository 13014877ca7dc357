"""The line every benchmark table starts with: which CPU measured it, and the vector extensions
that decide its speed (an AVX2-only CPU and one with AVX-512 VNNI/BF16 and AMX differ 7-19x in
bf16 and int8)."""

from __future__ import annotations

import os
from pathlib import Path

SPEED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu_line() -> str:
    """``"<model>, <n> cores; flags: <those of SPEED_FLAGS it has>"`` from ``/proc/cpuinfo``."""
    model, flags = "unknown CPU", set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name") and model == "unknown CPU":
            model = line.split(":", 1)[1].strip()
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
    have = " ".join(f for f in SPEED_FLAGS if f in flags) or "none of AVX2+"
    return f"{model}, {os.cpu_count()} cores; flags: {have}"
