"""Overlays: boxes, id labels that stay inside the frame and off each other in a crowd, readable at
360p and 1080p, fixed colours per track, faded doubtful joints, trails, the frame stamp, and the
options that choose what is drawn."""

from __future__ import annotations

import numpy as np
import pytest

from posetrack_cli.core.types import Poses, TrackedFrame
from posetrack_cli.io.render import (
    MIN_GLYPH_PX,
    OverlayConfig,
    OverlayRenderer,
    label_box,
    label_candidates,
    place_labels,
    stamp_box,
    stamp_text,
    text_box_size,
    text_colour,
    text_style,
    track_colour,
)

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


def _overlapping(rects: np.ndarray) -> list[tuple[int, int]]:
    """Pairs of ``(N, 4)`` xyxy rectangles that share pixels."""
    return [(i, j) for i in range(len(rects)) for j in range(i + 1, len(rects))
            if min(rects[i, 2], rects[j, 2]) > max(rects[i, 0], rects[j, 0])
            and min(rects[i, 3], rects[j, 3]) > max(rects[i, 1], rects[j, 1])]


def _queue(n: int, size: tuple[int, int], step: float, top: float) -> np.ndarray:
    """``n`` people shoulder to shoulder, ``step`` pixels apart, boxes 2 steps wide (each overlapping
    the next), heads at ``top`` (+- a few pixels), in a frame of ``size`` (W, H)."""
    height = size[1]
    x = 10 + step * np.arange(n)
    y = top + 4 * np.sin(np.arange(n))
    return np.stack([x, y, x + 2 * step, np.minimum(y + 0.4 * height, height + 20)], axis=1)


@pytest.mark.parametrize("size", [(640, 360), (1920, 1080)])
@pytest.mark.parametrize("top", [0.3, 0.0], ids=["room-above", "heads-at-the-top-edge"])
def test_labels_of_people_close_together_do_not_overlap(size: tuple[int, int], top: float) -> None:
    """A row of 12 people closer together than their three-digit labels are wide: each label
    goes elsewhere than above its person's left corner where that would cover a neighbour's
    (above right, inside the box, below), whole inside the frame, and none covers another."""
    style = text_style(size[1])
    sizes = [text_box_size(str(100 + i), style) for i in range(12)]
    step = 0.7 * sizes[0][0]  # people closer than a label is wide
    boxes = _queue(12, size, step, top * size[1])
    rects = place_labels(sizes, boxes, size)
    assert not _overlapping(rects)
    assert (rects[:, :2] >= 0).all() and (rects[:, 2] <= size[0]).all() and (rects[:, 3] <= size[1]).all()
    assert [tuple(r[2:] - r[:2]) for r in rects] == sizes  # whole labels, not cut
    # each label still touches its own person's box (a reader sees whose it is), to the pixel
    for r, b in zip(rects, boxes):
        assert r[0] <= b[2] + 1 and r[2] >= b[0] - 1 and r[1] <= b[3] + 1 and r[3] >= max(b[1], 0) - 1


