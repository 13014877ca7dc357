"""int8: NNCF post-training quantization calibrated on real person crops, and how far it lands from fp32."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

CALIBRATION_CROPS = 96  # crops gathered from the user's video before int8 quantization
HELD_BACK = 0.25  # share of the calibration crops kept out of quantization to measure agreement


@dataclass(frozen=True)
class Agreement:
    """How close quantized heatmaps are to fp32 on held-back crops.

    Attributes:
        crops: held-back crops compared.
        within_1px: share of keypoints whose int8 location is within 1 input pixel of fp32's.
        max_px: largest keypoint distance, input pixels.
        heatmap_rel_error: ``||h_int8 - h_fp32|| / ||h_fp32||`` over all held-back heatmaps.
    """

    crops: int
    within_1px: float
    max_px: float
    heatmap_rel_error: float

    def line(self) -> str:
        return (f"int8 vs fp32 on {self.crops} held-back crops: {self.within_1px:.1%} of keypoints within 1 px "
                f"(max {self.max_px:.2f} px), heatmap relative error {self.heatmap_rel_error:.3f}")


def heatmap_agreement(reference: torch.Tensor, other: torch.Tensor, stride: float) -> Agreement:
    """Compare heatmaps ``(N, K, h, w)``; keypoints decoded as the estimator decodes them,
    distances in input pixels (``stride`` input pixels per heatmap pixel)."""
    from posetrack_cli.models.heatmaps import decode_heatmaps

    a, _ = decode_heatmaps(reference)
    b, _ = decode_heatmaps(other)
    dist = torch.linalg.norm(a - b, dim=-1) * stride  # (N, K)
    rel = torch.linalg.norm(other - reference) / torch.linalg.norm(reference).clamp_min(1e-12)
    return Agreement(len(reference), float((dist <= 1.0).float().mean()), float(dist.max()), float(rel))


def quantize_int8(fp32_model: Any, crops: np.ndarray) -> Any:
    """NNCF post-training quantization of an OpenVINO model on samples of its input (crops ``(N, H, W, 3)``)."""
    import nncf

    samples = [crops[i:i + 1] for i in range(len(crops))]
    with contextlib.redirect_stdout(sys.stderr):  # NNCF's progress bars: stdout stays for results
        return nncf.quantize(fp32_model, nncf.Dataset(samples), subset_size=len(samples),
                             preset=nncf.QuantizationPreset.MIXED, fast_bias_correction=True)
