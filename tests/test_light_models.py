"""The light released models: mmpose's MobileNetV2 SimpleBaseline loads strictly in both mmpose layouts,
torchvision's light person detectors build and load from the manifest, and small frames are not upscaled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from posetrack_cli.core.errors import CheckpointError, PosetrackError
from posetrack_cli.inference.detector import PersonDetector, load_detector
from posetrack_cli.models import weights as W
from posetrack_cli.models.checkpoints import load_pose_checkpoint
from posetrack_cli.models.detectors import DETECTORS, build_detector
from posetrack_cli.models.pose_mobilenetv2 import PoseMobileNetV2Spec, pose_mobilenetv2

from helpers import randomise_batchnorm, trust_files, write_checkpoint


@pytest.fixture(scope="module")
def mobilenet() -> torch.nn.Module:
    torch.manual_seed(0)
    model = randomise_batchnorm(pose_mobilenetv2())
    for p in model.final_layer.parameters():
        p.data.normal_(0, 0.1)
    return model


def test_mobilenetv2_has_mmpose_names_and_shapes(mobilenet: torch.nn.Module) -> None:
    """The tensors mmpose's MobileNetV2 (widen 1, out_indices (7,)) and its deconv head hold, by name and shape."""
    state = mobilenet.state_dict()
    expected = {
        "conv1.conv.weight": (32, 3, 3, 3),
        "layer1.0.conv.0.conv.weight": (32, 1, 3, 3),  # expand ratio 1: depthwise first
        "layer1.0.conv.1.conv.weight": (16, 32, 1, 1),
        "layer2.0.conv.0.conv.weight": (96, 16, 1, 1),
        "layer2.0.conv.1.conv.weight": (96, 1, 3, 3),
        "layer7.0.conv.2.bn.running_var": (320,),
        "conv2.conv.weight": (1280, 320, 1, 1),
        "deconv_layers.0.weight": (1280, 256, 4, 4),
        "deconv_layers.7.running_mean": (256,),
        "final_layer.weight": (17, 256, 1, 1),
    }
    assert {k: tuple(state[k].shape) for k in expected} == expected
    assert len(state) == 332 and not any(k.startswith("layer8") for k in state)
    with torch.inference_mode():
        assert mobilenet(torch.zeros(1, 3, 256, 192)).shape == (1, 17, 64, 48)


@pytest.mark.parametrize("layout", ["mmpose-0.x", "mmpose-1.x"])
def test_mobilenetv2_checkpoints_load_strictly(layout: str, mobilenet: torch.nn.Module, tmp_path: Path) -> None:
    path = write_checkpoint(mobilenet, tmp_path / "td-hm_mobilenetv2_coco-256x192.pth", layout)
    model, info = load_pose_checkpoint(path)
    assert info.layout == layout and info.spec == PoseMobileNetV2Spec() and info.input_size == (192, 256)
    assert info.spec.backbone_name == "MobileNetV2" and info.num_parameters == 9_569_809
    x = torch.randn(2, 3, 128, 96)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), mobilenet(x), rtol=0, atol=0)


def test_mobilenetv2_file_missing_a_tensor_is_refused_by_name(mobilenet: torch.nn.Module, tmp_path: Path) -> None:
    state = {f"backbone.{k}" if not k.startswith(("deconv", "final")) else f"head.{k}": v
             for k, v in mobilenet.state_dict().items()}
    del state["backbone.layer4.2.conv.1.bn.weight"]
    torch.save({"state_dict": state}, tmp_path / "cut.pth")
    missing = r"does not fit a MobileNetV2 pose network: missing layer4\.2\.conv\.1\.bn\.weight"
    with pytest.raises(CheckpointError, match=missing):
        load_pose_checkpoint(tmp_path / "cut.pth")


def test_manifest_lists_the_light_models() -> None:
    manifest = W.load_manifest()
    pose = manifest["pose_mobilenetv2_256x192"]
    assert pose.kind == "pose" and pose.input_size == (192, 256)
    assert pose.url.endswith(pose.filename) and f"-{pose.sha256}_" in pose.filename
    for name in ("fasterrcnn_mobilenet_v3_large_320_fpn", "ssdlite320_mobilenet_v3_large"):
        entry = manifest[name]
        assert entry.kind == "detector" and name in DETECTORS
        assert entry.url == f"https://download.pytorch.org/models/{entry.filename}" and entry.sha256 in entry.filename


