"""The pose estimator's settings, free of heavy imports: the command line reads their defaults
before any model (or torch) loads."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from posetrack_cli.core.config import SPEED
from posetrack_cli.core.paper import CROP_PADDING
from posetrack_cli.runtime.choice import PRECISIONS, RUNTIMES


@dataclass(frozen=True)
class EstimatorConfig:
    """What the top-down pose estimator computes, and how fast.

    Attributes:
        input_size: ``(width, height)`` of the network input (192x256 or 288x384 for released files).
        padding: enlargement of the aspect-padded box (the paper's 1.25).
        flip_test: average with the horizontally flipped crop, as the released results do.
        half: run the network in float16 (CUDA only; changes the last digits of the keypoints).
        batch_size: crops per forward pass (with the flip test each person is two crops).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        compile: ``torch.compile`` the network (slow first run, faster after; batches are padded
            to powers of two so only a few shapes get compiled).
        runtime: ``auto`` (OpenVINO on a CPU where installed, torch on CUDA), ``torch`` or ``openvino``.
        precision: ``auto`` (bf16 where the CPU has native bf16, else fp32), ``fp32``, ``bf16`` or
            ``int8`` (OpenVINO; calibrated on person crops, see ``posetrack calibrate``).

    Example:
        The larger released input size, without the flip test, on the CPU:

        >>> from posetrack_cli import EstimatorConfig
        >>> config = EstimatorConfig(input_size=(288, 384), flip_test=False, device="cpu")
        >>> config.input_size, config.padding, config.batch_size
        ((288, 384), 1.25, 16)
        >>> EstimatorConfig(input_size=(200, 256))
        Traceback (most recent call last):
        ...
        ValueError: input_size must be multiples of 32 of at least 32, got 200x256
    """

    input_size: tuple[int, int] = (192, 256)
    padding: float = CROP_PADDING
    flip_test: bool = True  # released COCO numbers use it
    half: bool = False  # float16 tensor cores on a GPU; off by default: not validated here (no GPU)
    # Crops per forward; on a CPU larger batches fall out of cache (benchmarks/pose_net.py).
    batch_size: int = field(default=16, metadata=SPEED)
    device: str = field(default="auto", metadata=SPEED)
    # Off: compiling ResNet-50 takes most of a minute on a CPU before the first frame.
    compile: bool = field(default=False, metadata=SPEED)
    # Not SPEED: another runtime or precision moves keypoints (int8 by up to a heatmap pixel).
    runtime: str = "auto"  # OpenVINO on a CPU where installed (benchmarks/pose_net.py says how much faster)
    precision: str = "auto"

    def __post_init__(self) -> None:
        w, h = self.input_size
        if w < 32 or h < 32 or w % 32 or h % 32:
            raise ValueError(f"input_size must be multiples of 32 of at least 32, got {w}x{h}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, got {self.runtime!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not (math.isfinite(self.padding) and self.padding > 0):
            raise ValueError(f"padding must be > 0, got {self.padding}")
