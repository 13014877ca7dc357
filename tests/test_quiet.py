"""A normal ``posetrack run`` says nothing on stderr but its progress (the summary table goes to
stdout); ``--verbose`` shows the libraries' own warnings that a run hides.

Each test runs the real command line in a process of its own (warnings are printed once per
process, and a library's import-time chatter only shows in a fresh one), on the fast preset at a
tiny input size, with a conversion cache of its own: the pose network and the detector's backbone
are converted to OpenVINO (traced by torch) in the run, where the warnings come from.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from posetrack_cli.runtime.cache import ENV_CACHE

from helpers import FAST, walkers, write_video

# One tqdm progress line of the input (each redraw starts with a carriage return).
PROGRESS = re.compile(r"^clip\.mp4: +\d+%\|")
SUMMARY = re.compile(r"^clip\.mp4 +ok +3 ", re.M)


def _run(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """``posetrack run clip.mp4 -o out`` (3 frames, the fast preset at a 32x32 input, progress on)
    in ``tmp_path``, in a process of its own with an empty conversion cache."""
    write_video(tmp_path / "clip.mp4", walkers(frames=3))
    env = {**os.environ, ENV_CACHE: str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONWARNINGS", None)  # as a user's shell has it
    args = [a for a in FAST if a != "--no-progress"]  # the progress line is part of a normal run
    return subprocess.run([sys.executable, "-m", "posetrack_cli", "run", "clip.mp4", "-o", "out", *args, *flags],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False)


def test_a_normal_run_prints_only_its_progress_and_summary(weights_folder: Path, tmp_path: Path) -> None:
    """The fast preset as a user runs it: the detector's backbone and the pose network converted
    to OpenVINO, the box head's forms timed (its int8 form made by torch's quantization API)."""
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert SUMMARY.search(result.stdout), result.stdout
    lines = [line for line in re.split(r"[\r\n]", result.stderr) if line.strip()]
    assert lines and all(PROGRESS.match(line) for line in lines), f"more than progress on stderr:\n{result.stderr}"
    assert any(p.name.startswith("pose-") for p in (tmp_path / "cache").iterdir())  # it did convert


def test_verbose_shows_the_library_warnings(weights_folder: Path, tmp_path: Path) -> None:
    """The pose network converted with --verbose: torch's tracer warnings show, with their source
    lines (boxes from a file, so that no detector loads: the conversion is what is tested)."""
    boxes = [{"image_id": t, "category_id": 1, "bbox": [30.0 + 10 * t, 15.0, 60.0, 130.0], "score": 0.9}
             for t in range(3)]
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    result = _run(tmp_path, "--detections", "boxes.json", "--verbose")
    assert result.returncode == 0, result.stderr
    assert re.search(r"FutureWarning: `torch\.jit\.trace` is deprecated", result.stderr), result.stderr
    assert SUMMARY.search(result.stdout), result.stdout
