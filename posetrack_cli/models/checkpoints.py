"""Loading released pose checkpoints strictly, in any of their three layouts.

Layouts (key prefixes of the state dict):

* ``msra``       -- Microsoft's release: ``conv1``, ``layer1..4``, ``deconv_layers``, ``final_layer``
  (a bare state dict or one under ``state_dict``; keys may carry ``module.`` from DataParallel).
* ``mmpose-1.x`` -- ``backbone.*``, ``head.deconv_layers.*``, ``head.final_layer.*``.
* ``mmpose-0.x`` -- ``backbone.*``, ``keypoint_head.deconv_layers.*``, ``keypoint_head.final_layer.*``.

Files are read with ``torch.load(weights_only=True)``. Released mmpose files also pickle their
training framework's bookkeeping (``mmengine`` message hubs, numpy scalars) beside the weights; those
objects are replaced by inert placeholders that hold nothing and run no code, and only the state
dict is used. The backbone (ResNet-18..152, or mmpose's MobileNetV2, whose convolutions are keyed
``conv1.conv``, ``layerN.i.conv.j.conv``), keypoint count and deconvolution widths are inferred from
the tensors; every tensor must then match the network exactly (``strict=True``).
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from posetrack_cli.core.errors import CheckpointError
from posetrack_cli.core.keypoints import default_keypoint_names
from posetrack_cli.models.pose_mobilenetv2 import PoseMobileNetV2, PoseMobileNetV2Spec
from posetrack_cli.models.pose_resnet import RESNET_STAGES, PoseResNet, PoseResNetSpec

PoseSpec = PoseResNetSpec | PoseMobileNetV2Spec
PoseNetwork = PoseResNet | PoseMobileNetV2

# Modules whose pickled objects may sit beside the weights in released files (metadata only).
_METADATA_MODULES = ("mmengine", "mmcv", "mmpose", "mmdet", "numpy", "_codecs")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputNorm:
    """How a checkpoint family expects its input crops.

    Attributes:
        channel_order: ``"rgb"`` or ``"bgr"``, the plane order fed to the network.
        mean: per-plane mean on the 0..1 scale, in the order the planes are fed.
        std: per-plane standard deviation on the 0..1 scale.
    """

    channel_order: str
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if self.channel_order not in ("rgb", "bgr"):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {self.channel_order!r}")


# MSRA's data loader fed OpenCV's BGR planes with the ImageNet (RGB-ordered) statistics; mmpose
# converts to RGB. Each family is run the way it was trained.
LAYOUT_NORMS: dict[str, InputNorm] = {
    "msra": InputNorm("bgr"),
    "mmpose-1.x": InputNorm("rgb"),
    "mmpose-0.x": InputNorm("rgb"),
}

_LAYOUT_PREFIXES: dict[str, tuple[str, str]] = {
    # layout: (backbone prefix, head prefix)
    "msra": ("", ""),
    "mmpose-1.x": ("backbone.", "head."),
    "mmpose-0.x": ("backbone.", "keypoint_head."),
}


@dataclass(frozen=True)
class CheckpointInfo:
    """What a pose checkpoint is, inferred from its tensors (and its metadata where it has some).

    Attributes:
        path: the file.
        layout: ``msra``, ``mmpose-1.x`` or ``mmpose-0.x``.
        spec: the network architecture (``spec.backbone_name`` says which backbone).
        norm: input normalisation of the checkpoint family (or recorded by posetrack training).
        keypoint_names: names of the K heatmap channels, or None when K has no standard names.
        input_size: ``(width, height)`` when the file records it or its name says it, else None.
        num_parameters: trainable parameter count.
    """

    path: Path
    layout: str
    spec: PoseSpec
    norm: InputNorm
    keypoint_names: tuple[str, ...] | None
    input_size: tuple[int, int] | None
    num_parameters: int


class _Inert:
    """Placeholder for a pickled metadata object: accepts any construction and state, keeps nothing."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Inert:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


