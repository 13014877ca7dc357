"""Released checkpoint layouts load strictly, agree with each other, and bad files are refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from posetrack_cli.core.errors import CheckpointError
from posetrack_cli.models.checkpoints import load_pose_checkpoint
from posetrack_cli.models.pose_resnet import fold_batchnorm, pose_resnet

from helpers import LAYOUTS, randomise_batchnorm, write_checkpoint


@pytest.fixture(scope="module")
def reference() -> torch.nn.Module:
    torch.manual_seed(0)
    model = randomise_batchnorm(pose_resnet(depth=18, num_keypoints=17))
    for p in model.final_layer.parameters():  # the paper's N(0, 0.001) init makes tiny outputs
        p.data.normal_(0, 0.1)
    return model


@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_layout_loads_strictly_with_identical_outputs(layout: str, reference: torch.nn.Module,
                                                            tmp_path: Path) -> None:
    path = write_checkpoint(reference, tmp_path / "pose_resnet_18_256x192.pth", layout)
    if layout == "mmpose-1.x":  # the released files pickle training bookkeeping beside the weights
        pickled = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        assert "mmengine.logging.history_buffer.HistoryBuffer" in pickled
    model, info = load_pose_checkpoint(path)
    assert info.layout == layout
    assert (info.spec.depth, info.spec.num_keypoints, info.spec.deconv_channels) == (18, 17, (256, 256, 256))
    assert info.input_size == (192, 256)  # from the "256x192" in the file name
    assert info.norm.channel_order == ("bgr" if layout == "msra" else "rgb")
    x = torch.randn(2, 3, 128, 96)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), reference(x), rtol=0, atol=0)


def test_msra_module_prefix_and_state_dict_wrapper(reference: torch.nn.Module, tmp_path: Path) -> None:
    prefixed = write_checkpoint(reference, tmp_path / "a.pth", "msra", module_prefix=True)
    wrapped = tmp_path / "b.pth.tar"
    torch.save({"epoch": 140, "state_dict": reference.state_dict(), "perf": 0.7}, wrapped)
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        for path in (prefixed, wrapped):
            model, info = load_pose_checkpoint(path)
            assert info.layout == "msra" and info.input_size is None
            torch.testing.assert_close(model(x), reference(x), rtol=0, atol=0)


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_either_torch_format_loads_and_the_file_is_never_written(zip_format: bool, reference: torch.nn.Module,
                                                                  tmp_path: Path) -> None:
    """Zip files (torch >= 1.6) are memory-mapped, legacy ones (the authors' 2018 files) read whole;
    changing a loaded tensor in place must not reach the user's file either way."""
    path = tmp_path / "pose_resnet_18_256x192.pth.tar"
    torch.save({"epoch": 140, "state_dict": reference.state_dict()}, path, _use_new_zipfile_serialization=zip_format)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    model, info = load_pose_checkpoint(path)
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), reference(x), rtol=0, atol=0)
        for tensor in model.state_dict().values():
            tensor.add_(1)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert load_pose_checkpoint(path)[0].state_dict()["conv1.weight"].equal(reference.state_dict()["conv1.weight"])


@pytest.mark.parametrize("depth,keypoints", [(34, 16), (50, 17)])
def test_depth_and_keypoints_are_inferred(depth: int, keypoints: int, tmp_path: Path) -> None:
    path = write_checkpoint(pose_resnet(depth=depth, num_keypoints=keypoints), tmp_path / "x.pth", "mmpose-0.x")
    _, info = load_pose_checkpoint(path)
    assert info.spec.depth == depth and info.spec.num_keypoints == keypoints
    assert info.keypoint_names is not None and len(info.keypoint_names) == keypoints


def test_one_wrong_shape_is_refused_naming_the_key(reference: torch.nn.Module, tmp_path: Path) -> None:
    state = reference.state_dict()
    state["layer2.0.bn1.running_var"] = torch.ones(64)  # expected (128,)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"wrong shape layer2\.0\.bn1\.running_var \(64,\) \(expected \(128,\)\)"):
        load_pose_checkpoint(tmp_path / "bad.pth")


def test_one_missing_key_is_refused_naming_the_key(reference: torch.nn.Module, tmp_path: Path) -> None:
    state = reference.state_dict()
    del state["layer3.1.conv2.weight"]
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"missing layer3\.1\.conv2\.weight"):
        load_pose_checkpoint(tmp_path / "bad.pth")


def test_extra_key_is_refused(reference: torch.nn.Module, tmp_path: Path) -> None:
    state = reference.state_dict()
    state["fc.weight"] = torch.zeros(1000, 512)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"unexpected fc\.weight"):
        load_pose_checkpoint(tmp_path / "bad.pth")


def test_pre_0_4_1_file_without_batch_counters_loads(reference: torch.nn.Module, tmp_path: Path) -> None:
    state = {k: v for k, v in reference.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "old.pth")
    model, _ = load_pose_checkpoint(tmp_path / "old.pth")
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), reference(x), rtol=0, atol=0)


@pytest.mark.parametrize(
    "content,reason",
    [(b"", "empty"), (b"hello, I am text\n", "not a torch file"), (None, "truncated")],
)
def test_unreadable_files_are_refused(content: bytes | None, reason: str, reference: torch.nn.Module,
                                      tmp_path: Path) -> None:
    path = tmp_path / "x.pth"
    if content is None:
        write_checkpoint(reference, tmp_path / "full.pth", "msra")
        content = (tmp_path / "full.pth").read_bytes()[:100_000]
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=reason):
        load_pose_checkpoint(path)


def test_not_a_pose_checkpoint(tmp_path: Path) -> None:
    torch.save({"weight": torch.zeros(3)}, tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match="fits no known pose layout"):
        load_pose_checkpoint(tmp_path / "x.pth")


def test_pickled_code_outside_metadata_is_refused(tmp_path: Path) -> None:
    import os

    torch.save({"state_dict": {}, "hook": os.getcwd}, tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_pose_checkpoint(tmp_path / "x.pth")


def test_folded_batchnorm_matches(reference: torch.nn.Module) -> None:
    x = torch.randn(2, 3, 128, 96)
    with torch.inference_mode():
        torch.testing.assert_close(fold_batchnorm(reference)(x), reference(x), rtol=1e-4, atol=1e-5)
