"""Overlays: boxes, id labels that stay inside the frame, fixed colours per track, faded doubtful
joints, trails, and the options that choose what is drawn."""

from __future__ import annotations

import numpy as np
import pytest

from posetrack_cli.core.types import Poses, TrackedFrame
from posetrack_cli.io.render import OverlayConfig, OverlayRenderer, label_box, text_colour, track_colour

H, W = 240, 320


def _frame(index: int, boxes: list[list[float]], ids: list[int], scores: float | np.ndarray = 0.9) -> TrackedFrame:
    """People standing in ``boxes`` (xyxy), joints spread down the box centre line."""
    boxes_arr = np.array(boxes, np.float32).reshape(-1, 4)
    n = len(boxes_arr)
    t = np.linspace(0.1, 0.9, 17)
    kps = np.stack([np.stack([(b[0] + b[2]) / 2 + 0 * t, b[1] + t * (b[3] - b[1])], axis=1) for b in boxes_arr]) if n \
        else np.zeros((0, 17, 2))
    kscores = np.broadcast_to(np.asarray(scores, np.float32), (n, 17)).copy()
    return TrackedFrame(index, index / 10, Poses(kps, kscores, boxes_arr, np.ones(n)), ids)


def _black() -> np.ndarray:
    return np.zeros((H, W, 3), np.uint8)


def _has_colour(region: np.ndarray, colour: tuple[int, int, int], tol: int = 0) -> bool:
    return bool(np.all(np.abs(region.astype(int) - colour) <= tol, axis=-1).any())


def test_box_and_id_label_in_the_track_colour() -> None:
    out = OverlayRenderer().draw(_black(), _frame(0, [[100, 60, 160, 200]], [3]))
    colour = track_colour(3)
    assert _has_colour(out[60:62, 110:150], colour)  # the box's top edge
    x1, y1, x2, y2 = label_box((8, 12), (100, 60), (W, H), 3)
    label = out[y1 + 1:y2 - 1, x1 + 1:x2 - 1]
    assert _has_colour(label, colour)  # a filled label ...
    assert _has_colour(label, text_colour(colour), tol=30)  # ... with the id written in white or black on it
    assert y2 <= 60  # above the box when there is room


@pytest.mark.parametrize("box", [[280, 0, 320, 100], [-30, -20, 40, 80], [250, 150, 330, 250]])
def test_label_stays_whole_inside_the_frame(box: list[float]) -> None:
    """A person at an edge or a corner, even partly outside: the whole label is drawn, in the frame."""
    for text_size in ((10, 14), (40, 14)):
        x1, y1, x2, y2 = label_box(text_size, (box[0], box[1]), (W, H), 3)
        assert 0 <= x1 < x2 <= W and 0 <= y1 < y2 <= H
        assert (x2 - x1, y2 - y1) == (text_size[0] + 6, text_size[1] + 6)
    out = OverlayRenderer(OverlayConfig(boxes=False, skeleton=False)).draw(_black(), _frame(0, [box], [12]))
    drawn = np.argwhere(out.any(axis=2))
    assert len(drawn), "the label must be drawn"
    colour = track_colour(12)
    filled = np.argwhere(np.all(out == colour, axis=2))
    # the label is a full rectangle: its filled area spans the text's width, not a sliver at the edge
    assert filled[:, 1].max() - filled[:, 1].min() >= 15 and filled[:, 0].max() - filled[:, 0].min() >= 10


def test_colours_stay_with_their_track_across_frames() -> None:
    renderer = OverlayRenderer(OverlayConfig(ids=False, skeleton=False))
    first = renderer.draw(_black(), _frame(0, [[20, 20, 80, 200], [200, 20, 260, 200]], [0, 1]))
    later = renderer.draw(_black(), _frame(7, [[200, 20, 260, 200], [20, 20, 80, 200]], [0, 1]))  # swapped places
    assert _has_colour(first[20, 30:70], track_colour(0)) and _has_colour(later[20, 210:250], track_colour(0))
    assert _has_colour(first[20, 210:250], track_colour(1)) and _has_colour(later[20, 30:70], track_colour(1))
    assert track_colour(0) != track_colour(1) and track_colour(5) == track_colour(5 + 20)


def test_doubtful_joints_are_faded_not_hidden() -> None:
    """Joints below the threshold are still drawn, at ``dim`` opacity; dim 0 hides them."""
    scores = np.full(17, 0.9, np.float32)
    scores[16] = 0.1  # the lowest joint (and the limb to it) is doubtful
    frame = _frame(0, [[100, 20, 160, 220]], [2], scores)
    kps = frame.poses.keypoints[0].round().astype(int)
    colour = np.array(track_colour(2), float)
    cfg = OverlayConfig(boxes=False, ids=False, dim=0.35)
    out = OverlayRenderer(cfg).draw(_black(), frame)
    trusted = out[kps[8, 1], kps[8, 0]].astype(float)
    doubtful = out[kps[16, 1], kps[16, 0]].astype(float)
    np.testing.assert_allclose(trusted, colour, atol=2)
    np.testing.assert_allclose(doubtful, 0.35 * colour, atol=3)
    hidden = OverlayRenderer(OverlayConfig(boxes=False, ids=False, dim=0.0)).draw(_black(), frame)
    assert not hidden[kps[16, 1], kps[16, 0]].any() and hidden[kps[8, 1], kps[8, 0]].any()


