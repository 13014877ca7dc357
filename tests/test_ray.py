"""``posetrack run --executor ray`` on a Ray cluster started for this module on this machine.

The cluster is a real ``ray start --head`` (2 CPUs, token authentication on) that the tests join
with ``--address``, as a user joins an existing cluster; the command runs in a subprocess, as a
user runs it, and its Ray workers import this checkout (``PYTHONPATH``). Ray maps the loopback
address we give it to the machine's own address, so the cluster is this machine and nothing else.
A worker is killed mid-video by finding its process: Ray titles a worker's process
``ray::VideoWorker.process`` while it runs ``process``, and only our cluster's processes carry
this module's tag in their environment.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner

from posetrack_cli.cli import main

from helpers import FAST, check_outputs, summary, walkers, write_video

ROOT = Path(__file__).resolve().parents[1]
TAG = f"posetrack-test-{secrets.token_hex(4)}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(test_manifest: Path) -> dict[str, str]:
    """A two-CPU Ray head on this machine for the module; returns the address and the environment
    (this checkout on PYTHONPATH, the cluster's token, the test checkpoints' manifest) that
    processes joining it need."""
    pytest.importorskip("ray", reason='Ray is not installed (pip install -e ".[ray]")')
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # Ray's socket paths must stay short
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16), "POSETRACK_TEST_CLUSTER": TAG,
           "RAY_USAGE_STATS_ENABLED": "0", "POSETRACK_MANIFEST": str(test_manifest)}
    env.pop("RAY_ADDRESS", None)
    log = open(Path(temp) / "head.log", "w")
    # --block keeps the head in the foreground; ending it ends every process it started.
    head = subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
                             "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "2",
                             "--num-gpus", "0", "--include-dashboard", "false", "--temp-dir", temp],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in (Path(temp) / "head.log").read_text():
            assert head.poll() is None, (Path(temp) / "head.log").read_text()
            assert time.monotonic() < deadline, "Ray did not start in 2 minutes"
            time.sleep(0.2)
        yield {"address": f"127.0.0.1:{port}", "env": env}
    finally:
        head.terminate()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def ray_run(cluster: dict, *args: str) -> subprocess.Popen:
    """``posetrack run ... --executor ray`` joining the test cluster with two workers, in a subprocess."""
    command = [sys.executable, "-m", "posetrack_cli", "run", *args, *FAST, "--executor", "ray",
               "--address", cluster["address"], "--workers", "2"]
    env = {**cluster["env"], "POSETRACK_WEIGHTS": os.environ["POSETRACK_WEIGHTS"]}
    return subprocess.Popen(command, cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # Ctrl-C works


def start_batch(cluster: dict, tmp_path: Path, count: int, *args: str,
                frames: int = 8) -> tuple[Path, Path, subprocess.Popen]:
    """``count`` generated clips run on the cluster into ``tmp_path/out``: (videos, out, process)."""
    folder = videos(tmp_path / "videos", count, frames=frames)
    out = tmp_path / "out"
    return folder, out, ray_run(cluster, str(folder), "-o", str(out), *args)


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def busy_worker() -> int | None:
    """The pid of one of this module's Ray workers while it is processing a video, if any."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().split(b"\0")[0]
            if title == b"ray::VideoWorker.process" and f"POSETRACK_TEST_CLUSTER={TAG}".encode() in (
                    entry / "environ").read_bytes().split(b"\0"):
                return int(entry.name)
        except OSError:  # ended meanwhile
            continue
    return None


