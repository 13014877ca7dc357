"""Where training starts: torchvision's ImageNet ResNet, random weights, or a pose checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from posetrack_cli.core.errors import CheckpointError, PosetrackError
from posetrack_cli.models.checkpoints import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    CheckpointInfo,
    InputNorm,
    load_resnet_checkpoint,
    read_checkpoint,
)
from posetrack_cli.models.pose_resnet import PoseResNet, PoseResNetSpec

# Modules of PoseResNet laid out as torchvision's ResNet, under the same names.
BACKBONE_MODULES = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")

# What a network trained by posetrack from ImageNet or from scratch is fed: torchvision's ImageNet
# models were trained on RGB planes with these statistics.
TRAINING_NORM = InputNorm("rgb", IMAGENET_MEAN, IMAGENET_STD)


@dataclass(frozen=True)
class StartingPoint:
    """A network ready to train, and what it is.

    Attributes:
        model: the network (CPU, train mode).
        norm: how its input must be normalised: ImageNet RGB for a new network; the checkpoint
            family's own for a fine-tuned one, because its first layer learnt that order.
        description: one line for the user (``ImageNet ResNet-50 from weights/resnet50-....pth``).
        notes: further lines worth telling (keypoint channels renamed by fine-tuning).
    """

    model: PoseResNet
    norm: InputNorm
    description: str
    notes: tuple[str, ...] = ()


def is_checkpoint_init(init: str) -> bool:
    """Whether ``--init`` names a pose checkpoint (a path or a manifest name), not a keyword."""
    return init not in ("imagenet", "scratch")


def resolve_init_path(init: str, *, allow_download: bool = True, progress: bool = True) -> Path:
    """The file of a checkpoint ``init``: an existing path, or a known pose file's name (downloaded on first use)."""
    path = Path(init).expanduser()
    if path.exists():
        return path
    from posetrack_cli.models import weights as W

    manifest = W.load_manifest()
    if init in manifest and manifest[init].kind == "pose":
        return W.resolve(init, allow_download=allow_download, progress=progress)[1]
    known = ", ".join(sorted(n for n, e in manifest.items() if e.kind == "pose"))
    raise PosetrackError(f"--init {init!r} is neither 'imagenet', 'scratch', a checkpoint file, "
                         f"nor a known pose model ({known})")


def start_file(init: str, depth: int, *, allow_download: bool = True, progress: bool = True) -> Path | None:
    """The weights file a run starts from (downloading it on first use), or None from scratch.

    Called before the training data is read, so a missing file or a typo is reported at once.
    """
    if init == "scratch":
        return None
    if init == "imagenet":
        from posetrack_cli.models import weights as W

        return W.resolve(f"resnet{depth}_imagenet", allow_download=allow_download, progress=progress)[1]
    return resolve_init_path(init, allow_download=allow_download, progress=progress)


def load_imagenet_backbone(model: PoseResNet, path: Path) -> None:
    """Copy torchvision ResNet ImageNet weights into ``model``'s backbone, every tensor accounted for.

    Each backbone module is loaded with ``strict=True``; the classifier ``fc`` is the only part of
    the file left unused, as the pose head replaces it.
    """
    state = read_checkpoint(path)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} is not a torchvision ResNet state dict")
    extra = [k for k in state if k.split(".")[0] not in BACKBONE_MODULES + ("fc",)]
    if extra:
        raise CheckpointError(f"{path} is not a torchvision ResNet state dict (unexpected {', '.join(extra[:3])})")
    for name in BACKBONE_MODULES:
        part = {k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")}
        try:
            getattr(model, name).load_state_dict(part, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[-1].strip()[:160]
            raise CheckpointError(
                f"{path} does not fit a ResNet-{model.spec.depth} backbone ({name}: {first})"
            ) from None


def check_architecture(info: CheckpointInfo, depth: int, deconv_channels: Sequence[int]) -> None:
    """Refuse to fine-tune a checkpoint as a network of another shape."""
    spec = info.spec
    if not isinstance(spec, PoseResNetSpec):  # an info from load_pose_checkpoint may describe a MobileNetV2
        raise PosetrackError(f"{info.path.name} is a {spec.backbone_name} network; posetrack trains ResNet ones only")
    if spec.depth != depth or tuple(spec.deconv_channels) != tuple(deconv_channels):
        raise PosetrackError(
            f"{info.path.name} is a ResNet-{spec.depth} with deconvolution widths {list(spec.deconv_channels)}, "
            f"not the ResNet-{depth} with {list(deconv_channels)} asked for (leave --depth out when fine-tuning)"
        )


def initial_model(
    *,
    depth: int,
    deconv_channels: Sequence[int],
    init: str,
    keypoint_names: Sequence[str],
    seed: int = 0,
    allow_download: bool = True,
    progress: bool = True,
) -> StartingPoint:
    """Build the network a new run starts from.

    Args:
        depth, deconv_channels: architecture of a new network (a checkpoint brings its own, and
            these must then agree with it).
        init: ``"imagenet"`` (torchvision ResNet weights, as the paper), ``"scratch"`` (random), or
            a pose checkpoint to fine-tune: a path or a known model name.
        keypoint_names: the training data's joints, one heatmap channel each.
        seed: seeds the random initialisation of whatever the start does not load.

    Raises:
        PosetrackError: a file is missing or does not fit; a checkpoint's architecture or keypoint
            count disagrees with what was asked for.
    """
    k = len(keypoint_names)
    path = start_file(init, depth, allow_download=allow_download, progress=progress)
    if not is_checkpoint_init(init):
        with torch.random.fork_rng(devices=[]):  # a seeded initialisation, without touching the caller's RNG
            torch.manual_seed(seed)
            model = PoseResNet(PoseResNetSpec(depth, k, tuple(deconv_channels)))
        if path is None:
            return StartingPoint(model.train(), TRAINING_NORM, f"random ResNet-{depth} (from scratch)")
        load_imagenet_backbone(model, path)
        return StartingPoint(model.train(), TRAINING_NORM, f"ImageNet ResNet-{depth} from {path}")

    assert path is not None
    model, info = load_resnet_checkpoint(path)
    spec = model.spec
    check_architecture(info, depth, deconv_channels)
    if spec.num_keypoints != k:
        raise PosetrackError(
            f"{path.name} predicts {spec.num_keypoints} keypoints but the training data has {k}; "
            "fine-tuning keeps the heatmap channels, so the counts must match"
        )
    notes: tuple[str, ...] = ()
    if info.keypoint_names is not None and tuple(info.keypoint_names) != tuple(keypoint_names):
        renamed = [f"{a} -> {b}" for a, b in zip(info.keypoint_names, keypoint_names) if a != b]
        notes = (f"fine-tuning renames {len(renamed)} heatmap channel(s): {', '.join(renamed)}",)
    return StartingPoint(model.train(), info.norm, f"{info.layout} checkpoint {path} (ResNet-{spec.depth})", notes)