def test_label_placement_in_random_crowds() -> None:
    """Crowds of 25 people anywhere in a 720p frame, many overlapping: a label covers another (or
    the stamp) only where every place it could take was covered already; the id-above-the-corner
    placement of before has labels covering each other several times as often."""
    rng = np.random.default_rng(0)
    size = (1280, 720)
    style = text_style(size[1])
    stamp = np.array([0, 0, 300, 40])
    forced = naive = 0
    for _ in range(20):
        xy = rng.uniform([0, 0], [1200, 500], (25, 2))
        boxes = np.concatenate([xy, xy + rng.uniform([60, 150], [120, 300], (25, 2))], axis=1)
        sizes = [text_box_size(str(int(t)), style) for t in rng.integers(0, 200, 25)]
        rects = place_labels(sizes, boxes, size, taken=stamp[None])
        assert (rects[:, :2] >= 0).all() and (rects[:, 2] <= size[0]).all() and (rects[:, 3] <= size[1]).all()
        for i in range(len(rects)):
            before = np.concatenate([stamp[None], rects[:i]])
            if any(j == len(before) for _, j in _overlapping(np.concatenate([before, rects[i:i + 1]]))):
                w, h = sizes[i]
                for cand in label_candidates((w, h), boxes[i]):
                    x, y = min(max(cand[0], 0), size[0] - w), min(max(cand[1], 0), size[1] - h)
                    moved = np.array([[x, y, x + w, y + h]])
                    assert _overlapping(np.concatenate([before, moved])), f"label {i} had a free place"
                forced += 1
        corners = np.array([label_box((w - 2 * style.pad, h - 2 * style.pad), (b[0], b[1]), size, style.pad)
                            for (w, h), b in zip(sizes, boxes)])
        naive += len({j for pair in _overlapping(corners) for j in pair})
    assert forced * 5 < naive


def test_a_lone_label_sits_above_the_box_corner() -> None:
    """Without neighbours the label goes where it always did: above the box's top-left corner
    (or inside the box when the box touches the top edge)."""
    style = text_style(H)
    w, h = text_box_size("7", style)
    assert place_labels([(w, h)], np.array([[100, 60, 160, 200]]), (W, H)).tolist() == [[100, 60 - h, 100 + w, 60]]
    assert place_labels([(w, h)], np.array([[100, 0, 160, 200]]), (W, H)).tolist() == [[100, 0, 100 + w, h]]
    with pytest.raises(ValueError):
        place_labels([(w, h)], np.zeros((2, 4)), (W, H))


def _glyph_height(out: np.ndarray, colour: tuple[int, int, int]) -> tuple[int, int]:
    """The drawn label's height and the height of the text written on it, in pixels."""
    filled = np.argwhere(np.all(out == colour, axis=2))
    (y1, x1), (y2, x2) = filled.min(axis=0), filled.max(axis=0)
    label = out[y1:y2 + 1, x1:x2 + 1].astype(int)
    ink = np.abs(label - np.array(text_colour(colour))).max(axis=2) < 100  # nearer the text colour than the fill
    rows = np.flatnonzero(ink.any(axis=1))
    return int(y2 - y1 + 1), int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize("height, least", [(1080, 27), (720, 18), (360, MIN_GLYPH_PX), (240, MIN_GLYPH_PX)])
def test_labels_are_legible_at_every_frame_height(height: int, least: int) -> None:
    """The id drawn on a 16:9 frame: its digits are at least ``least`` pixels tall (2.8 % of the
    frame height, and never under MIN_GLYPH_PX), and the label stays a small part of the frame."""
    width = height * 16 // 9
    box = [0.3 * width, 0.3 * height, 0.4 * width, 0.9 * height]
    out = OverlayRenderer(OverlayConfig(boxes=False, skeleton=False)).draw(
        np.zeros((height, width, 3), np.uint8), _frame(0, [box], [38]))
    label, glyph = _glyph_height(out, track_colour(38))
    assert least <= glyph <= max(least, height / 36) * 1.25
    assert label <= max(0.06 * height, 2.5 * MIN_GLYPH_PX)


def test_frame_stamp_text() -> None:
    assert stamp_text(1234, 41.13) == "frame 1234  0:41.13"
    assert stamp_text(0, 0.0) == "frame 0  0:00.00"
    assert stamp_text(90_000, 3725.5) == "frame 90000  1:02:05.50"


