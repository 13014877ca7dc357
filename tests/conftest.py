from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import torch

from posetrack_cli import weights as W
from posetrack_cli.runtime import ENV_CACHE

from helpers import write_biased_checkpoints, write_test_manifest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


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
