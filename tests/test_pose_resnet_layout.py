"""PoseResNet's own ResNet backbone is torchvision's ResNet: same state-dict keys and shapes, same
features; and building and running it never imports torchvision (seconds at start-up)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from posetrack_cli.models.pose_resnet import RESNET_STAGES, pose_resnet

BACKBONE = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")


def _torchvision_resnet(depth: int) -> nn.Module:
    from torchvision.models import resnet

    name, layers = RESNET_STAGES[depth]
    return resnet.ResNet(getattr(resnet, name), list(layers))


def _backbone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if k.split(".")[0] in BACKBONE}


def _features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))  # (N, 64, H/4, W/4)
    out: torch.Tensor = model.layer4(model.layer3(model.layer2(model.layer1(x))))  # (N, C, H/32, W/32)
    return out


@pytest.mark.parametrize("depth", [18, 50, 101])
def test_backbone_state_dict_keys_and_shapes_are_torchvisions(depth: int) -> None:
    with torch.device("meta"):  # shapes only
        ours, theirs = _backbone_state(pose_resnet(depth=depth)), _backbone_state(_torchvision_resnet(depth))
    assert list(ours) == list(theirs)
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


@pytest.mark.parametrize("depth", [18, 50])
def test_torchvision_weights_load_strictly_and_give_identical_features(depth: int) -> None:
    torch.manual_seed(0)
    theirs = _torchvision_resnet(depth)
    for m in theirs.modules():  # running statistics and affine terms away from 0/1, so BN matters
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    ours = pose_resnet(depth=depth)
    missing, unexpected = ours.load_state_dict(_backbone_state(theirs), strict=False)
    assert not unexpected
    assert all(k.split(".")[0] in ("deconv_layers", "final_layer") for k in missing)  # the head only
    ours.eval()
    theirs.eval()
    x = torch.randn(2, 3, 128, 96)
    with torch.no_grad():
        torch.testing.assert_close(_features(ours, x), _features(theirs, x))


@pytest.mark.parametrize("depth", [18, 50])
def test_a_seeded_backbone_is_torchvisions_seeded_resnet(depth: int) -> None:
    """Same initialisation and the same draws from the generator: tests seeded before the backbone
    was posetrack's own get the same random networks."""
    torch.manual_seed(0)
    theirs = _backbone_state(_torchvision_resnet(depth))
    torch.manual_seed(0)
    ours = _backbone_state(pose_resnet(depth=depth))
    for key, tensor in theirs.items():
        assert torch.equal(ours[key], tensor), key


def test_building_running_and_loading_a_pose_resnet_imports_neither_torchvision_nor_dynamo(tmp_path: Path) -> None:
    """What a warm start does with a ResNet pose network imports neither torchvision nor
    torch._dynamo (seconds each on a small CPU): the network built on the meta device for a file's
    tensors draws no random weights (normal_ on a meta tensor imports torch._dynamo)."""
    path = tmp_path / "pose.pth"
    code = (
        "import sys, torch\n"
        "from posetrack_cli.models.checkpoints import load_pose_checkpoint, save_msra_checkpoint\n"
        "from posetrack_cli.models.pose_resnet import pose_resnet\n"
        "model = pose_resnet(depth=18).eval()\n"
        "with torch.no_grad():\n"
        "    assert model(torch.zeros(1, 3, 128, 96)).shape == (1, 17, 32, 24)\n"
        f"save_msra_checkpoint(model, {str(path)!r})\n"
        f"loaded, _ = load_pose_checkpoint({str(path)!r})\n"
        "assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torchvision' or m == 'torch._dynamo'))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
