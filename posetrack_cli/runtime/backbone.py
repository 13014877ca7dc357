"""A torchvision detector's backbone run by OpenVINO, in its place."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

import numpy as np
import torch

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.runtime.cache import CacheKey, cached_or_converted, source_of, warn_on_stderr
from posetrack_cli.runtime.convert import OV_PRECISION, compile_model
from posetrack_cli.runtime.notes import quiet_tracing


class OpenVINOBackbone(torch.nn.Module):
    """A torchvision detector's backbone run by OpenVINO, in its place.

    The backbone (convolutional features and FPN: most of a detector's time, and where eager torch
    is slowest, with its frozen BatchNorms and activations as separate passes) takes the padded image
    batch ``(N, 3, H, W)`` and returns the same ordered feature maps ``{name: (N, C, h, w)}``; H and W
    are dynamic, so any video size uses one converted model. Proposals, RoI pooling, the box heads
    and NMS stay in torch (the box head's matrix products are no faster in OpenVINO).

    The same wrapper runs any other part of a detector whose input is that image batch (``part``
    names it in the cache): SSDlite's backbone with its heads
    (:class:`~posetrack_cli.models.ssd_person.SSDNetwork`), whose output is a tuple of tensors.

    Args:
        backbone: the strictly-loaded backbone module (or the part named by ``part``), or a function
            that builds it, called only when the model cache does not hold the converted part (a
            warm start then builds nothing).
        name: the detector's name, part of the cache key.
        precision: ``fp32`` or ``bf16``.
        weights_sha256: digest of the detector's state dict.
        part: what ``backbone`` is, part of the cache key.
        item: the shape of one batch item when it is fixed (a box head's ``(256, 7, 7)`` RoI
            features); None: ``(3, H, W)`` images of any size.
        warn: receives the model cache's warnings, one line each (a damaged entry made again, a
            cache that cannot be written; default: ``posetrack: warning: ...`` on stderr).
        remember: called after a conversion, what else to keep in the entry's ``about.json``
            (JSON); :attr:`about` gives it back on every later run.
    """

    def __init__(self, backbone: torch.nn.Module | Callable[[], torch.nn.Module], *, name: str, precision: str,
                 weights_sha256: str, part: str = "backbone", item: tuple[int, ...] | None = None,
                 warn: Callable[[str], None] = warn_on_stderr,
                 remember: Callable[[], dict[str, Any]] | None = None) -> None:
        super().__init__()
        import openvino as ov

        if precision not in OV_PRECISION:
            raise PosetrackError(f"a detector runs fp32 or bf16 in OpenVINO, not {precision}")
        self.out_channels = getattr(backbone, "out_channels", None)  # read by torchvision's heads
        self.precision, self.version = precision, ov.__version__

        def convert() -> tuple[Any, dict[str, Any]]:
            module = backbone if isinstance(backbone, torch.nn.Module) else backbone()
            example = torch.zeros(1, *(item or (3, 320, 320)))
            shape = ov.PartialShape([-1, *(item or (3, -1, -1))])  # the batch dynamic, and the image size
            with torch.no_grad(), quiet_tracing():
                out = module.eval()(example)  # its output names, kept beside the converted model
                model = ov.convert_model(module, example_input=example, input=[shape])
            return model, {"outputs": list(out) if isinstance(out, dict) else None,
                           "tuple": len(out) if isinstance(out, tuple) else None,
                           **(remember() if remember is not None else {})}

        key = CacheKey(weights_sha256, None, "fp32", kind=f"{name}-{part}")
        ov_model, about = cached_or_converted(key, convert, warn)
        self.about = about  # the entry's about.json: what convert() and ``remember`` kept
        self.names: list[str] | None = about["outputs"]  # None: a plain tensor (or a tuple), not a dict of maps
        self.tuple: int | None = about.get("tuple")  # the number of tensors of a tuple output
        self._compiled = compile_model(ov_model, precision, source=source_of(key, about), warn=warn)

    def forward(self, images: torch.Tensor) -> Any:
        outputs = self._compiled(np.ascontiguousarray(images.detach().cpu().numpy(), dtype=np.float32))
        if self.tuple is not None:
            return tuple(torch.from_numpy(outputs[i].copy()) for i in range(self.tuple))
        if self.names is None:
            return torch.from_numpy(outputs[0].copy())
        return OrderedDict((name, torch.from_numpy(outputs[i].copy())) for i, name in enumerate(self.names))
