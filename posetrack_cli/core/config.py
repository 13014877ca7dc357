"""Conventions shared by the typed configs of every layer."""

from __future__ import annotations

import math

# Field metadata of a setting that changes how fast results come, never what they are (beyond
# float rounding): left out of the resume key and written to ``info.speed`` instead of ``info.settings``.
SPEED = {"speed": True}


def check_unit(name: str, value: float) -> None:
    """Raise ValueError unless ``value`` is a finite number in [0, 1] (a threshold or a share)."""
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a number in [0, 1], got {value}")