def wait_for_a_busy_worker(proc: subprocess.Popen) -> int:
    """The pid of the first of our workers seen processing a video."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        pid = busy_worker()
        if pid is not None:
            return pid
        time.sleep(0.02)
    raise AssertionError("no worker was seen processing a video")


def kill_a_worker_mid_video(proc: subprocess.Popen) -> int:
    """SIGKILL the first of our workers seen processing a video; returns its pid."""
    pid = wait_for_a_busy_worker(proc)
    os.kill(pid, signal.SIGKILL)
    return pid


def left_behind(out: Path) -> list[str]:
    """The hidden entries of ``out`` that are not checkpoint folders (half-written files, locks): none
    should be there."""
    return sorted(p.name for p in out.glob(".*") if not (p.is_dir() and p.name.endswith(".checkpoint")))


def videos(folder: Path, count: int, frames: int) -> Path:
    folder.mkdir()
    for i in range(count):
        write_video(folder / f"clip{i}.mp4", walkers(frames=frames, seed=2 * i + 1))
    return folder


def without_timings(path: Path) -> dict:
    """A JSON output less ``info.stage_seconds``, ``info.timings`` and ``info.speed``, the only fields
    that differ between executors (a Ray worker runs on one core, so its stages do not overlap)."""
    doc = json.loads(path.read_text())
    assert set(doc["info"].pop("timings")) == {"first_frame_s", "first_frame_cpu_s"}
    assert set(doc["info"].pop("stage_seconds")) == {"decode", "detect", "flow", "pose", "track", "write"}
    assert {"overlap", "batch_size", "device"} <= set(doc["info"].pop("speed"))
    return doc


@pytest.mark.slow
@pytest.mark.ray
def test_ray_outputs_equal_the_local_executors(cluster: dict, weights_folder: Path, tmp_path: Path) -> None:
    folder = videos(tmp_path / "videos", 3, frames=5)
    (folder / "corrupt.mp4").write_bytes(bytes(range(256)) * 40)  # not a video
    local, remote = tmp_path / "local", tmp_path / "ray"
    assert CliRunner().invoke(main, ["run", str(folder), "-o", str(local), *FAST]).exit_code == 1

    code, out, err = finish(ray_run(cluster, str(folder), "-o", str(remote)))
    assert code == 1, err  # the corrupt input failed
    rows = summary(remote)
    assert {name: row["status"] for name, row in rows.items()} == {
        "clip0.mp4": "ok", "clip1.mp4": "ok", "clip2.mp4": "ok", "corrupt.mp4": "failed"}
    assert "cannot open" in rows["corrupt.mp4"]["reason"]
    assert f"posetrack: error: {folder / 'corrupt.mp4'}: cannot open" in err and "Traceback" not in err
    for i in range(3):
        check_outputs(remote, f"clip{i}", 5)
        assert without_timings(remote / f"clip{i}.json") == without_timings(local / f"clip{i}.json")
        assert (remote / f"clip{i}.csv").read_bytes() == (local / f"clip{i}.csv").read_bytes()
    assert [r["status"] for r in summary(local).values()] == [r["status"] for r in rows.values()]
    assert sorted(p.name for p in remote.iterdir()) == sorted(p.name for p in local.iterdir())  # no temporary files


@pytest.mark.slow
@pytest.mark.ray
def test_a_killed_worker_loses_only_its_video_which_is_retried(cluster: dict, weights_folder: Path,
                                                               tmp_path: Path) -> None:
    folder, out, proc = start_batch(cluster, tmp_path, 4)
    pid = kill_a_worker_mid_video(proc)
    code, _, err = finish(proc)
    assert code == 0, err
    assert f"Ray worker pid {pid} on " in err and "trying it again (2 of 3)" in err
    assert all(row["status"] == "ok" for row in summary(out).values()) and len(summary(out)) == 4
    for i in range(4):
        check_outputs(out, f"clip{i}", 8)
    assert not list(out.glob(".*"))


@pytest.mark.slow
@pytest.mark.ray
def test_a_video_whose_worker_keeps_dying_fails_and_a_rerun_resumes(cluster: dict, weights_folder: Path,
                                                                    tmp_path: Path) -> None:
    folder, out, proc = start_batch(cluster, tmp_path, 3, "--retries", "0")
    kill_a_worker_mid_video(proc)
    code, _, err = finish(proc)
    assert code == 1
    rows = summary(out)
    [lost] = [name for name, row in rows.items() if row["status"] == "failed"]
    assert rows[lost]["reason"].startswith("its Ray worker died while processing it (pid ")
    assert f"posetrack: error: {folder / lost}: its Ray worker died" in err
    assert not (out / lost).with_suffix(".json").exists()
    assert left_behind(out) == []  # nothing half-written

    # The rerun asks for an export too: the finished videos get it from their track files.
    code, _, err = finish(ray_run(cluster, str(folder), "-o", str(out), "--format", "mot"))
    assert code == 0, err
    rerun = summary(out)
    assert {name: row["status"] for name, row in rerun.items()} == {
        name: "ok" if name == lost else "skipped" for name in rows}
    assert all(row["reason"].endswith(f"made {Path(name).stem}.txt from its track file")
               for name, row in rerun.items() if name != lost)
    assert sorted(p.name for p in (out / "mot").iterdir()) == sorted(f"{Path(name).stem}.txt" for name in rows)
    check_outputs(out, Path(lost).stem, 8)


@pytest.mark.ray
def test_ctrl_c_stops_the_workers_and_leaves_nothing_half_written(cluster: dict, weights_folder: Path,
                                                                 tmp_path: Path) -> None:
    # Clips long enough that Ctrl-C lands while a worker is inside one (its row: interrupted).
    _, out, proc = start_batch(cluster, tmp_path, 3, frames=40)
    worker = wait_for_a_busy_worker(proc)
    proc.send_signal(signal.SIGINT)
    code, _, err = finish(proc)
    assert code == 130 and err.rstrip().endswith("posetrack: interrupted")
    rows = summary(out)
    assert len(rows) == 3  # every input has its row, started or not
    assert "interrupted" in [row["status"] for row in rows.values()]
    assert all(row["status"] in ("ok", "interrupted") for row in rows.values())
    for name, row in rows.items():
        assert (out / name).with_suffix(".json").exists() == (row["status"] == "ok")
    assert left_behind(out) == [], err  # a stopped worker's checkpoint stays, for a rerun to resume from
    deadline = time.monotonic() + 30  # the workers are gone too
    while Path(f"/proc/{worker}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{worker}").exists() and busy_worker() is None


# A stand-in for a Ray worker's process: it takes the output lock it is given and starts a temporary
# file under it, as a worker that has begun a video has, then works until it is killed.
_HOLDER = """
import sys, time
from pathlib import Path
from posetrack_cli.core.files import OutputLock, temp_path
folder, lock_name, target = sys.stdin.readline().rstrip("\\n").split("\\t")
assert OutputLock(Path(folder), lock_name).acquire(wait=True)
temp_path(Path(target)).write_text("half a video")
print("held", flush=True)
time.sleep(600)
"""


class _Ref:
    """A fake ObjectRef: ``ready`` once its call has answered ``value``."""

    def __init__(self, value: object = None, ready: bool = True) -> None:
        self.value, self.ready = value, ready


class _Call:
    def __init__(self, remote: Callable[..., _Ref]) -> None:
        self.remote = remote


class _FakeRay:
    """The calls the driver makes of the ``ray`` module, over workers that are real processes of
    this machine, so the driver's waits for them and their locks are the real ones. The second
    video handed out is interrupted the moment its call is submitted, before ``.remote()`` returns:
    where Ctrl-C lands when it arrives during the submission."""

    def __init__(self, outputs_of: Callable[[Any], Any]) -> None:
        self.outputs_of, self.handed_out = outputs_of, 0
        self.processes: list[subprocess.Popen] = []

    def actor(self) -> Any:
        from posetrack_cli import __version__

        proc = subprocess.Popen([sys.executable, "-c", _HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        self.processes.append(proc)
        actor = type("Actor", (), {})()
        actor.proc = proc
        actor.describe = _Call(lambda: _Ref({"host": socket.gethostname(), "pid": proc.pid, "version": __version__,
                                             "error": None, "cwd_ok": True, "key": "key"}))
        actor.process = _Call(lambda item: self.process(proc, item))
        return actor

    def process(self, proc: subprocess.Popen, item: Any) -> _Ref:
        outputs = self.outputs_of(item)
        target = next(iter(outputs.paths().values()))
        proc.stdin.write(f"{outputs.out_dir}\t{outputs.name + outputs.suffix}\t{target}\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == "held\n"
        self.handed_out += 1
        if self.handed_out == 2:
            raise KeyboardInterrupt
        return _Ref(ready=False)  # a video takes longer than this test

    def wait(self, refs: list, num_returns: int = 1, timeout: float | None = None) -> tuple[list, list]:
        ready = [r for r in refs if r.ready][:num_returns]
        assert len(ready) == num_returns or timeout is not None, "the driver would wait forever"
        return ready, [r for r in refs if r not in ready]

    def get(self, ref: _Ref) -> object:
        return ref.value

    def kill(self, actor: Any) -> None:
        actor.proc.send_signal(signal.SIGKILL)  # not waited for: Ray's kill does not wait either


def test_ctrl_c_during_a_submission_stops_that_worker_and_cleans_its_files(tmp_path: Path) -> None:
    """Ctrl-C can land after a video's call is submitted and before the driver notes which worker
    has it. That worker is stopped too, and its lock and temporary file are removed: the CI run
    that found it left ``.clip1.lock`` behind."""
    pytest.importorskip("ray", reason='Ray is not installed (pip install -e ".[ray]")')
    from posetrack_cli.run.batch import BatchRecord, InputItem
    from posetrack_cli.run.ray_executor import _RayBatch
    from posetrack_cli.run.settings import RunSpec

    folder, out = tmp_path / "videos", tmp_path / "out"
    folder.mkdir()
    out.mkdir()
    items = []
    for i in range(3):
        (folder / f"clip{i}.mp4").write_bytes(b"a video")  # only its size and times are read
        items.append(InputItem(folder / f"clip{i}.mp4", f"clip{i}"))
    fake = _FakeRay(lambda item: batch.outputs(item))
    batch = _RayBatch(fake, fake.actor, BatchRecord(out, items), RunSpec(), out, retries=2, overwrite=False,
                      on_item=None, log=lambda line: None)
    try:
        with pytest.raises(KeyboardInterrupt):
            batch.run(2)
        assert fake.handed_out == 2
        assert {row.name: (row.status, row.reason) for row in batch.record.rows()} == {
            "clip0": ("interrupted", "Ctrl-C"), "clip1": ("interrupted", "Ctrl-C"),
            "clip2": ("interrupted", "Ctrl-C before it started")}
        assert left_behind(out) == []
        assert all(proc.poll() is not None for proc in fake.processes)  # both workers were stopped
    finally:
        for proc in fake.processes:
            proc.kill()
            proc.wait()


def test_without_ray_the_executor_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    video = write_video(tmp_path / "clip.mp4", walkers())
    result = CliRunner().invoke(main, ["run", str(video), "-o", str(tmp_path / "out"), *FAST, "--executor", "ray"])
    assert result.exit_code == 1
    install = 'pip install "posetrack[ray]"'
    assert result.stderr == f"posetrack: error: --executor ray needs Ray, an optional extra: {install}\n"
    assert not (tmp_path / "out").exists()


def test_ray_options_need_the_ray_executor(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", str(tmp_path), "--workers", "2", "--address", "10.0.0.1:6379"])
    assert result.exit_code == 1
    assert result.stderr == "posetrack: error: --address, --workers apply to --executor ray only\n"


def test_an_address_where_nothing_listens_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason='Ray is not installed (pip install -e ".[ray]")')
    video = write_video(tmp_path / "clip.mp4", walkers())
    address = f"127.0.0.1:{_free_port()}"
    result = CliRunner().invoke(main, ["run", str(video), "-o", str(tmp_path / "out"), *FAST, "--executor", "ray",
                                       "--address", address])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"posetrack: error: cannot join the Ray cluster at {address}: nothing answers")


@pytest.mark.ray
def test_joining_without_the_clusters_token_says_what_to_set(cluster: dict, tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", walkers())
    env = {k: v for k, v in cluster["env"].items() if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    env["RAY_NUM_REDIS_GET_RETRIES"] = "2"  # Ray tries 20 times, a second apart, before giving up
    proc = subprocess.run([sys.executable, "-m", "posetrack_cli", "run", str(video), "-o", str(tmp_path / "out"),
                           *FAST, "--executor", "ray", "--address", cluster["address"]],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "set RAY_AUTH_MODE=token and give this machine its token" in proc.stderr.splitlines()[-1]


def test_a_killed_workers_process_counts_as_ended_once_it_runs_no_more_code() -> None:
    """Ctrl-C cleans a killed worker's files only once its process has ended (``_ended``): a running
    process has not, an unreaped zombie and a reaped process have."""
    from posetrack_cli.run.ray_executor import _ended

    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert not _ended(running.pid)
    finally:
        running.kill()
    deadline = time.monotonic() + 10
    while not _ended(running.pid) and time.monotonic() < deadline:  # killed, not yet waited for: a zombie
        time.sleep(0.01)
    assert _ended(running.pid)
    running.wait()
    assert _ended(running.pid)
