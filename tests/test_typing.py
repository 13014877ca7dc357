"""A user's own code, type-checked with mypy, sees posetrack's real types (``py.typed`` and the
package's imports for type checkers), and a wrong call is caught before it runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

USER_CODE = '''
import numpy as np
import posetrack_cli
from posetrack_cli import FrameTracker, Poses, VideoTracker, poses_from_coco_results

tracker = FrameTracker(flow=None)
tracked = tracker.update(None, Poses.empty(17))
reveal_type(posetrack_cli.VideoTracker.load)
reveal_type(tracked)
reveal_type(tracked.track_ids)
reveal_type(poses_from_coco_results([]))
reveal_type(posetrack_cli.spec_from_options(preset="fast").pipeline.tracker)
tracker.update(None, "not poses")
'''


@pytest.mark.slow
def test_a_users_type_checker_sees_the_public_types(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    user = tmp_path / "user.py"
    user.write_text(USER_CODE)
    # The checkout on MYPYPATH, as a user's installed copy would be found; posetrack's own modules
    # are read for their types but not reported on (follow_imports=silent), as for any library.
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
                           "--ignore-missing-imports", "--no-incremental", "--config-file", "/dev/null", str(user)],
                          capture_output=True, text=True, cwd=tmp_path, env={"MYPYPATH": str(ROOT), "PATH": ""})
    revealed = re.findall(r'Revealed type is "(.+)"', proc.stdout)
    assert len(revealed) == 5, proc.stdout + proc.stderr
    load, frame, ids, by_frame, config = revealed
    assert "posetrack_cli.run.api.VideoTracker" in load and "Any" not in load.split("->")[-1]
    assert frame == "posetrack_cli.core.types.TrackedFrame"
    assert ids.startswith("numpy.ndarray")
    assert by_frame.replace("builtins.", "") == "dict[int, posetrack_cli.core.types.Poses]"
    assert config == "posetrack_cli.tracking.tracker.TrackerConfig"
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and 'Argument 2 to "update" of "FrameTracker" has incompatible type "str"' in errors[0], \
        proc.stdout
