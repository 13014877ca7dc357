"""The detectors' fast paths give torchvision's answers: SSDlite's person-only postprocessing finds
torchvision's person boxes, its backbone and heads in OpenVINO agree with torch, and a Faster R-CNN's
box head in int8 or bf16 agrees with fp32 within stated bounds, its form chosen once per CPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.keypoints import COCO_PERSON
from posetrack_cli.inference.detector import PersonDetector
from posetrack_cli.models.detectors import build_detector
from posetrack_cli.models.ssd_person import SSDDecoding, SSDNetwork, person_boxes
from posetrack_cli.runtime import box_head as box_head_module
from posetrack_cli.runtime import cache, tuning
from posetrack_cli.runtime.box_head import box_head_form, choose_box_head

from helpers import detect_in_a_fresh_process, spread_frozen_statistics

SSD = "ssdlite320_mobilenet_v3_large"
RCNN = "fasterrcnn_mobilenet_v3_large_fpn"
# Relative error (||form - fp32|| / ||fp32||) of the box predictor's class logits and box deltas.
BOUNDS = {"int8": 0.03, "bf16": 0.01, "bf16-openvino": 0.01}


@pytest.fixture(autouse=True)
def private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(cache.ENV_CACHE, str(tmp_path / "cache"))


def _ssd_favouring(label: int, bias: float) -> torch.nn.Module:
    """An SSDlite whose classification heads lean towards ``label`` on every anchor by ``bias`` plus
    up to 1 (spread, so that anchors whose features an untrained network zeroes do not tie)."""
    model = spread_frozen_statistics(build_detector(SSD))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for head in model.head.classification_head.module_list:
            column = head[1].bias.view(-1, 91)[:, label]
            column += bias + torch.rand(column.shape, generator=g)
    return model


def test_person_postprocessing_finds_torchvisions_person_boxes() -> None:
    """On the same head outputs, with persons over the threshold on hundreds of anchors and another
    class on others: the boxes and scores of torchvision's all-class postprocessing, person rows."""
    model = _ssd_favouring(COCO_PERSON, 3.0)
    with torch.no_grad():
        model.head.classification_head.module_list[0][1].bias.view(-1, 91)[:, 3] += 6.0  # cars, on one map
        out = model.head(list(model.backbone(torch.rand(1, 3, 320, 320)).values()))
    from torchvision.models.detection.image_list import ImageList

    images = ImageList(torch.zeros(1, 3, 320, 320), [(320, 320)])
    with torch.no_grad():
        grid = model.anchor_generator(images, list(model.backbone(images.tensors).values()))
    model.score_thresh = 0.05  # many persons and cars above it, fewer than 300 boxes of all classes after NMS
    expected = model.postprocess_detections(out, grid, [(320, 320)])[0]
    persons = expected["labels"] == COCO_PERSON
    assert 20 < int(persons.sum()) < len(expected["labels"]) < model.detections_per_img
    scores = out["cls_logits"][0].softmax(-1)[:, COCO_PERSON]
    decoding = SSDDecoding.of(model)
    torch.testing.assert_close(torch.from_numpy(decoding.anchors), grid[0], rtol=0, atol=0)
    kept = SSDDecoding.from_about(json.loads(json.dumps(decoding.about())))  # as the model cache keeps it
    assert kept.about() == decoding.about() and np.array_equal(kept.anchors, decoding.anchors)
    boxes, got = person_boxes(scores, out["bbox_regression"][0], decoding, model.score_thresh)
    torch.testing.assert_close(got, expected["scores"][persons], rtol=0, atol=1e-6)
    torch.testing.assert_close(boxes, expected["boxes"][persons], rtol=0, atol=1e-4)


