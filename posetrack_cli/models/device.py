"""Device selection from the command line's ``--device`` value."""

from __future__ import annotations

import re

import torch

from posetrack_cli.core.errors import PosetrackError


def resolve_device(spec: str) -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.

    Asking for CUDA on a machine without it is an error, not a quiet switch to the CPU.
    """
    spec = spec.strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if re.fullmatch(r"cuda(:\d+)?", spec):
        if not torch.cuda.is_available():
            raise PosetrackError(
                f"device {spec} requested but CUDA is not available on this machine (use --device cpu)"
            )
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise PosetrackError(f"device {spec} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
        return torch.device("cuda", index)
    raise PosetrackError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N")
