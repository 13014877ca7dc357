"""Checkpoints: what a run in progress puts on disk every so often, so that nothing done is lost.

One mechanism serves both kinds of input. The frame loop asks :class:`Every` after each frame
written whether a checkpoint is due; what it saves then is the caller's:

* a live source rewrites its JSON and CSV under their final names (each atomically), marked
  partial, so a stream stopped any way leaves valid files up to the last flush;
* a video file or frame folder saves its *resume state* into a work folder beside its outputs,
  ``.<name>.checkpoint/``: the frame loop's memory (tracker queue, lost tracks, ids, smoothing
  filters, the people carried by flow), where the source is, the writers' positions (their parts
  stream into the same folder), the overlay's trails and the pose network's calibration state.
  A rerun of the same input with the same settings finds it, reads the frames up to the last
  one saved again (decoding only), and goes on from the next: its JSON and CSV are the bytes an
  uninterrupted run writes (timings aside). Ctrl-C or SIGTERM save one last checkpoint at the
  frame they stop after, and put the frames done so far in place as a partial, *interrupted*
  output, which a rerun resumes rather than skips.

The work folder is posetrack's own (hidden, under the output's lock), removed once the outputs
are committed, and thrown away when it does not match the run (other settings, another version
of posetrack or of the input) or cannot be read.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Callable

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.files import fitted_name, name_max
from posetrack_cli.core.state import load_state, save_state
from posetrack_cli.core.version import __version__
from posetrack_cli.run.pipeline import LoopState

# Bump when what a checkpoint holds changes: an older one is then started over, not misread.
CHECKPOINT_FORMAT = 2  # 2: the frames held back for track confirmation


class Every:
    """Checkpoints due every ``seconds`` of wall time (and at the first frame); ``save`` does the work.

    Args:
        seconds: the interval; 0 or less: never (``save`` is still callable directly).
        save: what a checkpoint saves, given the frame loop's state.
        clock: monotonic seconds.
    """

    def __init__(self, seconds: float, save: Callable[[LoopState], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self._save, self._clock = seconds, save, clock
        self._last: float | None = None
        self.saved = 0

    def due(self) -> bool:
        if self.seconds <= 0:
            return False
        return self._last is None or self._clock() - self._last >= self.seconds

    def save(self, state: LoopState) -> None:
        self._save(state)
        self._last = self._clock()
        self.saved += 1


def work_folder(out_dir: Path, name: str) -> Path:
    """The work folder of the output called ``name`` in ``out_dir`` (shortened to fit the file
    system's name limit, as temporary names are)."""
    return out_dir / fitted_name(f".{name}.checkpoint", name_max(out_dir))


def save_checkpoint(work: Path, identity: dict[str, Any], parts: dict[str, Any]) -> None:
    """Save a resume state: ``identity`` (what the run is: its key, its input's fingerprint) and
    ``parts`` (the loop, the source, the writers...), with the format and posetrack's version."""
    save_state(work, {"format": CHECKPOINT_FORMAT, "version": __version__, "identity": identity, **parts})


def load_checkpoint(work: Path, identity: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The resume state in ``work`` if there is one and it is this run's, and why an existing one
    cannot be used (None when there is none, or it is used). An unusable one is removed."""
    if not work.is_dir():
        return None, None
    try:
        state = load_state(work)
        if not isinstance(state, dict):
            raise PosetrackError("not a checkpoint")
        if state.get("format") != CHECKPOINT_FORMAT or state.get("version") != __version__:
            why = "it was made by another version of posetrack"
        elif state.get("identity") != identity:
            why = "it was made with other settings or from another version of the input"
        else:
            return state, None
    except PosetrackError:
        why = "it cannot be read"
    discard(work)
    return None, why


def discard(work: Path) -> None:
    """Remove a work folder (a :func:`work_folder`: posetrack's own) and everything in it."""
    shutil.rmtree(work, ignore_errors=True)
