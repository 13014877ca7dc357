"""Heatmap decoding and the flip test's heatmap arithmetic (paper section 2, MSRA inference).

All functions take torch tensors ``(N, K, H, W)`` so they run where the network ran.
"""

from __future__ import annotations

import torch


def decode_heatmaps(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoint locations in heatmap pixels and their scores, decoded as the released MSRA code does.

    The location is the arg-max moved a quarter pixel toward the higher neighbour on each axis
    (it halves the arg-max's quantisation error). As in MSRA's ``get_final_preds``, the shift is
    applied only where the arg-max lies strictly inside ``1 < x < W-1`` and ``1 < y < H-1`` (both
    axes, or neither); elsewhere the arg-max is kept as it is. The score is the heatmap maximum.
    One difference, on purpose: MSRA moves a joint whose maximum is not positive to ``(0, 0)``;
    here it keeps its arg-max, and its score (at most 0) already marks it as not found.

    Args:
        heatmaps: ``(N, K, H, W)``.

    Returns:
        coords ``(N, K, 2)`` float32 as ``x, y`` in heatmap pixels, and scores ``(N, K)`` float32.
    """
    n, k, h, w = heatmaps.shape
    hm = heatmaps.float()
    flat = hm.reshape(n, k, h * w)
    scores, idx = flat.max(dim=2)  # (N, K)
    x = (idx % w).long()
    y = (idx // w).long()
    coords = torch.stack([x, y], dim=-1).float()  # (N, K, 2)

    xl, xr = (x - 1).clamp(min=0), (x + 1).clamp(max=w - 1)
    yu, yd = (y - 1).clamp(min=0), (y + 1).clamp(max=h - 1)

    def at(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        return flat.gather(2, (yy * w + xx).unsqueeze(-1)).squeeze(-1)

    dx = at(y, xr) - at(y, xl)
    dy = at(yd, x) - at(yu, x)
    inside = (x > 1) & (x < w - 1) & (y > 1) & (y < h - 1)  # MSRA: 1 < px < W-1 and 1 < py < H-1
    zero = torch.zeros_like(dx)
    coords[..., 0] += torch.where(inside, torch.sign(dx), zero) * 0.25
    coords[..., 1] += torch.where(inside, torch.sign(dy), zero) * 0.25
    return coords, scores


def flip_back(heatmaps: torch.Tensor, permutation: torch.Tensor) -> torch.Tensor:
    """Undo a horizontal input flip on heatmaps: mirror the width axis and swap left/right channels.

    Args:
        heatmaps: ``(N, K, H, W)`` computed on horizontally flipped crops.
        permutation: ``(K,)`` long, channel ``k`` of the result is channel ``permutation[k]``.
    """
    return heatmaps.flip(3).index_select(1, permutation)


def merge_flip(heatmaps: torch.Tensor, flipped: torch.Tensor, permutation: torch.Tensor) -> torch.Tensor:
    """Average plain and flip-test heatmaps, as the released models were evaluated.

    The flipped pass is un-flipped, then shifted one pixel to the right: with the crop convention
    (window centre at ``W/2``) a mirrored crop lands one pixel left of the plain one.

    Args:
        heatmaps: ``(N, K, H, W)`` of the plain crops.
        flipped: ``(N, K, H, W)`` of the horizontally flipped crops.
        permutation: ``(K,)`` left/right channel permutation.
    """
    back = flip_back(flipped, permutation)
    shifted = back.clone()
    shifted[..., 1:] = back[..., :-1]
    return (heatmaps + shifted) * 0.5