@pytest.mark.slow
def test_ssd_detects_torchvisions_persons_on_torch_and_openvino(tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    model = _ssd_favouring(COCO_PERSON, 5.0)
    weights = tmp_path / "ssd.pth"
    torch.save(model.state_dict(), weights)
    frame = np.random.default_rng(0).integers(0, 256, (360, 640, 3), dtype=np.uint8)
    reference = PersonDetector(SSD, weights)
    with torch.no_grad():  # torchvision's own forward: every class decoded, then the person rows
        stock = reference.model([torch.from_numpy(frame).permute(2, 0, 1).float()])[0]
    keep = stock["labels"] == COCO_PERSON
    found = reference.detect([frame])[0]
    assert len(found.boxes) > 10
    np.testing.assert_allclose(found.scores, stock["scores"][keep].numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(found.boxes, stock["boxes"][keep].numpy(), rtol=0, atol=1e-3)
    converted = PersonDetector(SSD, weights, runtime="openvino")
    assert converted._ssd is not None and not isinstance(converted._ssd.network, SSDNetwork)  # OpenVINO's
    # The network's outputs agree; boxes are compared by score, since an untrained network zeroes
    # whole feature maps and then many anchors tie, which NMS may keep in either order.
    batch = torch.rand(2, 3, 320, 320) * 4 - 2
    with torch.no_grad():
        expected_scores, expected_offsets = SSDNetwork(reference.model)(batch)
    scores, offsets = converted._ssd.network(batch)
    assert float(expected_scores.std()) > 0.01
    torch.testing.assert_close(scores, expected_scores, rtol=0, atol=1e-4)
    torch.testing.assert_close(offsets, expected_offsets, rtol=0, atol=1e-4 * float(expected_offsets.abs().max()))
    again = converted.detect([frame, frame])  # a batch of two: each frame its own boxes
    for b in again:
        np.testing.assert_allclose(b.scores[:20], found.scores[:20], rtol=0, atol=1e-4)
        np.testing.assert_array_equal(b.boxes, again[0].boxes)
    assert converted.describe() == {"runtime": "openvino", "precision": "fp32"}
    with pytest.raises(PosetrackError, match="no box head"):
        PersonDetector(SSD, weights, box_head="int8")


@pytest.mark.slow
def test_a_warm_ssd_builds_no_torchvision_model_and_finds_the_same_boxes(tmp_path: Path) -> None:
    """With the converted network cached, SSDlite on OpenVINO builds nothing of torchvision's: in a
    fresh process, the detector loads from the cache, finds the boxes the converting run found, and
    torchvision (whose import takes torch._dynamo: seconds of a warm start) is never imported."""
    pytest.importorskip("openvino")
    weights = tmp_path / "ssd.pth"
    torch.save(_ssd_favouring(COCO_PERSON, 5.0).state_dict(), weights)
    frame = np.random.default_rng(0).integers(0, 256, (360, 640, 3), dtype=np.uint8)
    first = PersonDetector(SSD, weights, runtime="openvino").detect([frame])[0]  # converts, fills the cache
    assert len(first.boxes) > 10
    boxes, scores, imported = detect_in_a_fresh_process(SSD, weights, frame, tmp_path)
    assert imported == []
    np.testing.assert_array_equal(boxes, first.boxes)
    np.testing.assert_array_equal(scores, first.scores)


@pytest.mark.parametrize("form", ["int8", "bf16", "bf16-openvino"])
def test_box_head_forms_agree_with_fp32(form: str) -> None:
    """Each form's class logits and box deltas within its bound of fp32's, on 64 RoIs of rectified
    random features (torch's bf16 is emulated on CPUs without it: slow, but the same numbers;
    OpenVINO computes fp32 there instead, so its form's error is only bounded, not seen)."""
    if form.endswith("openvino"):
        pytest.importorskip("openvino")
    model = build_detector(RCNN)
    head, predictor = model.roi_heads.box_head, model.roi_heads.box_predictor
    features = torch.randn(64, 256, 7, 7, generator=torch.Generator().manual_seed(0)).relu()
    with torch.inference_mode():
        logits, deltas = predictor(head(features))
        form_logits, form_deltas = predictor(box_head_form(head, form, source=(RCNN, "3" * 64))(features))
    for ours, reference in ((form_logits, logits), (form_deltas, deltas)):
        error = float((ours - reference).norm() / reference.norm())
        assert error <= BOUNDS[form]
        assert error > 0 or form == "bf16-openvino"  # not fp32 itself


def test_the_int8_box_head_is_kept_and_loaded_rather_than_quantized_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the detector's name and digest, the int8 form's layers are kept in the model cache: a
    later run loads them (no quantization, the same numbers), and a damaged entry is made again
    with one warning."""
    import torch.ao.quantization

    head = build_detector(RCNN).roi_heads.box_head
    features = torch.randn(16, 256, 7, 7, generator=torch.Generator().manual_seed(0)).relu()
    source = (RCNN, "5" * 64)
    with torch.inference_mode():
        expected = box_head_form(head, "int8", source=source)(features)
    with monkeypatch.context() as patched:
        patched.setattr(torch.ao.quantization, "quantize_dynamic", lambda *a, **k: pytest.fail("quantized again"))
        loaded = box_head_form(head, "int8", source=source)
    with torch.inference_mode():
        assert torch.equal(loaded(features), expected)
    [kept] = cache.cache_dir().glob(f"{RCNN}-box_head-*/box_head.pt")
    kept.write_bytes(kept.read_bytes()[:100])
    said: list[str] = []
    remade = box_head_form(head, "int8", source=source, warn=said.append)
    assert len(said) == 1 and "damaged" in said[0] and "box_head.pt" in said[0]
    with torch.inference_mode():
        assert torch.equal(remade(features), expected)
    assert kept.stat().st_size > 1_000_000  # whole again


def test_box_head_form_is_chosen_once_offered_by_the_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = build_detector(RCNN)
    head = model.roi_heads.box_head
    with pytest.raises(PosetrackError, match="no native bf16"):
        choose_box_head(head, "bf16", task="t", proposals=8, native_bf16=False)
    timed: list[set[str]] = []
    real_fastest = tuning.fastest

    def spy(task: str, candidates: dict[str, object], **kwargs: object) -> tuning.Choice:
        timed.append(set(candidates))
        return real_fastest(task, candidates, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(box_head_module, "fastest", spy)
    source = (RCNN, "4" * 64)
    form, choice = choose_box_head(head, "auto", task="bf16 here", proposals=8, native_bf16=True, source=source)
    assert timed == [set(BOUNDS) | {"fp32"}] and choice.measured and set(choice.ms) == timed[0]
    made: list[str] = []
    real_form = box_head_module.box_head_form
    monkeypatch.setattr(box_head_module, "box_head_form",
                        lambda head, name, **kwargs: made.append(name) or real_form(head, name, **kwargs))
    _, again = choose_box_head(head, "auto", task="bf16 here", proposals=8, native_bf16=True, source=source)
    assert (again.name, again.measured) == (choice.name, False)  # remembered, not timed again
    assert made == [choice.name]  # and only the chosen form made
    _, plain = choose_box_head(head, "auto", task="avx2", proposals=8, native_bf16=False)
    assert timed[-1] == {"fp32", "int8"} and plain.name in ("fp32", "int8")
    remembered = json.loads((cache.cache_dir() / tuning.CHOICES).read_text())["choices"]
    assert {"bf16 here", "avx2"} <= {task for tasks in remembered.values() for task in tasks}


@pytest.mark.slow
def test_faster_rcnn_in_its_chosen_form_finds_fp32s_boxes(tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    model = spread_frozen_statistics(build_detector(RCNN))
    with torch.no_grad():  # "person" ahead of the other classes, so that its boxes reach the output
        model.roi_heads.box_predictor.cls_score.bias[COCO_PERSON] = 5.0
    weights = tmp_path / "rcnn.pth"
    torch.save(model.state_dict(), weights)
    frame = np.random.default_rng(1).integers(0, 256, (360, 640, 3), dtype=np.uint8)
    reference = PersonDetector(RCNN, weights, score_threshold=0.0, proposals=100)
    assert reference.describe() == {"runtime": "torch", "precision": "fp32"}
    chosen = PersonDetector(RCNN, weights, score_threshold=0.0, proposals=100, runtime="openvino")
    assert chosen.describe()["box_head"] in ("fp32", "int8")
    assert chosen.model is None and chosen._rcnn is not None  # no torchvision model: posetrack's decoding
    forced = PersonDetector(RCNN, weights, score_threshold=0.0, proposals=100, runtime="openvino", box_head="int8")
    assert forced.describe() == {"runtime": "openvino", "precision": "fp32", "box_head": "int8"}
    a, b = reference.detect([frame])[0], forced.detect([frame])[0]
    assert len(a.boxes) >= 20
    # the 20 best fp32 boxes, each found again in int8 within a pixel, its score within 0.01
    for box, score in zip(a.boxes[:20], a.scores[:20]):
        nearest = np.abs(b.boxes - box).max(axis=1).argmin()
        assert np.abs(b.boxes[nearest] - box).max() <= 1.0 and abs(b.scores[nearest] - score) <= 0.01


def test_a_cpu_with_native_bf16_runs_the_box_head_in_bf16(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the CPU computes bf16 (faked here: on AVX2 torch emulates it, slowly but correctly), the
    bf16 form can be asked for, runs, and is recorded; without it, asking is an error."""
    from posetrack_cli.runtime import cpu

    torch.save(build_detector(RCNN).state_dict(), tmp_path / "rcnn.pth")
    monkeypatch.setattr(cpu, "cpu_info", lambda: cpu.CpuInfo("an AVX2 CPU", ("avx2",), 2))
    with pytest.raises(PosetrackError, match="no native bf16"):
        PersonDetector(RCNN, tmp_path / "rcnn.pth", proposals=20, box_head="bf16")
    monkeypatch.setattr(cpu, "cpu_info", lambda: cpu.CpuInfo("a CPU with AMX", ("avx2", "avx512f", "amx_bf16"), 2))
    detector = PersonDetector(RCNN, tmp_path / "rcnn.pth", score_threshold=0.0, proposals=20, box_head="bf16")
    assert detector.describe() == {"runtime": "torch", "precision": "fp32", "box_head": "bf16"}
    found = detector.detect([np.random.default_rng(2).integers(0, 256, (240, 320, 3), dtype=np.uint8)])[0]
    assert found.boxes.dtype == np.float32 and found.boxes.shape[1:] == (4,)