def test_trails_show_the_last_n_positions_and_fade_away() -> None:
    renderer = OverlayRenderer(OverlayConfig(trail=3, boxes=False, ids=False, skeleton=False))
    colour = track_colour(4)
    for t in range(4):  # moving right 40 px a frame; the trail follows the box's bottom centre
        out = renderer.draw(_black(), _frame(t, [[20 + 40 * t, 50, 60 + 40 * t, 150]], [4]))
    # after frame 3 the trail joins the bottom centres of frames 1..3 (x 80 .. 160), not frame 0 (x 40)
    assert _has_colour(out[148:153, 85:155], colour)
    assert not _has_colour(out[140:160, 30:70], colour)
    for _ in range(3):  # the person is gone: the trail ages out frame by frame
        out = renderer.draw(_black(), None)
    assert not out.any()


def test_options_choose_what_is_drawn() -> None:
    frame = _frame(0, [[100, 60, 160, 200]], [1])
    nothing = OverlayRenderer(OverlayConfig(boxes=False, ids=False, skeleton=False)).draw(_black(), frame)
    assert not nothing.any()
    only_box = OverlayRenderer(OverlayConfig(ids=False, skeleton=False)).draw(_black(), frame)
    assert only_box[60, 130].any() and not only_box[130, 130].any()  # edge drawn, inside (the skeleton) not
    image = np.full((H, W, 3), 77, np.uint8)
    assert OverlayRenderer().draw(image, None) is not image and (image == 77).all()  # the input is untouched
    for bad in ({"trail": -1}, {"dim": 1.5}, {"scale": 0}):
        with pytest.raises(ValueError):
            OverlayConfig(**bad)


def test_overlay_flags_make_the_config() -> None:
    """The flags a command gets from ``overlay_options``: defaults are OverlayConfig's; bad values are usage errors."""
    import click
    from click.testing import CliRunner

    from posetrack_cli.cli.overlay_options import overlay_options
    from posetrack_cli.run.settings import take

    seen = []

    @click.command()
    @overlay_options
    def cmd(**flags: object) -> None:
        seen.append(take(OverlayConfig, flags, keypoint_threshold=0.3))
        assert not flags  # every flag set a field

    assert CliRunner().invoke(cmd, []).exit_code == 0 and seen[-1] == OverlayConfig(keypoint_threshold=0.3)
    result = CliRunner().invoke(cmd, ["--no-boxes", "--no-ids", "--trail", "30", "--dim", "0"])
    assert result.exit_code == 0, result.output
    assert seen[-1] == OverlayConfig(boxes=False, ids=False, trail=30, dim=0.0, keypoint_threshold=0.3)
    for bad in (["--trail", "-1"], ["--dim", "2"], ["--dim", "nan"]):
        assert CliRunner().invoke(cmd, bad).exit_code == 2


def test_run_render_draws_what_the_flags_say(checkpoints: dict, tmp_path) -> None:  # noqa: ANN001
    """``posetrack run --render``: the default overlay draws each person's box in its track colour;
    with everything turned off the overlay is the video itself; overlay flags need --render."""
    import json

    import cv2
    from click.testing import CliRunner

    from posetrack_cli.cli import main

    from helpers import FAST, walkers, write_video

    video = write_video(tmp_path / "clip.mp4", walkers())
    boxes = [{"image_id": t, "category_id": 1, "bbox": [30.0 + 10 * t, 15.0, 60.0, 130.0], "score": 0.9}
             for t in range(6)]
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    common = [str(video), "--detections", str(tmp_path / "boxes.json"), "--pose-weights", str(checkpoints["pose"]),
              "--render", *FAST]

    def frames(out: str, *flags: str) -> list[np.ndarray]:
        result = CliRunner().invoke(main, ["run", *common, "-o", str(tmp_path / out), *flags])
        assert result.exit_code == 0, result.output
        capture = cv2.VideoCapture(str(tmp_path / out / "clip.mp4"))
        images = []
        while True:
            ok, image = capture.read()
            if not ok:
                return images
            images.append(image.astype(int))

    plain = frames("plain", "--no-boxes", "--no-ids", "--no-skeleton")
    drawn = frames("drawn", "--trail", "3")
    original = cv2.VideoCapture(str(video))
    first = original.read()[1].astype(int)
    assert len(plain) == len(drawn) == 6
    assert np.abs(plain[0] - first).mean() < 4  # the frame itself, through two mp4 encodings
    doc = json.loads((tmp_path / "drawn" / "clip.json").read_text())
    x, y, w, h = (round(v) for v in next(a["bbox"] for a in doc["annotations"] if a["image_id"] == 0))
    tid = next(a["track_id"] for a in doc["annotations"] if a["image_id"] == 0)
    edge = drawn[0][y + h, x + 5:x + w - 5]  # the box's bottom edge, in the track's colour
    assert np.abs(edge - np.array(track_colour(tid))).max(axis=1).min() < 60
    refused = CliRunner().invoke(main, ["run", str(video), "-o", str(tmp_path / "x"), "--trail", "5", *FAST])
    assert refused.exit_code == 1 and "add --render" in refused.stderr
