"""Confirmed tracks only: a false positive that flickers for a few frames never takes an id in the
files, a real person is written from their first frame, and short false positives far apart never
chain into one lasting id."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_identity import frame_of, person

from posetrack_cli import FrameTracker, TrackerConfig
from posetrack_cli.cli import main
from posetrack_cli.core.state import pack, unpack
from posetrack_cli.tracking.confirmation import Confirmation

from helpers import write_video


def _release(confirm: Confirmation[int], frames: list[list[int]], flush: bool = True) -> dict[int, list[int]]:
    """The ids written per frame when ``frames`` (each its poses' ids) go through ``confirm``."""
    out: dict[int, list[int]] = {}

    def take(released: list[tuple[int, np.ndarray]]) -> None:
        for index, keep in released:
            out[index] = np.asarray(frames[index])[keep].tolist()

    for index, ids in enumerate(frames):
        take(confirm.push(index, ids))
    if flush:
        take(list(confirm.flush()))
    return out


def test_a_flicker_is_never_written_and_a_person_is_written_from_their_first_frame() -> None:
    # 0: there from the first frame; 1: arrives at frame 2 and stays; 7, 8, 9: false positives of 1-3 frames
    frames = [[0], [0], [0, 1, 7], [0, 1], [0, 1, 8], [0, 1, 8], [0, 1, 9], [0, 1, 9], [0, 1, 9], [0, 1], [0, 1]]
    confirm: Confirmation[int] = Confirmation(4)
    written = _release(confirm, frames)
    assert written == {t: [i for i in ids if i in (0, 1)] for t, ids in enumerate(frames)}
    assert confirm.dropped == 1 + 2 + 3 and confirm.written == {0, 1}
    # the paper: every pose at once
    assert _release(Confirmation(1), frames) == {t: ids for t, ids in enumerate(frames)}


def test_the_input_ends_cut_tracks_short_without_dropping_them() -> None:
    """People in the first frame, and people still there in the last, count as confirmed; a flicker
    that ended before the last frame still does not."""
    frames = [[0, 1], [0], [0, 5], [0, 6], [0, 6]]  # 1: first frame only; 5: a flicker; 6: arrives at the end
    written = _release(Confirmation(4), frames)
    assert written == {0: [0, 1], 1: [0], 2: [0], 3: [0, 6], 4: [0, 6]}
    assert _release(Confirmation(4), [[3]]) == {0: [3]}  # a one-frame input keeps its people


def test_a_confirmation_saved_with_frames_held_goes_on_as_if_never_stopped() -> None:
    frames = [[0], [0, 1], [0, 1, 2], [1, 2], [2], [2, 3], [3], [3], [3]]
    whole = _release(Confirmation(4), frames)
    first: Confirmation[int] = Confirmation(4)
    head = {}
    for index, ids in enumerate(frames[:5]):
        head.update({i: np.asarray(frames[i])[keep].tolist() for i, keep in first.push(index, ids)})
    assert len(first.pending) == 3  # frames 2-4 wait for their tracks
    plain, arrays = pack(first.state(lambda index: index))
    second: Confirmation[int] = Confirmation(4)
    second.load_state(unpack(plain, arrays), int)
    tail = {}
    for index, ids in enumerate(frames[5:], start=5):
        tail.update({i: np.asarray(frames[i])[keep].tolist() for i, keep in second.push(index, ids)})
    tail.update({i: np.asarray(frames[i])[keep].tolist() for i, keep in second.flush()})
    assert {**head, **tail} == whole
    with pytest.raises(ValueError, match="confirms after 4 frames"):
        Confirmation(3).load_state(unpack(plain, arrays), int)


def test_two_short_false_positives_far_apart_do_not_chain_into_one_id() -> None:
    """A pose seen for 2 frames, then 20 frames later another of the same build elsewhere: with the
    lost memory, the second would be taken for the first re-found; a tentative track is not
    remembered, so it gets an id of its own (and neither is written, see below)."""
    walker = 0
    ids = {}
    for confirm_frames in (1, 4):
        tracker = FrameTracker(TrackerConfig(confirm_frames=confirm_frames, appearance=False), flow=None)
        seen = []
        for t in range(30):
            people = [person(100 + 4 * t, 80)]
            if t in (5, 6):
                people.append(person(420, 120))
            if t == 20:
                people.append(person(470, 130))
            tracked = tracker.update(None, frame_of(*people), timestamp=t / 25)
            seen.append(tracked.track_ids.tolist())
        assert all(s[0] == walker for s in seen)
        ids[confirm_frames] = (seen[5][1], seen[20][1])
    assert ids[1][0] == ids[1][1]  # remembered: the second false positive took the first one's id
    assert ids[4][0] != ids[4][1]  # tentative: forgotten


def test_posetrack_track_writes_confirmed_people_whole_and_counts_the_rest(tmp_path: Path) -> None:
    """Given poses with a 3-frame false positive and a person arriving mid-video: the JSON has the
    arrival from their first frame, never the false positive, and says how many poses it left out;
    ``--confirm-frames 1`` writes them all."""
    frames = 24
    video = write_video(tmp_path / "walk.mp4", [np.full((360, 640, 3), 90, np.uint8)] * frames, fps=25)
    results, ghost = [], {9, 10, 11}

    def add(t: int, kps: np.ndarray) -> None:
        results.append({"image_id": t, "category_id": 1, "score": 0.9,
                        "keypoints": np.concatenate([kps, np.full((17, 1), 0.9)], 1).ravel().tolist()})

    for t in range(frames):
        add(t, person(60 + 6 * t, 60, 250))
        if t >= 6:
            add(t, person(560 - 6 * t, 60, 250))  # arrives at frame 6
        if t in ghost:
            add(t, person(300, 120, 180))
    (tmp_path / "poses.json").write_text(json.dumps(results))
    people = {}
    for flags in ([], ["--confirm-frames", "1"]):
        out = tmp_path / f"out{len(flags)}"
        result = CliRunner().invoke(main, ["track", str(tmp_path / "poses.json"), "--video", str(video), "-o", str(out),
                                           "--no-progress", *flags])
        assert result.exit_code == 0, result.output
        doc = json.loads((out / "walk.tracks.json").read_text())
        frames_of: dict[int, list[int]] = {}
        for ann in doc["annotations"]:
            frames_of.setdefault(ann["track_id"], []).append(ann["image_id"])
        people[len(flags)] = (sorted(sorted(f) for f in frames_of.values()), doc["info"]["unconfirmed_poses"])
    walker, arrival = list(range(frames)), list(range(6, frames))
    assert people[0] == ([walker, arrival], 3)
    assert people[2] == ([walker, arrival, sorted(ghost)], 0)
