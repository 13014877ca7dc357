from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
import pytest
import torch

from posetrack_cli.io.video import read_image
from posetrack_cli.models import weights as W
from posetrack_cli.runtime.cache import ENV_CACHE
from posetrack_cli.training.data import load_keypoint_annotations
from posetrack_cli.training.loop import RunOptions, TrainConfig, TrainResult, train

from helpers import write_biased_checkpoints, write_test_manifest
from synthetic_people import render_dataset

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# Under pytest-xdist (README's test command runs two workers, one per core of a 2-core machine) each
# worker computes on one thread: two workers of two threads each would fight over the cores. The
# processes a test starts (a killed run, Ray's workers) inherit it through OMP_NUM_THREADS, so they
# compute as the test's own reference runs do (oneDNN's sums differ in the last bits between
# thread counts, and resumed runs are compared byte for byte).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """torch held to one thread for the test (OpenVINO conversion and timing tests on a shared 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def _conversion_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One OpenVINO conversion cache for the session, set before any fixture starts a process (the
    Ray head's workers inherit it): entries are keyed by the weights' digest, and converting the
    same random test checkpoints in every test would cost seconds each."""
    folder = tmp_path_factory.mktemp("openvino-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ENV_CACHE, str(folder))
        yield folder


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test gets its own empty weights folder and deterministic torch."""
    monkeypatch.setenv(W.ENV_WEIGHTS, str(tmp_path / "weights"))
    monkeypatch.delenv(W.ENV_MANIFEST, raising=False)
    torch.manual_seed(0)


@pytest.fixture
def shared_data() -> Path:
    """The real sample data beside the checkout; tests using it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present in this checkout")
    return SHARED_DATA


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The fast preset's files, random-initialised and biased to find people (see helpers)."""
    return write_biased_checkpoints(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="session")
def test_manifest(checkpoints: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in manifest with the SHA-256 of the test checkpoints in place of the released
    files' (as a private mirror's manifest would be), so that the digest check on loading passes."""
    return write_test_manifest(checkpoints, tmp_path_factory.mktemp("manifest") / "manifest.json")


@pytest.fixture
def weights_folder(checkpoints: dict[str, Path], test_manifest: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The preset's files under their manifest names in this test's weights folder, described by
    ``test_manifest``."""
    monkeypatch.setenv(W.ENV_MANIFEST, str(test_manifest))
    folder = W.weights_dir()
    folder.mkdir(parents=True)
    for path in checkpoints.values():
        (folder / path.name).symlink_to(path)
    return folder


@dataclass(frozen=True)
class TrainedOnFigures:
    """A ResNet-18 at 64x64 trained from scratch on rendered figures, and what it was trained on.

    Attributes:
        run: the training run's folder (checkpoints, ``history.csv``).
        samples: the training samples (``load_keypoint_annotations``).
        skipped: what ``load_keypoint_annotations`` left out.
        config: the training settings.
        result: what ``train`` returned.
        images: per image, (BGR frame ``(H, W, 3)``, boxes ``(P, 4)``, true joints ``(P, K, 2)``).
    """

    run: Path
    samples: Any
    skipped: Any
    config: TrainConfig
    result: TrainResult
    images: list[tuple[np.ndarray, np.ndarray, np.ndarray]]


@pytest.fixture(scope="session")
def trained_on_figures(tmp_path_factory: pytest.TempPathFactory) -> TrainedOnFigures:
    """One short training run shared by the tests that need a network with peaked heatmaps (the
    training test checks that it learned; the runtime tests measure int8 and OpenVINO against it)."""
    folder = tmp_path_factory.mktemp("figures")
    annotations = render_dataset(folder / "images", images=24, size=(192, 160), seed=0)
    samples, skipped = load_keypoint_annotations([annotations])
    # Flip stays on (left/right renaming must be learnable); random scale and rotation are off, as learning
    # through them takes several times the steps. Their geometry is checked in test_training_targets.py.
    config = TrainConfig(depth=18, input_size=(64, 64), init="scratch", epochs=20, lr_steps=(14,), batch_size=8,
                         scale_factor=0.0, rotation_factor=0.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads on a shared 2-core machine slow training several-fold
    try:
        result = train(config, samples, folder / "run", options=RunOptions(device="cpu", workers=0, progress=False),
                       log=lambda _: None, warn=lambda _: None)
    finally:
        torch.set_num_threads(threads)
    images = []
    for i, path in enumerate(samples.image_paths):
        rows = np.flatnonzero(samples.image_index == i)
        images.append((read_image(path), samples.boxes[rows], samples.keypoints[rows]))
    return TrainedOnFigures(folder / "run", samples, skipped, config, result, images)
