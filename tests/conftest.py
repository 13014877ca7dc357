from __future__ import annotations

from pathlib import Path

import pytest
import torch

from posetrack_cli import weights as W

from helpers import write_biased_checkpoints

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
    """The fast preset's files, random-initialised and biased to find people (see helpers)."""
    return write_biased_checkpoints(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture
def weights_folder(checkpoints: dict[str, Path]) -> Path:
    """The preset's files under their manifest names in this test's weights folder."""
    folder = W.weights_dir()
    folder.mkdir(parents=True)
    for path in checkpoints.values():
        (folder / path.name).symlink_to(path)
    return folder