def test_frame_stamp_is_drawn_in_a_free_corner() -> None:
    """``frame_stamp``: the frame number and time, white on a darkened corner; the top left unless
    someone stands there, then another corner; id labels keep off it."""
    image = np.full((H, W, 3), 200, np.uint8)
    style = text_style(H)
    stamp_size = text_box_size(stamp_text(1234, 41.13), style)
    config = OverlayConfig(boxes=False, skeleton=False, frame_stamp=True)
    frame = _frame(1234, [[200, 100, 260, 230]], [5])
    frame = TrackedFrame(1234, 41.13, frame.poses, frame.track_ids)
    out = OverlayRenderer(config).draw(image, frame)
    x1, y1, x2, y2 = stamp_box(stamp_size, frame.poses.boxes, (W, H), style.pad)
    assert (x1, y1) == (style.pad, style.pad)  # top left: nobody there
    region = out[y1:y2, x1:x2].astype(int)
    assert (region == 50).mean() > 0.5 and (region > 240).all(axis=2).any()  # darkened, with white text
    assert (out[y2 + 2:, :] == image[y2 + 2:, :]).all(axis=2).mean() > 0.9  # the rest as it was (but the label)
    plain = OverlayRenderer(OverlayConfig(boxes=False, skeleton=False)).draw(image, frame)
    assert (plain[y1:y2, x1:x2] == 200).all()  # without the flag, no stamp

    someone_top_left = TrackedFrame(7, 0.7, _frame(7, [[0, 0, 120, 200]], [5]).poses, [5])
    corner = stamp_box(stamp_size, someone_top_left.poses.boxes, (W, H), style.pad)
    assert (corner[1], corner[2]) == (style.pad, W - style.pad)  # moved to the top right
    out = OverlayRenderer(config).draw(image, someone_top_left)
    assert (out[corner[1]:corner[3], corner[0]:corner[2]] == 50).mean() > 0.5
    label = np.argwhere(np.all(out == track_colour(5), axis=2))
    assert len(label) and not _overlapping(np.array([corner, [*label.min(axis=0)[::-1], *label.max(axis=0)[::-1] + 1]]))
    # a frame without people (None) still gets a stamp, with the frame number
    assert (OverlayRenderer(config).draw(image, None)[style.pad:style.pad + 5, style.pad:style.pad + 5] == 50).any()


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
    result = CliRunner().invoke(cmd, ["--no-boxes", "--no-ids", "--trail", "30", "--dim", "0", "--frame-stamp"])
    assert result.exit_code == 0, result.output
    assert seen[-1] == OverlayConfig(boxes=False, ids=False, trail=30, dim=0.0, keypoint_threshold=0.3,
                                     frame_stamp=True)
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
    drawn = frames("drawn", "--trail", "3", "--frame-stamp")
    original = cv2.VideoCapture(str(video))
    first = original.read()[1].astype(int)
    assert len(plain) == len(drawn) == 6
    assert np.abs(plain[0] - first).mean() < 4  # the frame itself, through two mp4 encodings
    doc = json.loads((tmp_path / "drawn" / "clip.json").read_text())
    x, y, w, h = (round(v) for v in next(a["bbox"] for a in doc["annotations"] if a["image_id"] == 0))
    tid = next(a["track_id"] for a in doc["annotations"] if a["image_id"] == 0)
    edge = drawn[0][y + h, x + 5:x + w - 5]  # the box's bottom edge, in the track's colour
    assert np.abs(edge - np.array(track_colour(tid))).max(axis=1).min() < 60
    # the frame stamp: white text on the corner darkened, where nobody stands
    style = text_style(plain[0].shape[0])
    boxes_0 = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                        for a in doc["annotations"] if a["image_id"] == 0])
    sx1, sy1, sx2, sy2 = stamp_box(text_box_size(stamp_text(0, 0.0), style), boxes_0, (W, H), style.pad)
    stamped, under = drawn[0][sy1:sy2, sx1:sx2], plain[0][sy1:sy2, sx1:sx2]
    assert np.median(stamped) < np.median(under) / 2 and (stamped.min(axis=2) > 180).sum() > 20
    refused = CliRunner().invoke(main, ["run", str(video), "-o", str(tmp_path / "x"), "--trail", "5", *FAST])
    assert refused.exit_code == 1 and "add --render" in refused.stderr
