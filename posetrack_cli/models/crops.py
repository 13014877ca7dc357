"""Cutting the pose network's input crops out of a frame, two ways with the same pixels.

Both sample bilinearly at the positions ``cv2.warpAffine`` samples (pixel centres at integers,
black outside the frame), which is what the released models were evaluated with:

* :func:`warp_crops_cv2`, one ``cv2.warpAffine`` per person on the CPU: the fastest way there
  (``benchmarks/crops.py`` compares it with ``grid_sample``; figures in ``benchmarks/README.md``);
* :func:`warp_crops_torch`, all people in one ``grid_sample`` call on the model's device: on a
  GPU the frame is uploaded once and the CPU is left free for decoding and optical flow.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F


def warp_crops_cv2(frame: np.ndarray, to_crop: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """Crops ``(N, 3, h, w)`` uint8 (channel order of ``frame``) on the CPU, a channels-last view.

    Args:
        frame: ``(H, W, 3)`` uint8.
        to_crop: ``(N, 2, 3)`` affine maps from frame pixels to crop pixels.
        size: crop ``(w, h)``.
    """
    w, h = size
    if len(to_crop) == 0:
        return torch.zeros((0, 3, h, w), dtype=torch.uint8)
    crops = np.stack([cv2.warpAffine(frame, mat, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
                      for mat in to_crop])  # (N, h, w, 3)
    # A channels-last view, as OpenVINO's pose network takes it (runtime.crops_for_openvino): nothing is copied.
    return torch.from_numpy(crops).permute(0, 3, 1, 2)


def warp_crops_torch(frame: np.ndarray, to_frame: np.ndarray, size: tuple[int, int],
                     device: torch.device) -> torch.Tensor:
    """Crops ``(N, 3, h, w)`` float32 (0..255, channel order of ``frame``) on ``device``, in one call.

    The N crops are sampled as one tall image, so the frame is neither copied per person nor
    uploaded more than once.

    Args:
        frame: ``(H, W, 3)`` uint8.
        to_frame: ``(N, 2, 3)`` affine maps from crop pixels to frame pixels.
        size: crop ``(w, h)``.
        device: where the frame is sampled and the crops are returned.
    """
    w, h = size
    n = len(to_frame)
    image = torch.from_numpy(frame)
    if device.type == "cuda":
        image = image.pin_memory()
    image = image.to(device, non_blocking=True).permute(2, 0, 1).float()[None]  # (1, 3, H, W)
    mats = torch.as_tensor(to_frame, dtype=torch.float32, device=device)
    v, u = torch.meshgrid(torch.arange(h, dtype=torch.float32, device=device),
                          torch.arange(w, dtype=torch.float32, device=device), indexing="ij")
    pixels = torch.stack([u, v], dim=-1)  # (h, w, 2) crop pixel (u, v)
    xy = torch.einsum("nij,hwj->nhwi", mats[:, :, :2], pixels) + mats[:, None, None, :, 2]  # (N, h, w, 2)
    height, width = frame.shape[:2]
    grid = xy / torch.tensor([max(width - 1, 1), max(height - 1, 1)], device=device) * 2 - 1
    tall = F.grid_sample(image, grid.reshape(1, n * h, w, 2), mode="bilinear", padding_mode="zeros",
                         align_corners=True)  # (1, 3, N*h, w)
    return tall[0].view(3, n, h, w).permute(1, 0, 2, 3)
