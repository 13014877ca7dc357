"""Box arithmetic the detectors' decodings share, as torchvision computes it (its ``BoxCoder.decode``,
``clip_boxes_to_image`` and ``remove_small_boxes``), so that posetrack's person-only decodings
(:mod:`~posetrack_cli.models.ssd_person`, :mod:`~posetrack_cli.models.rcnn_person`) give its numbers
without importing it. Boxes are ``(n, 4)`` x1, y1, x2, y2."""

from __future__ import annotations

import torch


def decode_boxes(offsets: torch.Tensor, anchors: torch.Tensor, weights: tuple[float, float, float, float],
                 clip: float) -> torch.Tensor:
    """Boxes ``(n, 4)`` x1, y1, x2, y2 from the network's offsets ``(n, 4)`` on their anchors ``(n, 4)``:
    the centre moves by ``(dx, dy)`` anchor sizes, the size scales by ``exp(dw), exp(dh)`` (each
    offset divided by its weight first, the log-scales capped at ``clip``), in the offsets' dtype."""
    anchors = anchors.to(offsets.dtype)
    width, height = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    cx, cy = anchors[:, 0] + 0.5 * width, anchors[:, 1] + 0.5 * height
    dx, dy = offsets[:, 0] / weights[0], offsets[:, 1] / weights[1]
    dw = torch.clamp(offsets[:, 2] / weights[2], max=clip)
    dh = torch.clamp(offsets[:, 3] / weights[3], max=clip)
    px, py = dx * width + cx, dy * height + cy
    half_w, half_h = 0.5 * (torch.exp(dw) * width), 0.5 * (torch.exp(dh) * height)
    return torch.stack((px - half_w, py - half_h, px + half_w, py + half_h), dim=1)


def clip_to_image(boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(n, 4)`` boxes clipped to an image of ``size`` ``(h, w)`` (torchvision's clip_boxes_to_image)."""
    h, w = size
    return torch.stack((boxes[:, 0::2].clamp(min=0, max=w), boxes[:, 1::2].clamp(min=0, max=h)), dim=2).reshape(-1, 4)


def large_enough(boxes: torch.Tensor, min_size: float) -> torch.Tensor:
    """Indices of the ``(n, 4)`` boxes at least ``min_size`` wide and high."""
    return torch.where((boxes[:, 2] - boxes[:, 0] >= min_size) & (boxes[:, 3] - boxes[:, 1] >= min_size))[0]
