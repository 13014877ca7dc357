from __future__ import annotations

from pathlib import Path

import pytest
import torch

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
