"""``posetrack report``: the HTML page and its pictures, checked in files and in a real headless browser."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from posetrack_cli.cli import main
from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.keypoints import COCO_KEYPOINTS
from posetrack_cli.core.types import TrackedFrame
from posetrack_cli.io.derived import png_is_ours
from posetrack_cli.io.report import INSTALL_HINT, SECTIONS, report_paths, write_report

from helpers import write_track_document, write_video
from synthetic import Person, linear_path, poses_at, render

pytest.importorskip("matplotlib")  # the report extra

FRAMES = 8
TITLES = [title for _, title in SECTIONS]


@pytest.fixture
def clip(tmp_path: Path) -> tuple[dict, Path]:
    """A rendered clip of two walkers and its track document: person 1 lost in frames 3-4 and
    re-identified in frame 5 (``match: lost``), person 0 throughout; stage timings recorded."""
    people = [Person(100, linear_path((60, 20), (8, 0), FRAMES), seed=1),
              Person(90, linear_path((250, 40), (-6, 0), FRAMES), seed=2)]
    video = write_video(tmp_path / "walk.mp4", render(people, FRAMES, size=(320, 240)))
    frames = []
    for t in range(FRAMES):
        present = [True, t not in (3, 4)]
        poses, who = poses_at(people, t, present)
        matches = ["live" if t else "new", "lost" if t == 5 else ("live" if t else "new")][:len(who)]
        frames.append(TrackedFrame(t, t / 10, poses, who, matches=np.array(matches)))
    doc = write_track_document(tmp_path / "run", "walk", frames, [(320, 240, None)] * FRAMES, COCO_KEYPOINTS,
                               {"source": str(video), "stage_seconds": {"decode": 0.05, "detect": 1.2, "flow": 0.3,
                                                                        "pose": 2.1, "track": 0.01}})
    assert [a["match"] for a in doc["annotations"]].count("lost") == 1  # the writer records how ids were given
    return doc, video


def test_report_files(clip: tuple[dict, Path], tmp_path: Path) -> None:
    doc, video = clip
    out = tmp_path / "out"
    written = write_report(doc, out, name="walk")
    paths = report_paths(out, "walk")
    assert written[0] == paths["html"] and sorted(written[1:]) == sorted(paths[k] for k, _ in SECTIONS)
    page = paths["html"].read_text()
    for title in TITLES:
        assert f"<h2>{title}</h2>" in page
    assert page.count('src="data:image/png;base64,') == len(SECTIONS)
    assert "http://" not in page and "https://" not in page and "<script" not in page  # nothing fetched
    for key, _ in SECTIONS:
        image = cv2.imread(str(paths[key]))
        assert image is not None and image.std() > 5, key  # a picture, not a blank
        assert png_is_ours(paths[key])
    sheet = cv2.imread(str(paths["tracks"]))
    assert sheet.shape[1] == 2 * (120 + 8)  # two tracks side by side
    # a rerun replaces its own files; a document without timings or video says so instead of a picture
    bare = {**doc, "info": {"command": "track", "source": str(tmp_path / "gone.mp4")}}
    written = write_report(bare, out, name="walk")
    page = paths["html"].read_text()
    assert "records no stage timings" in page and "give it with --video" in page
    assert not paths["stages"].exists() and not paths["tracks"].exists()  # stale pictures of ours removed
    assert write_report(bare, out, name="walk", video=video)[-1] == paths["tracks"]


def test_report_never_replaces_a_file_posetrack_did_not_write(clip: tuple[dict, Path], tmp_path: Path) -> None:
    doc, _ = clip
    out = tmp_path / "out"
    out.mkdir()
    theirs = report_paths(out, "walk")["timeline"]
    cv2.imwrite(str(theirs), np.zeros((4, 4, 3), np.uint8))
    before = theirs.read_bytes()
    with pytest.raises(PosetrackError, match="posetrack did not write it"):
        write_report(doc, out, name="walk")
    assert theirs.read_bytes() == before and sorted(p.name for p in out.iterdir()) == [theirs.name]


def test_cli_report_and_missing_matplotlib(clip: tuple[dict, Path], tmp_path: Path) -> None:
    doc, _ = clip
    track = tmp_path / "walk.json"
    track.write_text(json.dumps(doc))
    result = CliRunner().invoke(main, ["report", str(track)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "walk.report.html").is_file() and "(5 pictures)" in result.stdout
    # without matplotlib: one line saying how to install it (a fresh interpreter, matplotlib blocked)
    code = ("import sys; sys.modules['matplotlib'] = None; from posetrack_cli.cli import main; "
            f"main(['report', {str(track)!r}, '-o', {str(tmp_path / 'x')!r}])")
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == ["posetrack: error: " + INSTALL_HINT]
    assert 'pip install "posetrack[report]"' in INSTALL_HINT
    assert not (tmp_path / "x").exists()


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                           f"--user-data-dir={profile}", *args], check=False, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_in_a_headless_browser(clip: tuple[dict, Path], tmp_path: Path) -> None:
    """Chromium renders the page offline: the headings and five decoded pictures are in its DOM, and a
    screenshot shows more than a blank page."""
    doc, _ = clip
    page = write_report(doc, tmp_path / "out", name="walk")[0]
    dom = _chromium("--virtual-time-budget=5000", "--dump-dom", page.as_uri(), profile=tmp_path / "profile1")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<title>posetrack report: walk</title>" in dom.stdout
    for title in TITLES:
        assert f"<h2>{title}</h2>" in dom.stdout
    assert dom.stdout.count("<img ") == len(SECTIONS)
    shot = tmp_path / "shot.png"
    taken = _chromium(f"--screenshot={shot}", "--window-size=1000,2400", page.as_uri(), profile=tmp_path / "profile2")
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    image = cv2.imread(str(shot))
    assert image.shape[:2] == (2400, 1000)
    ink = (image < 200).any(axis=2)  # text, plot lines and bars
    assert ink.mean() > 0.02, "the screenshot is (nearly) blank"
    rows = np.flatnonzero(ink.any(axis=1))
    assert rows.max() - rows.min() > 1500  # the pictures are laid out down the page, not one broken icon
    colour = (np.ptp(image.astype(int), axis=2) > 60).mean()
    assert colour > 0.01  # the coloured track bars and crops are drawn
