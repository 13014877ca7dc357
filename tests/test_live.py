"""Live sources against real local servers and pipes: an MJPEG-over-HTTP server and an RTSP server
(tests/rtsp_server.py) on 127.0.0.1 that the tests start (and that drop the connection after a few
frames), and raw frames written to a pipe by another process."""

from __future__ import annotations

import csv
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest

from posetrack_cli.core.errors import FrameSizeChanged, FrameStopped, PosetrackError
from posetrack_cli.io import live
from posetrack_cli.io.live import LiveConfig, LiveWindow, StreamClock, live_kind, open_live, redact, stream_name

from helpers import FAST, check_outputs, walkers
from rtsp_server import RtspServer
from synthetic import Person, linear_path, render


def scene(frames: int, size: tuple[int, int] = (160, 120), seed: int = 1) -> list[np.ndarray]:
    return render([Person(90, linear_path((30, 10), (6, 0), frames), seed=seed)], frames, size=size, seed=seed)


class MjpegServer:
    """``multipart/x-mixed-replace`` JPEG frames on 127.0.0.1, as IP cameras serve them.

    Connection ``i`` gets ``connections[i]`` (a list of images) and is then closed; connections
    beyond the list get 404. ``stall`` seconds of silence before closing imitate a stream that
    hangs instead of closing.
    """

    def __init__(self, connections: list[list[np.ndarray]], interval: float = 0.01, stall: float = 0.0) -> None:
        self.served = 0
        self.closed = threading.Event()
        payloads = [[cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes() for im in c]
                    for c in connections]
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                number, server.served = server.served, server.served + 1
                if number >= len(payloads):
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=posetrackframe")
                self.end_headers()
                try:
                    for jpeg in payloads[number]:
                        self.wfile.write(b"--posetrackframe\r\nContent-Type: image/jpeg\r\n"
                                         b"Content-Length: %d\r\n\r\n" % len(jpeg) + jpeg + b"\r\n")
                        self.wfile.flush()
                        time.sleep(interval)
                    server.closed.wait(stall)
                except OSError:  # the reader went away
                    pass

            def log_message(self, *_: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/cam/stream.mjpg"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.closed.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator:
    servers: list[MjpegServer] = []

    def start(connections: list[list[np.ndarray]], **kwargs: float) -> MjpegServer:
        servers.append(MjpegServer(connections, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def read_all(source: live.LiveSource) -> tuple[list, BaseException | None]:
    frames, error = [], None
    try:
        for frame in source.frames():
            frames.append(frame)
    except FrameStopped as exc:
        error = exc
    finally:
        source.close()
    return frames, error


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_live_kind_names_webcams_streams_and_stdin() -> None:
    assert [live_kind(t) for t in ("0", "12", "-")] == ["webcam", "webcam", "pipe"]
    for url in ("rtsp://cam/live", "RTSPS://cam:322/x", "http://127.0.0.1:8080/video", "https://example.org/a.m3u8"):
        assert live_kind(url) == "stream", url
    for other in ("video.mp4", "./0", "frames/", "0.mp4", "-1", "ftp://host/x", "rtsp:/cam", "", "http"):
        assert live_kind(other) is None, other


def test_stream_labels_hide_credentials_and_names_are_safe_file_names() -> None:
    url = "rtsp://admin:hunter2@cam.local:554/live/ch 1?token=secret"
    assert "hunter2" not in redact(url) and redact(url).startswith("rtsp://admin:***@cam.local:554/live")
    assert stream_name(url) == "cam.local_554_live_ch_1"
    assert stream_name("http://127.0.0.1:8080/") == "127.0.0.1_8080"
    assert stream_name("https://[::1]/a/../b") == "1_a_.._b"
    assert redact("http://host/x") == "http://host/x"


def test_clock_follows_the_stream_and_carries_on_over_jumps_and_reconnects() -> None:
    now = [100.0]
    clock = StreamClock(lambda: now[0])

    def at(wall: float, seconds: float | None) -> float:
        now[0] = 100.0 + wall
        return round(clock.stamp(seconds), 6)

    # the stream's clock starts anywhere; stamps start at 0 and follow it, not the arrival jitter
    assert [at(0.0, 50.0), at(0.5, 50.04), at(0.51, 50.08)] == [0.0, 0.04, 0.08]
    assert at(1.0, 3.0) == 0.57  # the stream's clock jumped back: carry on by the arrival time
    assert at(1.1, 3.04) == 0.61
    clock.reconnected()
    assert at(3.1, 3.08) == 2.61  # a new connection: the outage counts, stream time follows again
    assert at(3.2, None) == 2.71  # no stream time: arrival time
    assert at(3.3, 7.0) == 2.81 and at(3.31, 7.0) == 2.82  # a stream time that does not advance


def test_mjpeg_stream_is_read_frame_by_frame_and_a_dropped_connection_stops_it(serve) -> None:
    images = scene(6)
    server = serve([images], interval=0.03)
    source = open_live(server.url)
    assert (source.width, source.height, source.frame_count, source.fps) == (160, 120, None, 0.0)
    assert source.kind == "stream" and source.path == server.url and source.timing == "arrival"
    assert source.name == f"127.0.0.1_{server.url.split(':')[2].split('/')[0]}_cam_stream.mjpg"
    frames, error = read_all(source)
    assert [f.index for f in frames] == list(range(6))
    for frame, image in zip(frames, images):
        assert np.abs(frame.image.astype(int) - image).mean() < 6  # JPEG at quality 95
    stamps = [f.timestamp for f in frames]
    assert stamps[0] == 0.0 and all(b > a for a, b in zip(stamps, stamps[1:]))
    assert stamps[-1] >= 0.1  # arrival times (5 gaps of 30 ms), not FFmpeg's assumed 25 fps
    assert isinstance(error, FrameStopped) and "connection lost after 6 frames" in str(error)
    assert "--reconnect" in str(error)


def test_reconnect_reopens_a_dropped_stream_and_continues_indices_and_times(serve) -> None:
    images = scene(8)
    server = serve([images[:4], images[4:]])
    warnings: list[str] = []
    frames, error = read_all(open_live(server.url, reconnect=1, backoff=0.05, warn=warnings.append))
    assert [f.index for f in frames] == list(range(8))
    assert np.abs(frames[5].image.astype(int) - images[5]).mean() < 6
    stamps = [f.timestamp for f in frames]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))
    assert stamps[4] - stamps[3] >= 0.05  # the wait before reopening is in the timestamps
    # reopened once after frame 4; after frame 8 the server refuses (404), and one attempt is all there is
    assert server.served == 3
    assert len(warnings) == 2 and all("attempt 1 of 1" in w for w in warnings)
    assert "after 4 frames" in warnings[0] and "after 8 frames" in warnings[1]
    assert isinstance(error, FrameStopped) and "reopening failed" in str(error)
    assert "1 reconnect attempt failed" in str(error)


def test_a_reopened_stream_of_another_size_stops_as_a_file_does(serve) -> None:
    server = serve([scene(3), scene(3, size=(96, 64))])
    frames, error = read_all(open_live(server.url, reconnect=2, backoff=0.01, warn=lambda _: None))
    assert len(frames) == 3 and isinstance(error, FrameSizeChanged) and "96x64" in str(error)


def test_a_stream_that_hangs_is_lost_after_the_timeout(serve) -> None:
    server = serve([scene(3)], stall=30.0)
    started = time.monotonic()
    frames, error = read_all(open_live(server.url, timeout=0.5))
    assert len(frames) == 3 and "no frame for 0.5 s" in str(error)
    assert time.monotonic() - started < 10


def test_unreachable_streams_and_missing_webcams_are_one_clear_error(serve) -> None:
    with pytest.raises(PosetrackError, match=r"cannot open http://127\.0\.0\.1:\d+/none: unreachable"):
        open_live(f"http://127.0.0.1:{free_port()}/none", timeout=2)
    server = serve([])  # answers 404
    with pytest.raises(PosetrackError, match="cannot open"):
        open_live(server.url, timeout=2)
    with pytest.raises(PosetrackError, match="cannot open webcam 63: no camera with that index"):
        open_live("63")
    with pytest.raises(PosetrackError, match="names no host"):
        open_live("rtsp:///path")
    with pytest.raises(PosetrackError, match="not a live source"):
        open_live("video.mp4")


PRODUCER = """
import sys, numpy as np
w, h, n, extra = map(int, sys.argv[1:])
out = sys.stdout.buffer
for i in range(n):
    frame = np.full((h, w, 3), i * 10, np.uint8)
    frame[:, :, 1] = np.arange(w, dtype=np.uint8)
    for part in np.array_split(frame.reshape(-1), 3):  # each frame in pieces, as pipes deliver
        out.write(part.tobytes()); out.flush()
out.write(b"x" * extra)
"""


def piped(monkeypatch: pytest.MonkeyPatch, width: int, height: int, frames: int, extra: int = 0) -> None:
    """Make our stdin the read end of a pipe that another process writes raw frames into."""
    read_end, write_end = os.pipe()
    subprocess.Popen([sys.executable, "-c", PRODUCER, str(width), str(height), str(frames), str(extra)],
                     stdout=write_end, close_fds=True)
    os.close(write_end)
    monkeypatch.setattr(sys, "stdin", open(read_end, encoding="latin-1"))


def test_raw_frames_on_stdin_are_read_until_the_pipe_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    piped(monkeypatch, 64, 48, 5)
    source = open_live("-", pipe_size=(64, 48))
    assert (source.path, source.name, source.width, source.height, source.fps) == ("stdin", "stdin", 64, 48, 0.0)
    frames, error = read_all(source)
    assert error is None and [f.index for f in frames] == list(range(5))
    assert all(f.image.shape == (48, 64, 3) and f.image[0, 0, 0] == 10 * f.index for f in frames)
    assert np.array_equal(frames[3].image[5, :, 1], np.arange(64))
    stamps = [f.timestamp for f in frames]
    assert stamps[0] == 0.0 and stamps == sorted(stamps)


def test_a_pipe_that_ends_inside_a_frame_keeps_the_whole_frames_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    piped(monkeypatch, 64, 48, 2, extra=100)
    frames, error = read_all(open_live("-", pipe_size=(64, 48)))
    assert len(frames) == 2
    assert isinstance(error, FrameStopped) and "stdin ended inside a frame (100 of 9216 bytes" in str(error)


def test_stdin_needs_its_frame_size_and_cannot_reconnect(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PosetrackError, match="--pipe-size WIDTHxHEIGHT"):
        open_live("-")
    with pytest.raises(PosetrackError, match="stdin cannot be reopened"):
        open_live("-", pipe_size=(64, 48), reconnect=2)
    with pytest.raises(PosetrackError, match="--pipe-size applies to -"):
        open_live("0", pipe_size=(64, 48))
    piped(monkeypatch, 64, 48, 0)
    with pytest.raises(PosetrackError, match="stdin: opened, but no frame came"):
        open_live("-", pipe_size=(64, 48))


def test_live_config_refuses_nonsense() -> None:
    assert LiveConfig().reconnect == 0 and LiveConfig().flush_every > 0
    for bad in ({"reconnect": -1}, {"pipe_size": (0, 10)}, {"flush_every": 0.0}, {"flush_every": float("nan")}):
        with pytest.raises(ValueError):
            LiveConfig(**bad)  # type: ignore[arg-type]


def test_show_without_a_gui_build_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "  Video I/O:\n  GUI:                           NONE\n")
    with pytest.raises(PosetrackError, match="pip uninstall opencv-python-headless && pip install opencv-python"):
        LiveWindow()
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "  GUI:                           GTK3\n")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if sys.platform.startswith("linux"):
        with pytest.raises(PosetrackError, match=r"needs a display.*\$DISPLAY"):
            LiveWindow()