def load_weights_file(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` onto the CPU, memory-mapped where the file is in
    torch's zip format (every file saved since torch 1.6; the authors' 2018 files are not).

    A mapped file's tensors are read from the page cache as they are used, not copied out first:
    a warm start whose converted model is cached only hashes them. The mapping is private, so
    nothing done to a tensor reaches the file.
    """
    return torch.load(str(path), map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))


def read_checkpoint(path: str | Path) -> object:
    """``torch.load(weights_only=True)`` with clear errors; metadata objects become placeholders.

    What a file holds is the caller's to check (a state dict, a dict holding one, anything else)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint is not a file: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint is empty (0 bytes): {path}")
    try:
        needed = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception:  # legacy (non-zip) files cannot be scanned; torch.load reports the rest
        needed = []
    refused = [g for g in needed if g.split(".")[0] not in _METADATA_MODULES]
    if refused:
        raise CheckpointError(
            f"refusing to load {path}: it pickles code objects outside the weights ({', '.join(sorted(refused)[:3])})"
        )
    placeholders: list[Any] = [(_Inert, name) for name in needed]
    try:
        with torch.serialization.safe_globals(placeholders):
            return load_weights_file(path)
    except Exception as exc:  # torch raises several types for bad files; all mean "unreadable"
        reason = _describe_load_error(exc, path)
        raise CheckpointError(f"not a readable PyTorch checkpoint: {path} ({reason})") from None


def _describe_load_error(exc: Exception, path: Path) -> str:
    """A short reason for a failed load, from the file's first bytes and torch's message."""
    with open(path, "rb") as f:
        head = f.read(2)
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if head == b"PK":  # torch's zip format
        return "truncated file" if not zipfile.is_zipfile(path) else text[:160]
    if head[:1] != b"\x80":  # neither a zip nor a pickle
        return "not a torch file"
    if "Ran out of input" in text or "EOF" in text:
        return "truncated file"
    return text[:160]


def extract_state_dict(obj: object, path: Path) -> dict[str, torch.Tensor]:
    """The tensor dict of a loaded checkpoint: bare, or under ``state_dict`` (MSRA/mmpose files)."""
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{path} holds no state dict (found {type(obj).__name__})")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: state dict entries that are not tensors: {', '.join(map(str, bad[:3]))}")
    return {str(k): v for k, v in obj.items()}


def detect_layout(keys: list[str]) -> str | None:
    """Name of the layout whose backbone and head prefixes the keys carry, or None."""
    keyset = set(keys)
    for layout, (backbone, head) in _LAYOUT_PREFIXES.items():
        stem = f"{backbone}conv1.weight" in keyset or (bool(backbone) and f"{backbone}conv1.conv.weight" in keyset)
        if stem and f"{head}final_layer.weight" in keyset:
            if layout == "msra" or any(k.startswith(f"{head}deconv_layers.") for k in keyset):
                return layout
    return None


def to_msra_keys(state: dict[str, torch.Tensor], layout: str) -> dict[str, torch.Tensor]:
    """Rename a state dict of ``layout`` to the network's own (MSRA) key names."""
    backbone, head = _LAYOUT_PREFIXES[layout]
    out = {}
    for key, value in state.items():
        if backbone and key.startswith(backbone):
            key = key[len(backbone):]
        elif head and key.startswith(head):
            key = key[len(head):]
        out[key] = value
    return out


def _head(state: dict[str, torch.Tensor], path: Path) -> tuple[int, tuple[int, ...], int]:
    """Keypoint count, deconvolution widths and kernel of a SimpleBaseline head."""
    deconv = []
    i = 0
    while f"deconv_layers.{i}.weight" in state:
        deconv.append(state[f"deconv_layers.{i}.weight"])
        i += 3
    if not deconv:
        raise CheckpointError(f"{path}: no deconv_layers.0.weight tensor; not a SimpleBaseline head")
    return int(state["final_layer.weight"].shape[0]), tuple(int(w.shape[1]) for w in deconv), int(deconv[0].shape[-1])


def infer_spec(state: dict[str, torch.Tensor], path: Path) -> PoseSpec:
    """Architecture from tensor names and shapes (MSRA key names; mmpose's for MobileNetV2)."""
    if "conv1.conv.weight" in state:  # mmpose's MobileNetV2 (ConvModule names)
        stem = int(state["conv1.conv.weight"].shape[0])
        if stem != 32:
            raise CheckpointError(f"{path}: MobileNetV2 stem of {stem} channels; only widen_factor 1 (32) is supported")
        try:
            return PoseMobileNetV2Spec(*_head(state, path))
        except ValueError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
    blocks = []
    for stage in range(1, 5):
        ids = {int(m.group(1)) for k in state if (m := re.match(rf"layer{stage}\.(\d+)\.", k))}
        blocks.append(max(ids) + 1 if ids else 0)
    bottleneck = "layer1.0.conv3.weight" in state
    depth = next(
        (d for d, (block, layers) in RESNET_STAGES.items()
         if tuple(blocks) == layers and (block == "Bottleneck") == bottleneck),
        None,
    )
    if depth is None:
        kind = "bottleneck" if bottleneck else "basic"
        raise CheckpointError(
            f"{path}: backbone with {blocks} {kind} blocks per stage is not a ResNet-18/34/50/101/152")
    try:
        return PoseResNetSpec(depth, *_head(state, path))
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from None


def build_network(spec: PoseSpec) -> PoseNetwork:
    """An untrained network of ``spec``."""
    return PoseMobileNetV2(spec) if isinstance(spec, PoseMobileNetV2Spec) else PoseResNet(spec)


def check_tensors(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Refuse a state dict that does not fit ``model`` exactly, naming the first offending keys.

    ``num_batches_tracked`` (a BatchNorm training counter added in PyTorch 0.4.1) may be absent:
    files saved before it existed lack it, and torch's own loader fills it for them.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing[:3])}" + _more(missing))
    if unexpected:
        problems.append(f"unexpected {', '.join(unexpected[:3])}" + _more(unexpected))
    if wrong:
        problems.append(f"wrong shape {', '.join(wrong[:3])}")
    if problems:
        name = getattr(model, "spec").backbone_name  # noqa: B009 - nn.Module's __getattr__ types it as a Tensor
        raise CheckpointError(f"{path} does not fit a {name} pose network: " + "; ".join(problems))


def _more(names: list[str]) -> str:
    """`` and N more`` for a list of which three were named."""
    return f" and {len(names) - 3} more" if len(names) > 3 else ""


def _input_size_from_name(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` from a ``HxW`` in the file name (``pose_resnet_50_256x192.pth``)."""
    m = re.search(r"(\d{2,4})x(\d{2,4})", path.name)
    return (int(m.group(2)), int(m.group(1))) if m else None


# The input size, (width, height), at which the released checkpoints of each keypoint set were
# trained first and at which every architecture of it is released: COCO's 17 keypoints at 256x192
# (MSRA's and mmpose's ResNet-50/101/152 and mmpose's MobileNetV2: the manifest's *_256x192
# files; 384x288 is each one's larger variant), MPII's 16 at 256x256 (MSRA's MPII files).
STANDARD_INPUT_SIZES: dict[int, tuple[int, int]] = {17: (192, 256), 16: (256, 256)}


def standard_input_size(spec: PoseSpec) -> tuple[int, int] | None:
    """The ``(width, height)`` the released checkpoints of ``spec``'s architecture and keypoint
    count come at by default (``STANDARD_INPUT_SIZES``), for a file that records no input size;
    None for a keypoint count no release has."""
    return STANDARD_INPUT_SIZES.get(spec.num_keypoints)


def _recorded_input_size(value: Iterable[Any], path: Path) -> tuple[int, int]:
    """``(width, height)`` from a checkpoint's ``posetrack`` metadata."""
    size = tuple(int(v) for v in value)
    if len(size) != 2:
        raise CheckpointError(f"{path}: its recorded input size {list(size)} is not (width, height)")
    return size[0], size[1]


def load_pose_checkpoint(path: str | Path) -> tuple[PoseNetwork, CheckpointInfo]:
    """Build the network a checkpoint describes and load its weights with ``strict=True``.

    Returns the model (eval mode, on CPU) and what was learned about the file.
    Raises CheckpointError with a one-line reason for any file that is not a loadable pose checkpoint.
    """
    path = Path(path)
    raw = read_checkpoint(path)
    state = extract_state_dict(raw, path)
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    layout = detect_layout(list(state))
    if layout is None:
        raise CheckpointError(
            f"{path} fits no known pose layout (msra, mmpose-1.x, mmpose-0.x); first keys: {', '.join(list(state)[:3])}"
        )
    state = to_msra_keys(state, layout)
    spec = infer_spec(state, path)
    with torch.device("meta"):  # shapes only: every tensor comes from the file, so none is initialised at random
        model = build_network(spec)
    check_tensors(model, state, path)
    expected = model.state_dict()  # in the network's dtypes, to which load_state_dict would cast the file's
    state = {k: v.to(expected[k].dtype) if k in expected and v.dtype != expected[k].dtype else v
             for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    unloaded = [name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if unloaded:
        raise CheckpointError(f"{path}: {', '.join(unloaded[:3])} not loaded from the file")
    model.eval()

    meta = raw.get("posetrack") if isinstance(raw, Mapping) else None
    meta = meta if isinstance(meta, Mapping) else {}
    norm = LAYOUT_NORMS[layout]
    if "channel_order" in meta:
        norm = InputNorm(str(meta["channel_order"]), tuple(meta["mean"]), tuple(meta["std"]))
    names = tuple(meta["keypoint_names"]) if "keypoint_names" in meta else default_keypoint_names(spec.num_keypoints)
    size = _recorded_input_size(meta["input_size"], path) if "input_size" in meta else _input_size_from_name(path)
    info = CheckpointInfo(
        path=path,
        layout=layout,
        spec=spec,
        norm=norm,
        keypoint_names=names,
        input_size=size,
        num_parameters=sum(p.numel() for p in model.parameters()),
    )
    return model, info


def load_resnet_checkpoint(path: str | Path) -> tuple[PoseResNet, CheckpointInfo]:
    """:func:`load_pose_checkpoint` for what posetrack trains: ResNet networks only."""
    model, info = load_pose_checkpoint(path)
    if not isinstance(model, PoseResNet):
        raise CheckpointError(
            f"{info.path.name} is a {info.spec.backbone_name} network; posetrack trains ResNet ones only")
    return model, info


def save_msra_checkpoint(model: PoseResNet, path: str | Path, **extra: Any) -> None:
    """Write ``model`` in the MSRA layout (bare keys under ``state_dict``) plus ``extra`` entries.

    Used by training; ``extra`` may carry a ``posetrack`` metadata dict (input size, keypoint names,
    normalisation) and optimiser state. Written to a temporary file and renamed, so an interrupted
    save never leaves a file that looks complete.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    torch.save({"state_dict": model.state_dict(), **extra}, tmp)
    tmp.replace(path)
