"""The wheel carries every subpackage: pyproject.toml lists its packages by hand, so check the list."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

ROOT = Path(__file__).resolve().parents[1]


def test_the_package_list_is_every_package_on_disk_plus_the_manifest() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    on_disk = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "posetrack_cli").rglob("__init__.py")}
    # A subpackage missing from the list is missing from the wheel: `import` fails only once installed.
    assert sorted(setuptools["packages"]) == sorted(on_disk | {"posetrack_cli.manifest"})
    # The manifest package is the weights/ folder, and the wheel takes its manifest.json.
    manifest = ROOT / setuptools["package-dir"]["posetrack_cli.manifest"]
    assert (manifest / "__init__.py").is_file() and (manifest / "manifest.json").is_file()