def test_show_on_the_installed_opencv_refuses_clearly_without_a_gui_or_display() -> None:
    # The default dependency (opencv-python-headless) has no GUI: --show must say so, not crash.
    if live.gui_problem() is None:
        pytest.skip("this OpenCV has a GUI and there is a display: a window would open")
    with pytest.raises(PosetrackError, match="--show needs (OpenCV's GUI build|a display)"):
        LiveWindow()


def test_window_stops_when_the_user_presses_q_or_closes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # OpenCV's own window calls stand in for a display here (the headless build has none).
    keys, visible, shown = [-1, ord("q")], [1.0], []
    monkeypatch.setattr(live, "gui_problem", lambda: None)
    monkeypatch.setattr(cv2, "namedWindow", lambda *a: None)
    monkeypatch.setattr(cv2, "imshow", lambda title, image: shown.append(image.shape))
    monkeypatch.setattr(cv2, "waitKey", lambda delay: keys.pop(0) if keys else -1)
    monkeypatch.setattr(cv2, "getWindowProperty", lambda title, prop: visible[0])
    monkeypatch.setattr(cv2, "destroyWindow", lambda title: None)
    image = np.zeros((4, 6, 3), np.uint8)
    with LiveWindow() as window:
        assert window.show(image) is True
        assert window.show(image) is False  # q
        assert window.show(image) is False and len(shown) == 2
    with LiveWindow() as window:
        visible[0] = 0.0  # the user closed the window
        assert window.show(image) is False


