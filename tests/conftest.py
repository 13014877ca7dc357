from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import write_checkpoint
from posetrack_cli import weights as W
from posetrack_cli.detector import build_detector
from posetrack_cli.models.pose_resnet import pose_resnet

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test gets its own empty weights folder and deterministic torch."""
    monkeypatch.setenv("POSETRACK_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.delenv("POSETRACK_MANIFEST", raising=False)
    torch.manual_seed(0)


@pytest.fixture
def shared_data() -> Path:
    """The real sample data beside the checkout; tests using it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present in this checkout")
    return SHARED_DATA


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The fast preset's files, random-initialised in the released layouts and biased to find people.

    Random weights cannot find people, so biases make them produce a few: the detector's region
    proposals come from one anchor shape only (a few dozen instead of 1,000), its "person" logit is
    raised, and its person box regression is pushed to the largest growth torchvision allows, so
    boxes clip to the frame and NMS keeps about one per frame; the pose head's bias is raised so
    every joint scores above the 0.4 threshold.
    """
    root = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    pose = pose_resnet(depth=18)
    torch.nn.init.constant_(pose.final_layer.bias, 0.5)
    detector = build_detector("fasterrcnn_mobilenet_v3_large_fpn")
    with torch.no_grad():
        detector.rpn.head.cls_logits.bias.fill_(-10.0)
        detector.rpn.head.cls_logits.bias[13] = 10.0  # anchors of size 256, height:width 2
        detector.roi_heads.box_predictor.cls_score.bias[1] = 10.0  # class 1 = person
        detector.roi_heads.box_predictor.bbox_pred.bias[6:8] = 50.0  # person dw, dh: grow to the frame
    manifest = W.load_manifest()
    pose_file = write_checkpoint(pose, root / manifest["pose_resnet50_256x192"].filename, "mmpose-0.x")
    det_file = root / manifest["fasterrcnn_mobilenet_v3_large_fpn"].filename
    torch.save(detector.state_dict(), det_file)
    return {"pose": pose_file, "detector": det_file}


@pytest.fixture
def weights_folder(checkpoints: dict[str, Path]) -> Path:
    """The preset's files under their manifest names in this test's weights folder."""
    folder = W.weights_dir()
    folder.mkdir(parents=True)
    for path in checkpoints.values():
        (folder / path.name).symlink_to(path)
    return folder
