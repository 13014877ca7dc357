"""Options that cannot go together are refused by the settings themselves: the library (building a
run's spec and request, as ``VideoTracker.load`` and ``VideoTracker.run`` do) and the command line
refuse the same combinations, in the same words, before any file opens or model loads."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner

from posetrack_cli.cli import main
from posetrack_cli.core.errors import OptionsError
from posetrack_cli.run.settings import ExecutorConfig, RayOptions, RunRequest, spec_from_options
from posetrack_cli.tracking.smoothing import SmoothingConfig

BOXES = Path(__file__).resolve()  # any existing file: click checks that a boxes file exists


def _request(*sources: str, executor: ExecutorConfig | None = None, **options: object) -> Callable[[], object]:
    return lambda: RunRequest(sources, spec_from_options(**options), executor or ExecutorConfig())


# (command line after `posetrack`, what the library builds, words both say)
CASES = [
    (["run", "v.mp4", "--workers", "2", "--retries", "5"],
     lambda: ExecutorConfig("local", RayOptions(workers=2, retries=5)),
     "--workers, --retries apply to --executor ray only"),
    (["run", "v.mp4", "--trail", "5"], _request("v.mp4", trail=5),
     "--boxes, --ids, --skeleton, --trail, --dim and --frame-stamp choose what --render (or --show) draws; "
     "add --render"),
    (["run", "images/", "--images", "--render"], _request("images/", images=True, render=True),
     "--images writes COCO results and draws nothing; drop --render"),
    (["run", "v.mp4", "--stitch", "--render"], _request("v.mp4", stitch=True, render=True),
     "--stitch rewrites ids after the video, which an overlay drawn during it cannot follow; run without --render"),
    (["run", "v.mp4", "--smooth-beta", "5"], lambda: SmoothingConfig(smooth_beta=5.0),
     "--smooth-beta applies to --smooth one-euro only"),
    (["run", "v.mp4", "--smooth-min-cutoff", "2", "--smooth-beta", "5"], _request("v.mp4", smooth_min_cutoff=2.0,
                                                                                   smooth_beta=5.0),
     "--smooth-min-cutoff and --smooth-beta apply to --smooth one-euro only"),
    (["run", "0", "v.mp4"], _request("0", "v.mp4"),
     "a live source (0) runs until it stops: give it as the only SOURCE"),
    (["run", "rtsp://cam/stream", "--executor", "ray"], _request("rtsp://cam/stream", executor=ExecutorConfig("ray")),
     "a live source runs in this process: drop --executor ray"),
    (["run", "0", "--detections", str(BOXES)], _request("0", detections=BOXES),
     "--detections and --images take files; a live source gets its boxes from the detector"),
    (["run", "-", "--format", "mot"], _request("-", formats=("mot",)),
     "--format and --report take files; for a live source, run `posetrack export` or `posetrack report` on "
     "OUT/<name>.json afterwards"),
    (["run", "0", "--stitch"], _request("0", stitch=True),
     "--stitch rewrites ids after the video; a live source hands each frame on as it comes: drop --stitch"),
    (["run", "v.mp4", "--reconnect", "3"], _request("v.mp4", reconnect=3),
     "--reconnect, --pipe-size, --show and --flush-every apply to live sources (a webcam index, a stream URL, "
     "or - for stdin)"),
    (["run", "a.mp4", "b.mp4", "--detections", str(BOXES)], _request("a.mp4", "b.mp4", detections=BOXES),
     "--detections gives boxes for one video; pass exactly one SOURCE with it"),
    (["track", str(BOXES), "--video", str(BOXES.parent), "--smooth-beta", "1"],
     _request(str(BOXES.parent), poses=BOXES, smooth_beta=1.0), "--smooth-beta applies to --smooth one-euro only"),
]


@pytest.mark.parametrize(("args", "library", "words"), CASES, ids=[" ".join(c[0][:3]) for c in CASES])
def test_library_and_command_line_refuse_the_same_options_in_the_same_words(
        args: list[str], library: Callable[[], object], words: str, tmp_path: Path) -> None:
    with pytest.raises(OptionsError) as refused:
        library()
    assert str(refused.value) == words
    result = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "out"), "--offline", "--no-progress"])
    assert (result.exit_code, result.stderr) == (1, f"posetrack: error: {words}\n")
    assert not (tmp_path / "out").exists()