def test_rtsp_stream_follows_the_stream_clock_and_reconnects() -> None:
    # MJPEG over RTP, interleaved in RTSP over TCP, from a server the test runs (tests/rtsp_server.py)
    images = walkers(frames=8)
    server = RtspServer([images[:5], images[5:]], fps=10.0, interval=0.01)
    try:
        warnings: list[str] = []
        source = open_live(server.url, reconnect=1, backoff=0.05, timeout=3, warn=warnings.append)
        assert (source.kind, source.timing, source.fps, source.width, source.height) == ("stream", "stream", 10.0,
                                                                                         320, 240)
        frames, error = read_all(source)
    finally:
        server.stop()
    assert [f.index for f in frames] == list(range(8))
    assert np.abs(frames[6].image.astype(int) - images[6]).mean() < 8
    stamps = [f.timestamp for f in frames]
    # the stream's clock (10 fps), not the arrival times (frames came 10 ms apart) ...
    assert stamps[:5] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4], abs=1e-6)
    # ... and after the reconnect, whose clock starts again, on from the last frame by the time that passed
    assert stamps[5] > stamps[4] and stamps[6:] == pytest.approx([stamps[5] + 0.1, stamps[5] + 0.2], abs=1e-6)
    assert len(warnings) == 2 and isinstance(error, FrameStopped) and "reopening failed" in str(error)


