"""Heatmap training targets and the weighted joint MSE loss (paper section 2).

The network is trained to output, for each joint, a 2D Gaussian centred on the joint's heatmap
position. Conventions are those of the released training code (MSRA ``JointsDataset.generate_target``
and ``JointsMSELoss``), so a fine-tuned released model keeps meaning what it meant:

* a joint at crop pixel ``p`` sits at heatmap pixel ``p / stride``, rounded to the nearest pixel;
* the Gaussian is unnormalised (peak 1) and cut off at 3 sigma;
* a joint's target weight is 0 when it is unlabelled or when no pixel of its 3-sigma window lies on
  the heatmap (the joint left the crop); its heatmap is then all zero and does not count;
* the loss is ``0.5 * mean((w * (pred - target))^2)`` over batch, joints and pixels.
"""

from __future__ import annotations

import numpy as np
import torch


def gaussian_targets(
    points: np.ndarray,
    labelled: np.ndarray,
    heatmap_size: tuple[int, int],
    sigma: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian heatmaps and per-joint weights for joints given in heatmap pixels.

    Args:
        points: ``(N, K, 2)`` joint ``x, y`` in heatmap pixels (crop pixels / stride).
        labelled: ``(N, K)`` bool, whether the joint is annotated.
        heatmap_size: ``(w, h)`` of the heatmap.
        sigma: Gaussian standard deviation in heatmap pixels (the paper's 2).

    Returns:
        targets ``(N, K, h, w)`` float32 in ``[0, 1]`` and weights ``(N, K)`` float32 in ``{0, 1}``.
    """
    points = np.asarray(points, dtype=np.float64)
    labelled = np.asarray(labelled, dtype=bool)
    w, h = heatmap_size
    centre = np.floor(points + 0.5)  # (N, K, 2) nearest heatmap pixel
    reach = 3.0 * sigma
    on_map = (
        (centre[..., 0] + reach >= 0) & (centre[..., 0] - reach <= w - 1)
        & (centre[..., 1] + reach >= 0) & (centre[..., 1] - reach <= h - 1)
    )
    weights = (labelled & on_map).astype(np.float32)  # (N, K)
    # Separable: the 2D Gaussian is the outer product of an x and a y profile, each cut at 3 sigma.
    dx = np.arange(w)[None, None, :] - centre[..., 0:1]  # (N, K, w)
    dy = np.arange(h)[None, None, :] - centre[..., 1:2]  # (N, K, h)
    gx = np.exp(-(dx**2) / (2 * sigma**2)) * (np.abs(dx) <= reach)
    gy = np.exp(-(dy**2) / (2 * sigma**2)) * (np.abs(dy) <= reach)
    targets = gy[..., :, None] * gx[..., None, :] * weights[..., None, None]  # (N, K, h, w)
    return targets.astype(np.float32), weights


def joints_mse_loss(heatmaps: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The weighted joint MSE of the released training code, computed in float32.

    Args:
        heatmaps: ``(N, K, h, w)`` network output (any float dtype; mixed precision gives float16).
        targets: ``(N, K, h, w)`` Gaussian targets.
        weights: ``(N, K)`` per-joint weights; a 0 removes the joint's pixels from the error but not
            from the mean's denominator, as MSRA's loss does.

    Returns:
        scalar ``0.5 * mean((w * (heatmaps - targets))^2)``.
    """
    w = weights.float()[:, :, None, None]  # (N, K, 1, 1)
    return 0.5 * ((heatmaps.float() - targets.float()) * w).pow(2).mean()
