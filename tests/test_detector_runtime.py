"""A detector's backbone on OpenVINO gives torch's feature maps and boxes, is converted once per
weights, and ``posetrack run`` records which runtime ran the detector."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from posetrack_cli.cli import main
from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.inference.detector import PersonDetector
from posetrack_cli.models.detectors import build_detector
from posetrack_cli.runtime import cache
from posetrack_cli.runtime.backbone import OpenVINOBackbone

from helpers import FAST, spread_frozen_statistics

pytest.importorskip("openvino", reason="OpenVINO is not installed (pip install openvino)")


@pytest.fixture(autouse=True)
def private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(cache.ENV_CACHE, str(tmp_path / "cache"))


@pytest.mark.parametrize("architecture", ["fasterrcnn_mobilenet_v3_large_fpn", "ssdlite320_mobilenet_v3_large"])
def test_backbone_features_match_torch_at_any_size(architecture: str) -> None:
    model = spread_frozen_statistics(build_detector(architecture))
    converted = OpenVINOBackbone(model.backbone, name=architecture, precision="fp32", weights_sha256="1" * 64)
    assert converted.out_channels == getattr(model.backbone, "out_channels", None)
    for h, w in [(320, 320), (352, 640)]:
        x = torch.rand(1, 3, h, w)
        with torch.no_grad():
            expected, got = model.backbone(x), converted(x)
        assert list(got) == list(expected)
        for name, value in expected.items():
            scale = float(value.abs().max())
            assert scale > 1e-3, f"feature map {name} is all but zero: the comparison would mean nothing"
            assert got[name].shape == value.shape
            assert float((got[name] - value).abs().max()) <= 1e-4 * scale


def test_detector_on_openvino_finds_torchs_boxes_and_converts_once(tmp_path: Path, shared_data: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    model = spread_frozen_statistics(build_detector("fasterrcnn_mobilenet_v3_large_fpn"))
    with torch.no_grad():  # "person" ahead of the other classes, so that its boxes reach the output
        model.roi_heads.box_predictor.cls_score.bias[1] = 5.0
    weights = tmp_path / "detector.pth"
    torch.save(model.state_dict(), weights)
    video = cv2.VideoCapture(str(shared_data / "video" / "street_5frames.mp4"))
    ok, frame = video.read()
    video.release()
    assert ok
    frame = cv2.resize(frame, (640, 360))
    # threshold 0: an untrained network's boxes all score low, but each must be where torch puts it
    reference = PersonDetector("fasterrcnn_mobilenet_v3_large_fpn", weights, score_threshold=0.0)
    converted = PersonDetector("fasterrcnn_mobilenet_v3_large_fpn", weights, score_threshold=0.0,
                               runtime="openvino", precision="fp32", box_head="fp32")
    assert converted.describe() == {"runtime": "openvino", "precision": "fp32", "box_head": "fp32"}
    a, b = reference.detect([frame])[0], converted.detect([frame])[0]
    assert len(a.boxes) > 10 and len(b.boxes) == len(a.boxes)
    np.testing.assert_allclose(b.scores, a.scores, rtol=0, atol=1e-4)
    np.testing.assert_allclose(b.boxes, a.boxes, rtol=0, atol=0.05)
    assert len(list(cache.cache_dir().glob("fasterrcnn_mobilenet_v3_large_fpn-network-*"))) == 1

    def no_conversion(*args: object, **kwargs: object) -> None:
        raise AssertionError("converted again despite the cache")

    import openvino as ov

    monkeypatch.setattr(ov, "convert_model", no_conversion)
    again = PersonDetector("fasterrcnn_mobilenet_v3_large_fpn", weights, score_threshold=0.0, runtime="openvino",
                           box_head="fp32")
    np.testing.assert_array_equal(again.detect([frame])[0].boxes, b.boxes)


def test_a_detector_refuses_int8() -> None:
    model = build_detector("ssdlite320_mobilenet_v3_large")
    with pytest.raises(PosetrackError, match="fp32 or bf16"):
        OpenVINOBackbone(model.backbone, name="ssdlite320_mobilenet_v3_large", precision="int8",
                         weights_sha256="2" * 64)


@pytest.mark.slow
def test_run_records_the_detectors_runtime(weights_folder: Path, shared_data: Path, tmp_path: Path) -> None:
    video = shared_data / "video" / "street_5frames.mp4"
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(video), "-o", str(out), *FAST, "--runtime", "openvino",
                                       "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    info = json.loads((out / f"{video.stem}.json").read_text())["info"]
    ran = info["settings"]["detector_runtime"]  # the box head in the form measured fastest on this CPU
    assert ran == {"runtime": "openvino", "precision": "fp32", "box_head": ran["box_head"]}
    assert ran["box_head"] in ("fp32", "int8", "bf16")
    assert info["settings"]["runtime"] == "openvino"