# ``posetrack run`` on live sources, end to end with the biased random checkpoints (conftest.py).

def summary_row(out: Path, name: str) -> dict[str, str]:
    with open(out / "summary.csv", newline="") as f:
        return {r["name"]: r for r in csv.DictReader(f)}[name]


def run_cli(*args: str, **kwargs: object):
    from click.testing import CliRunner

    from posetrack_cli.cli import main

    return CliRunner().invoke(main, ["run", *args], **kwargs)


def test_run_on_a_stream_keeps_everything_when_the_connection_drops(weights_folder: Path, tmp_path: Path,
                                                                    serve) -> None:
    server = serve([walkers(frames=6)])
    out = tmp_path / "out"
    result = run_cli(server.url, "-o", str(out), *FAST)
    assert result.exit_code == 0, result.output
    name = stream_name(server.url)
    doc = check_outputs(out, name, 6)  # JSON and CSV valid and agreeing, every frame kept
    assert doc["info"]["partial"] is True and doc["info"]["partial_reason"].startswith("connection lost after 6 frames")
    assert doc["info"]["source"] == server.url and doc["info"]["live"]["timestamps"] == "arrival"
    stamps = [im["timestamp"] for im in doc["images"]]
    assert stamps[0] == 0.0 and stamps == sorted(stamps)
    row = summary_row(out, name)
    assert (row["input"], row["status"], row["frames"]) == (server.url, "partial", "6")
    assert "connection lost" in result.stderr and not list(out.glob(".*"))
    again = run_cli(server.url, "-o", str(out), *FAST)  # the server is gone now, and so are its frames
    assert again.exit_code == 1 and "cannot open" in again.stderr


