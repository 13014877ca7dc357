"""Click parameter types shared by the commands.

Every number a user types is checked where it enters: finite (``nan`` and ``inf`` are refused),
in range, and for sizes a multiple of what the network needs. Each refusal is click's usage error,
which the command line prints as one line.
"""

from __future__ import annotations

import math
import re
from typing import Any

import click


class Number(click.ParamType):
    """A finite float within ``[low, high]`` (either open with ``low_open``/``high_open``)."""

    name = "number"

    def __init__(self, low: float | None = None, high: float | None = None, *, low_open: bool = False,
                 high_open: bool = False) -> None:
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        too_low = self.low is not None and (number <= self.low if self.low_open else number < self.low)
        too_high = self.high is not None and (number >= self.high if self.high_open else number > self.high)
        if too_low or too_high:
            self.fail(f"{value!r} is not in {self._range()}", param, ctx)
        return number

    def _range(self) -> str:
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        opening = "(" if self.low_open or self.low is None else "["
        closing = ")" if self.high_open or self.high is None else "]"
        return f"{opening}{low}, {high}{closing}"

    def __repr__(self) -> str:
        return f"Number{self._range()}"


UNIT = Number(0.0, 1.0)  # thresholds and similarities
POSITIVE = Number(0.0, low_open=True)  # frame rates, learning rates


class Size(click.ParamType):
    """``WIDTHxHEIGHT`` in pixels (``192x256``), each a multiple of 32 of at least 32: the pose
    network halves its input five times."""

    name = "WxH"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(value))
        if not m or int(m.group(1)) % 32 or int(m.group(2)) % 32 or min(int(m.group(1)), int(m.group(2))) < 32:
            self.fail(f"{value!r} is not WIDTHxHEIGHT in multiples of 32 (for example 192x256)", param, ctx)
        return int(m.group(1)), int(m.group(2))
