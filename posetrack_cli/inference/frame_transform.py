"""torchvision's detector input transform, made for BGR video frames, set on every torchvision
detector posetrack builds (a Faster R-CNN's input is made by it; SSDlite's by
:class:`~posetrack_cli.models.ssd_person.PersonSSD`, the same way, without torchvision)."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch
from torchvision.models.detection.transform import GeneralizedRCNNTransform


class FrameTransform(GeneralizedRCNNTransform):
    """torchvision's detector input transform, for BGR frames on the 0..255 scale, resizing first.

    torchvision normalises the whole ``[0, 1]`` RGB frame, then resizes it. Both steps are linear in
    each plane (bilinear weights sum to one), so resizing the raw frame and then swapping the planes
    and normalising the smaller image gives the same input up to float rounding, with the per-pixel
    passes made on the resized image (for SSDlite's 320x320 from a 1280x720 frame: 9x fewer pixels).
    The padding into a batch, and everything after, is torchvision's.
    """

    @classmethod
    def replacing(cls, transform: GeneralizedRCNNTransform) -> FrameTransform:
        """The same sizes, statistics and padding as ``transform``, and its mode: a transform left in
        training mode hands boxes back in the resized image's pixels, not the frame's."""
        made = cls(transform.min_size, transform.max_size, transform.image_mean, transform.image_std,
                   size_divisible=transform.size_divisible, fixed_size=transform.fixed_size)
        return made.train(transform.training)

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        return image  # normalised in resize(), after the resize

    def resize(self, image: torch.Tensor,
               target: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
        """``(3, H, W)`` BGR 0..255 -> resized ``(3, h, w)`` RGB planes ``(x / 255 - mean) / std``.

        Two shortcuts give torchvision's pixels exactly, for less: a frame already at the size the
        model asks for (a Faster R-CNN on a frame no larger than its own size) is not resized
        (torchvision's bilinear resize by a factor of 1 copies it, ~30 ms for 720p on one core), and
        SSDlite's fixed 320x320 is made by OpenCV's bilinear resize (the same half-pixel weights, on
        the float frame's own HWC memory: half of torch's time).
        """
        h, w = image.shape[-2:]
        if target is not None or self.training or image.device.type != "cpu":
            image, target = super().resize(image, target)
        elif self.fixed_size is not None:
            import cv2

            hwc = np.ascontiguousarray(image.permute(1, 2, 0).numpy())
            size = (int(self.fixed_size[0]), int(self.fixed_size[1]))  # torchvision's fixed_size is (w, h)
            image = torch.from_numpy(cv2.resize(hwc, size, interpolation=cv2.INTER_LINEAR)).permute(2, 0, 1)
        elif min(cast(Any, self.min_size)[-1] / min(h, w), self.max_size / max(h, w)) != 1.0:  # a tuple, in fact
            image, target = super().resize(image, target)
        mean = torch.as_tensor(self.image_mean, dtype=image.dtype, device=image.device)[:, None, None]
        std = torch.as_tensor(self.image_std, dtype=image.dtype, device=image.device)[:, None, None]
        return image.flip(0).mul_(1.0 / (255.0 * std)).sub_(mean / std), target