def test_run_on_raw_frames_from_stdin_ends_with_the_pipe(weights_folder: Path, tmp_path: Path) -> None:
    frames = walkers(frames=4)
    out = tmp_path / "out"
    raw = b"".join(f.tobytes() for f in frames)
    result = run_cli("-", "--pipe-size", "320x240", "-o", str(out), *FAST, input=raw)
    assert result.exit_code == 0, result.output
    doc = check_outputs(out, "stdin", 4)
    assert doc["info"]["partial"] is False and summary_row(out, "stdin")["status"] == "ok"
    again = run_cli("-", "--pipe-size", "320x240", "-o", str(out), *FAST, input=raw)
    assert again.exit_code == 1 and "exists from an earlier run of this source; --overwrite" in again.stderr
    assert run_cli("-", "--pipe-size", "320x240", "-o", str(out), "--overwrite", *FAST, input=raw).exit_code == 0


def test_live_flags_are_checked_before_models_load(tmp_path: Path) -> None:
    # no weights folder: each of these must fail before any model is looked for
    cases = [
        (["-"], "--pipe-size WIDTHxHEIGHT"),
        (["-", "--pipe-size", "32x"], "is not WIDTHxHEIGHT in pixels"),
        (["0", "video.mp4"], "give it as the only SOURCE"),
        ([str(tmp_path), "--reconnect", "2"], "apply to live sources"),
        (["0", "--show"], "--show needs"),
        (["0", "--executor", "ray"], "drop --executor ray"),
        (["0", "--format", "coco"], "run `posetrack export`"),
        (["-", "--trail", "5"], "add --render"),
        ([f"http://127.0.0.1:{free_port()}/x"], "cannot open"),
    ]
    for args, message in cases:
        result = run_cli(*args, "-o", str(tmp_path / "out"), "--offline")
        assert result.exit_code != 0 and message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "out").exists()


def test_ctrl_c_on_a_stream_commits_what_was_read_and_flushes_come_before(weights_folder: Path, tmp_path: Path,
                                                                          serve) -> None:
    server = serve([walkers(frames=6) * 50], interval=0.05)  # 15 s of frames: Ctrl-C comes first
    out = tmp_path / "out"
    path = out / f"{stream_name(server.url)}.json"
    seen: list[dict] = []

    def press_ctrl_c_after_a_flush() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if path.exists():
                seen.append(json.loads(path.read_text()))  # valid whenever it is read
                if seen[-1]["info"]["frames"] >= 3:  # flushes happen inside the run: Ctrl-C is ours to handle
                    os.kill(os.getpid(), signal.SIGINT)
                    return
            time.sleep(0.02)

    watcher = threading.Thread(target=press_ctrl_c_after_a_flush, daemon=True)
    watcher.start()
    result = run_cli(server.url, "-o", str(out), "--flush-every", "0.2", *FAST)
    watcher.join()
    assert result.exit_code == 0, result.output
    flushed = seen[-1]["info"]
    assert flushed["partial"] is True and "still being read" in flushed["partial_reason"]
    assert len({s["info"]["frames"] for s in seen}) >= 2  # rewritten as frames came, not once
    doc = check_outputs(out, path.stem, json.loads(path.read_text())["info"]["frames"])
    assert doc["info"]["partial_reason"] == "stopped by Ctrl-C" and flushed["frames"] <= len(doc["images"]) < 300
    assert summary_row(out, path.stem)["status"] == "partial" and "Ctrl-C again" in result.stderr


def test_the_library_tracks_a_stream_frame_by_frame(weights_folder: Path, serve) -> None:
    import posetrack_cli

    server = serve([walkers(frames=4)])
    tracker = posetrack_cli.VideoTracker.load(input_size=(32, 32), flip_test=False, detector_size=256,
                                           allow_download=False)
    frames = tracker.track_frames(server.url)
    got = [next(frames) for _ in range(4)]
    assert [t.frame_index for _, t in got] == [0, 1, 2, 3] and all(len(t) for _, t in got)
    assert next(frames, None) is None  # the server closed: the frames end there
