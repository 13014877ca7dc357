"""The speed options leave results as they are: threads that overlap stages, compiled networks."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.keypoints import COCO_KEYPOINTS
from posetrack_cli.core.types import Detections
from posetrack_cli.inference.config import EstimatorConfig
from posetrack_cli.inference.estimator import PoseEstimator
from posetrack_cli.io.outputs import OutputSet
from posetrack_cli.models.checkpoints import InputNorm
from posetrack_cli.models.flow import DISFlow
from posetrack_cli.models.pose_resnet import pose_resnet
from posetrack_cli.run.pipeline import Pipeline, PipelineConfig

from synthetic import Person, linear_path, render

FRAMES = 10


class Boxes:
    name = "truth"

    def __init__(self, people: list[Person]) -> None:
        self.people = people

    def get(self, index: int) -> Detections:
        return Detections(np.stack([p.box(index) for p in self.people]), [0.97] * len(self.people))


@pytest.fixture(scope="module")
def sequence(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Person], Path]:
    people = [Person(140, linear_path((40, 20), (9, 1), FRAMES), seed=5),
              Person(130, linear_path((330, 120), (-8, 0), FRAMES), seed=6)]
    folder = tmp_path_factory.mktemp("frames")
    for t, frame in enumerate(render(people, FRAMES, size=(480, 320))):
        cv2.imwrite(str(folder / f"{t:03d}.png"), frame)
    return people, folder


def run_pipeline(folder: Path, people: list[Person], out: Path, **config: object) -> dict:
    torch.manual_seed(0)
    model = pose_resnet(depth=18)
    torch.nn.init.constant_(model.final_layer.bias, 0.5)  # random joints, but confident: people are kept
    estimator = PoseEstimator(model, norm=InputNorm("rgb"), keypoint_names=COCO_KEYPOINTS,
                              config=EstimatorConfig(input_size=(64, 64), device="cpu"))
    from posetrack_cli.io.video import ImageFolderSource

    out.mkdir()
    with OutputSet(out, "seq", render=True).open(COCO_KEYPOINTS, fps=10.0, draw=lambda image, frame: image) as writer:
        result = Pipeline(estimator, DISFlow(), PipelineConfig(**config)).run(ImageFolderSource(folder), writer,
                                                                             boxes=Boxes(people))
        writer.commit({"frames": FRAMES})
    assert result.frames == FRAMES
    return json.loads((out / "seq.json").read_text())


@pytest.mark.slow
def test_overlapping_stages_in_threads_gives_the_same_output(sequence, tmp_path: Path) -> None:
    people, folder = sequence
    plain = run_pipeline(folder, people, tmp_path / "plain", overlap=False)
    threaded = run_pipeline(folder, people, tmp_path / "threaded", overlap=True, detect_batch=3)
    assert len(plain["annotations"]) >= 2 * FRAMES
    for a, b in zip(plain["annotations"], threaded["annotations"], strict=True):
        assert (a["image_id"], a["track_id"]) == (b["image_id"], b["track_id"])
        np.testing.assert_allclose(a["keypoints"], b["keypoints"], atol=1e-3)
    overlay = cv2.VideoCapture(str(tmp_path / "threaded" / "seq.mp4"))
    assert int(overlay.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES  # written behind, all of it


@pytest.mark.slow
def test_compiled_network_gives_the_same_keypoints() -> None:
    """torch.compile (Inductor, frozen weights) against eager on peaked heatmaps: within 0.05 px."""
    from test_estimator import MarkerNet, person_frame

    frame, box, _ = person_frame(np.random.default_rng(3))
    boxes = Detections(np.stack([box, box + [8, 4, 8, 4]]), [0.9, 0.8])
    results = []
    for compiled in (False, True):
        est = PoseEstimator(MarkerNet(), norm=InputNorm("bgr", (0, 0, 0), (1, 1, 1)), keypoint_names=COCO_KEYPOINTS,
                            config=EstimatorConfig(input_size=(192, 256), device="cpu", compile=compiled))
        results.append(est.estimate(frame, boxes))
    np.testing.assert_allclose(results[1].keypoints, results[0].keypoints, atol=0.05)
    np.testing.assert_allclose(results[1].keypoint_scores, results[0].keypoint_scores, rtol=1e-4, atol=1e-5)


def test_half_precision_is_refused_without_cuda() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(PosetrackError, match="half precision needs a CUDA device"):
        PoseEstimator(pose_resnet(depth=18), norm=InputNorm("rgb"), keypoint_names=COCO_KEYPOINTS,
                      config=EstimatorConfig(device="cpu", half=True))
