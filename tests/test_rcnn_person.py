"""A Faster R-CNN's person boxes without torchvision's Python package: posetrack's decoding
(models/rcnn_person.py) gives torchvision's person boxes, its compiled operators loaded on their
own give torchvision's numbers, and a warm start on OpenVINO never imports torchvision."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from posetrack_cli.core.keypoints import COCO_PERSON
from posetrack_cli.inference.detector import PersonDetector
from posetrack_cli.models import vision_ops
from posetrack_cli.models.detectors import RCNN_DEFAULTS, build_detector, rcnn_run
from posetrack_cli.models.rcnn_person import PersonPredictor, PersonRCNN, RCNNDecoding, RPNNetwork, TwoLayerHead
from posetrack_cli.runtime import cache

from helpers import detect_in_a_fresh_process, spread_frozen_statistics

RCNN = "fasterrcnn_mobilenet_v3_large_fpn"
RCNN_320 = "fasterrcnn_mobilenet_v3_large_320_fpn"


@pytest.fixture(autouse=True)
def private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(cache.ENV_CACHE, str(tmp_path / "cache"))


def _favouring_person(name: str, path: Path) -> Path:
    """An untrained ``name`` with spread BatchNorm statistics whose predictor puts "person" ahead of
    every other class (probability ~0.62 on every RoI), saved to ``path``."""
    model = spread_frozen_statistics(build_detector(name))
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.bias[COCO_PERSON] = 5.0
    torch.save(model.state_dict(), path)
    return path


def _frames(h: int, w: int) -> list[np.ndarray]:
    rng = np.random.default_rng(h)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(2)]


@pytest.mark.parametrize(("name", "size", "options"), [
    (RCNN, (360, 640), {}),  # smaller than the model's 800: run at its own size, 1000 proposals
    (RCNN, (360, 640), {"min_size": 480, "proposals": 300}),  # a size asked for: enlarged; fewer proposals
    (RCNN_320, (450, 800), {}),  # the 320-pixel model: shrunk, 150 proposals
])
def test_person_rcnn_finds_torchvisions_person_boxes(tmp_path: Path, name: str, size: tuple[int, int],
                                                     options: dict[str, int]) -> None:
    """Each step run on the same network in torch: the same boxes and scores as torchvision's
    forward, for a batch of two frames, through a decoding that went through JSON."""
    weights = _favouring_person(name, tmp_path / "rcnn.pth")
    reference = PersonDetector(name, weights, **options)  # torchvision's model, as the torch runtime runs it
    frames = _frames(*size)
    expected = reference.detect(frames)
    state = torch.load(weights, weights_only=True)
    decoding = RCNNDecoding.from_about(json.loads(json.dumps(RCNNDecoding.of(reference.model).about())))
    head = TwoLayerHead.from_state(state)
    assert head is not None
    ours = PersonRCNN(decoding, RPNNetwork(reference.model), head, PersonPredictor(state),
                      rcnn_run(name, reference.score_threshold, options.get("min_size"), options.get("proposals")))
    found = ours(frames)
    for (boxes, scores), wanted in zip(found, expected):
        assert len(wanted.boxes) >= 50  # persons past the 0.5 threshold, up to torchvision's 100
        np.testing.assert_allclose(boxes, wanted.boxes, rtol=0, atol=1e-4)
        np.testing.assert_allclose(scores, wanted.scores, rtol=0, atol=1e-6)
    assert not np.array_equal(found[0][0], found[1][0])  # each frame its own boxes


def test_run_settings_are_torchvisions_for_each_faster_rcnn() -> None:
    """RCNN_DEFAULTS and rcnn_run give the sizes and proposal counts torchvision's builders set."""
    for name in RCNN_DEFAULTS:
        for min_size, proposals in ((None, None), (480, 300)):
            model = build_detector(name, min_size=min_size, proposals=proposals)
            run = rcnn_run(name, 0.5, min_size, proposals)
            transform = model.transform
            assert (run.min_size, run.max_size) == (transform.min_size[-1], transform.max_size)
            assert (run.proposals_before_nms, run.proposals) == (model.rpn._pre_nms_top_n["testing"],
                                                                 model.rpn._post_nms_top_n["testing"])
            assert run.upscale == (min_size is not None)
    # the ResNet-50-FPN v2 box head has convolutions: it is taken from torchvision's model, not rebuilt
    assert TwoLayerHead.from_state(build_detector("fasterrcnn_resnet50_fpn_v2").state_dict()) is None


def test_compiled_operators_are_torchvisions() -> None:
    """RoIAlign and NMS loaded on their own equal torchvision's, and batched NMS takes its two ways
    (one NMS with groups shifted apart up to 1000 boxes, one NMS per group above) with its results."""
    g = torch.Generator().manual_seed(0)
    features = torch.randn(2, 8, 40, 60, generator=g)
    corners = torch.rand(50, 2, generator=g) * torch.tensor([480.0, 320.0])
    boxes = torch.cat([corners, corners + torch.rand(50, 2, generator=g) * 200], dim=1)
    rois = torch.cat([torch.randint(0, 2, (50, 1), generator=g).float(), boxes], dim=1)
    torch.testing.assert_close(vision_ops.roi_align(features, rois, 0.125, 7, 2),
                               torchvision.ops.roi_align(features, rois, 7, 0.125, 2, aligned=False), rtol=0, atol=0)
    for n in (300, 1500):
        corners = torch.rand(n, 2, generator=g) * 500
        boxes = torch.cat([corners, corners + torch.rand(n, 2, generator=g) * 100 + 1], dim=1)
        scores = torch.rand(n, generator=g).round(decimals=2)  # ties
        groups = torch.randint(0, 4, (n,), generator=g)
        wanted = torchvision.ops.batched_nms(boxes, scores, groups, 0.5)
        assert 0 < len(wanted) < n
        assert torch.equal(vision_ops.batched_nms(boxes, scores, groups, 0.5), wanted)
        assert torch.equal(vision_ops.nms(boxes, scores, 0.5), torchvision.ops.nms(boxes, scores, 0.5))


@pytest.mark.slow
def test_a_warm_faster_rcnn_imports_no_torchvision_and_finds_the_same_boxes(tmp_path: Path) -> None:
    """On OpenVINO the converting run finds the boxes torch finds; then, with the network and its
    decoding cached, a fresh process builds nothing of torchvision's, never imports it (its import
    takes torch._dynamo: seconds of a warm start), and finds the converting run's boxes bit for bit."""
    pytest.importorskip("openvino")
    weights = _favouring_person(RCNN, tmp_path / "rcnn.pth")
    frame = _frames(360, 640)[0]
    expected = PersonDetector(RCNN, weights, proposals=300).detect([frame])[0]
    converting = PersonDetector(RCNN, weights, proposals=300, runtime="openvino")
    assert converting.model is None and converting.describe()["box_head"] in ("fp32", "int8")
    first = converting.detect([frame])[0]
    assert len(first.boxes) >= 50
    # the 20 best torch boxes, each found again within a pixel and its score within 0.01 (int8's bound)
    for box, score in zip(expected.boxes[:20], expected.scores[:20]):
        nearest = np.abs(first.boxes - box).max(axis=1).argmin()
        assert np.abs(first.boxes[nearest] - box).max() <= 1.0 and abs(first.scores[nearest] - score) <= 0.01
    boxes, scores, imported = detect_in_a_fresh_process(RCNN, weights, frame, tmp_path, proposals=300)
    assert imported == []
    np.testing.assert_array_equal(boxes, first.boxes)
    np.testing.assert_array_equal(scores, first.scores)
