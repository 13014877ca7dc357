"""The per-CPU choice between equivalent forms: timed once, remembered, and safe with its file."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from posetrack_cli.runtime.cpu import SPEED_FLAGS, cpu_info
from posetrack_cli.runtime.tuning import CHOICES, fastest


def spin(ms: float) -> None:
    end = time.process_time() + ms / 1000
    while time.process_time() < end:
        pass


def never() -> None:
    raise AssertionError("a remembered choice must not be timed again")


def test_the_cpu_is_named_with_its_speed_flags() -> None:
    info = cpu_info()
    assert info.model and info.cores >= 1
    assert set(info.flags) <= set(SPEED_FLAGS)
    assert info.line().startswith(info.model) and "flags:" in info.line()


def test_the_faster_form_is_chosen_and_remembered_for_this_cpu(tmp_path: Path) -> None:
    choice = fastest("demo", {"slow": lambda: spin(6), "quick": lambda: spin(1)}, calls=3, folder=tmp_path)
    assert (choice.name, choice.measured) == ("quick", True)
    assert choice.ms["slow"] > 3 * choice.ms["quick"]
    again = fastest("demo", {"slow": never, "quick": never}, folder=tmp_path)
    assert (again.name, again.measured, again.ms) == ("quick", False, choice.ms)
    document = json.loads((tmp_path / CHOICES).read_text())
    assert document["choices"][cpu_info().identity()]["demo"]["choice"] == "quick"


def test_another_task_or_another_set_of_forms_is_timed_anew(tmp_path: Path) -> None:
    fastest("demo", {"a": lambda: spin(3), "b": lambda: spin(0.5)}, calls=3, folder=tmp_path)
    other = fastest("demo at another size", {"a": lambda: spin(0.5), "b": lambda: spin(3)}, calls=3, folder=tmp_path)
    assert (other.name, other.measured) == ("a", True)
    grown = fastest("demo", {"a": lambda: spin(3), "b": lambda: spin(3), "c": lambda: spin(0.2)}, calls=3,
                    folder=tmp_path)
    assert (grown.name, grown.measured) == ("c", True)
    kept = json.loads((tmp_path / CHOICES).read_text())["choices"][cpu_info().identity()]
    assert set(kept) == {"demo", "demo at another size"}


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe", b'{"version": 99, "choices": {}}', b"[]"])
def test_a_damaged_choices_file_is_measured_again_with_one_warning(tmp_path: Path, content: bytes) -> None:
    (tmp_path / CHOICES).write_bytes(content)
    warnings: list[str] = []
    choice = fastest("demo", {"slow": lambda: spin(4), "quick": lambda: spin(0.5)}, calls=3, folder=tmp_path,
                     warn=warnings.append)
    assert (choice.name, choice.measured) == ("quick", True)
    assert len(warnings) == 1 and str(tmp_path / CHOICES) in warnings[0]
    assert json.loads((tmp_path / CHOICES).read_text())["version"] == 1  # replaced by a whole file


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_unwritable_cache_costs_only_the_remembering(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    warnings: list[str] = []
    try:
        choice = fastest("demo", {"slow": lambda: spin(4), "quick": lambda: spin(0.5)}, calls=3,
                         folder=tmp_path, warn=warnings.append)
    finally:
        tmp_path.chmod(0o700)
    assert choice.name == "quick" and len(warnings) == 1 and "timed again next run" in warnings[0]
    assert list(tmp_path.iterdir()) == []


def test_a_cache_path_that_is_a_file_warns_and_still_chooses(tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the folder should be")
    warnings: list[str] = []
    choice = fastest("demo", {"slow": lambda: spin(4), "quick": lambda: spin(0.5)}, calls=3,
                     folder=blocker, warn=warnings.append)
    assert choice.name == "quick" and len(warnings) == 1
    assert blocker.read_text() == "a file where the folder should be"