@pytest.mark.parametrize("name", ["fasterrcnn_mobilenet_v3_large_320_fpn", "ssdlite320_mobilenet_v3_large"])
def test_light_detectors_load_strictly_from_the_manifest(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    folder = W.weights_dir()
    folder.mkdir(parents=True)
    state = build_detector(name).state_dict()
    torch.save(state, folder / W.load_manifest()[name].filename)
    trust_files(monkeypatch, folder / W.load_manifest()[name].filename)  # random stand-in for the released file
    detector = load_detector(name, device=torch.device("cpu"), score_threshold=0.9, allow_download=False)
    frame = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    (found,) = detector.detect([frame])
    assert found.boxes.shape[1:] == (4,) and np.all(found.scores >= 0.9)
    del state[next(k for k in state if k.startswith("head.") or k.startswith("roi_heads."))]
    torch.save(state, folder / "cut.pth")
    with pytest.raises(PosetrackError, match=f"is not a {name} checkpoint"):
        PersonDetector(name, folder / "cut.pth")


def test_small_frames_are_not_upscaled_for_detection_unless_asked(tmp_path: Path) -> None:
    torch.save(build_detector("fasterrcnn_mobilenet_v3_large_fpn").state_dict(), tmp_path / "d.pth")
    frame = np.zeros((240, 320, 3), np.uint8)
    seen: list[tuple[int, int]] = []
    detector = PersonDetector("fasterrcnn_mobilenet_v3_large_fpn", tmp_path / "d.pth")
    detector.model.backbone.register_forward_pre_hook(lambda _, args: seen.append(tuple(args[0].shape[-2:])))
    detector.detect([frame])
    asked = PersonDetector("fasterrcnn_mobilenet_v3_large_fpn", tmp_path / "d.pth", min_size=480)
    asked.model.backbone.register_forward_pre_hook(lambda _, args: seen.append(tuple(args[0].shape[-2:])))
    asked.detect([frame])
    assert seen == [(256, 320), (480, 640)]  # torchvision pads each side to a multiple of 32
    with pytest.raises(PosetrackError, match="fixed 320x320"):
        build_detector("ssdlite320_mobilenet_v3_large", min_size=480)


@pytest.mark.parametrize("name", DETECTORS)
def test_frames_reach_the_detector_as_torchvision_prepares_them(name: str, tmp_path: Path) -> None:
    """posetrack resizes the raw frame before normalising it (9x fewer pixels to normalise for SSDlite
    on 720p): the network's input is torchvision's own (RGB on [0, 1], normalised, then resized) up to
    float rounding, at the same sizes."""
    torch.save(build_detector(name).state_dict(), tmp_path / "d.pth")
    detector = PersonDetector(name, tmp_path / "d.pth")
    stock = build_detector(name).transform
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
    frame[100:200, 300:400] = (255, 0, 0)  # a blue patch: swapped planes would show
    detector._no_upscale(frame.shape[:2])  # as detect() does: 360p stays 360p (stock: the same sizes below)
    stock.min_size, stock.max_size = detector.model.transform.min_size, detector.model.transform.max_size
    with torch.no_grad():
        ours = detector.model.transform([torch.from_numpy(frame).permute(2, 0, 1).float()])[0]
        theirs = stock([torch.from_numpy(frame[:, :, ::-1].copy()).permute(2, 0, 1).float() / 255])[0]
    assert ours.image_sizes == theirs.image_sizes
    assert ours.tensors.shape == theirs.tensors.shape
    torch.testing.assert_close(ours.tensors, theirs.tensors, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_realtime_preset_runs_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--preset realtime``: MobileNetV2 head, SSDlite on keyframes, int8 gathering its calibration crops."""
    import json

    from click.testing import CliRunner

    from posetrack_cli.cli import main

    from helpers import walkers, write_video

    torch.manual_seed(0)
    folder = W.weights_dir()
    folder.mkdir(parents=True)
    manifest = W.load_manifest()
    detector = build_detector("ssdlite320_mobilenet_v3_large")
    with torch.no_grad():  # random weights find nobody; make "person" win everywhere, as helpers.py does
        for layer in detector.head.classification_head.module_list:
            layer[-1].bias.view(-1, 91)[:, 1] = 10.0
    torch.save(detector.state_dict(), folder / manifest["ssdlite320_mobilenet_v3_large"].filename)
    pose = pose_mobilenetv2()
    torch.nn.init.constant_(pose.final_layer.bias, 0.5)
    write_checkpoint(pose, folder / manifest["pose_mobilenetv2_256x192"].filename, "mmpose-1.x")
    trust_files(monkeypatch, folder / manifest["ssdlite320_mobilenet_v3_large"].filename,
                folder / manifest["pose_mobilenetv2_256x192"].filename)
    video = write_video(tmp_path / "clip.mp4", walkers(frames=6))
    result = CliRunner().invoke(main, ["run", str(video), "-o", str(tmp_path / "out"), "--preset", "realtime",
                                       "--input-size", "64x64", "--no-progress", "--offline"])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "out" / "clip.json").read_text())
    assert doc["info"]["models"] == {"detector": "ssdlite320_mobilenet_v3_large", "pose": "pose_mobilenetv2_256x192",
                                     "flow": "dis-ultrafast"}
    assert doc["info"]["settings"]["detect_every"] == 5 and doc["info"]["settings"]["flip_test"] is False
    assert len(doc["images"]) == 6 and doc["annotations"]
