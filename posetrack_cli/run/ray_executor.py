"""``posetrack run --executor ray``: a batch of videos shared by Ray workers, on one machine or many.

Each worker is a Ray actor that loads the run's models once (the same :func:`~posetrack_cli.run.job.load_run` the
local executor calls) and then processes whole videos. The driver -- the ``posetrack run``
process -- applies the local executor's resume rule, hands the remaining videos out one at a time
to whichever worker is free, collects the summary rows and writes ``summary.csv``. Workers write
the outputs themselves, exactly as the local executor does (same files, same temporary names and
renames), so the inputs and the output folder must be at the same path on every machine: a
shared filesystem. Workers check that they see the driver's output folder before they take work.

A worker process that dies mid-video (killed, out of memory, its machine gone) loses only that
video: a new worker replaces it, and the video goes back to the queue up to ``retries`` more times
before it is reported failed. Ray's own actor restarts are not used, so that the driver always
knows which video a death cost and never counts a video that had not started.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.files import OutputLock
from posetrack_cli.core.version import __version__
from posetrack_cli.io.outputs import OutputSet
from posetrack_cli.run.batch import BatchRecord, InputItem, ItemResult, failed, run_locked, skipped_if_done, stopped_row
from posetrack_cli.run.job import derived_paths, input_fingerprint
from posetrack_cli.run.settings import RayOptions, RunSpec

INSTALL = 'pip install "posetrack[ray]"'


def import_ray() -> Any:
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise PosetrackError(f"--executor ray needs Ray, an optional extra: {INSTALL}") from None
    return ray


class VideoWorker:
    """One Ray worker: loads the run's models once, then processes whole videos into ``out_dir``.

    Args:
        spec: the run, as the driver's command line gave it.
        out_dir: absolute output folder on the driver.
        probe: name of a file the driver created in ``out_dir``; seeing it proves this machine
            writes into the driver's folder and not into a local one of the same name.
        cwd: the driver's working directory; relative SOURCE paths are resolved against it.
        weights_dir: the driver's model folder, used when this machine sees it too.
    """

    def __init__(self, spec: RunSpec, out_dir: str, probe: str, cwd: str, weights_dir: str, overwrite: bool) -> None:
        from posetrack_cli.models.weights import ENV_WEIGHTS

        self.error: str | None = None
        self.overwrite = overwrite
        self.cwd_ok = os.path.isdir(cwd)
        if self.cwd_ok:
            os.chdir(cwd)  # relative SOURCE paths mean what they meant on the driver
        if os.path.isdir(weights_dir):
            os.environ[ENV_WEIGHTS] = weights_dir
        try:
            if not (Path(out_dir) / probe).is_file():
                raise PosetrackError(f"the output folder {out_dir} is not the driver's on this machine; put it on a "
                                     "filesystem every machine mounts at the same path")
            from posetrack_cli.run.job import load_run

            self.run = load_run(spec).into(Path(out_dir), overwrite=overwrite)
        except PosetrackError as exc:  # reported by describe(); the driver does not give this worker work
            self.error = str(exc)

    def describe(self) -> dict[str, Any]:
        """Where this worker runs and what it loaded (``error`` says why it could not load)."""
        return {"host": socket.gethostname(), "pid": os.getpid(), "version": __version__, "error": self.error,
                "cwd_ok": self.cwd_ok, "key": None if self.error else self.run.key}

    def process(self, item: InputItem) -> ItemResult:
        """One video into the output folder under its lock, exactly as the local executor does it."""
        result = run_locked(self.run, item, overwrite=self.overwrite, wait=True)
        assert result is not None  # a waiting lock is always taken
        return result


@dataclass
class _Worker:
    """The driver's view of one worker: its actor, and its pending call (``describe`` while it
    starts, ``process`` while it has a video)."""

    actor: Any
    pending: Any = None
    item: InputItem | None = None
    host: str = "?"
    pid: int = 0


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _death(exc: BaseException) -> str:
    """What Ray says about a worker's death, in a few words: the first sentence of its exit
    detail, or the last line of the traceback when the worker failed to construct."""
    text = " ".join(str(exc).split())
    found = re.search(r"Worker exit detail: (.+?)(?:\.\s|\.?$)", text)
    if found:
        return _one_line(Exception(found.group(1)), 160)
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return _one_line(Exception(lines[-1] if lines else type(exc).__name__), 160)


def _check_reachable(address: str | None, timeout: float = 10.0) -> None:
    """A HOST:PORT address must accept a connection: Ray itself retries a wrong one for minutes."""
    if not address or "://" in address or address == "auto" or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        raise PosetrackError(f"cannot join the Ray cluster at {address}: nothing answers there "
                             f"({getattr(exc, 'strerror', None) or exc}); start it with `ray start --head` "
                             "and give the address it prints") from None


def _connect(ray: Any, options: RayOptions, log: Callable[[str], None]) -> None:
    """Join the cluster of ``options.address`` (or ``$RAY_ADDRESS``), else start Ray on this machine."""
    address = options.address or os.environ.get("RAY_ADDRESS")
    # Worker output (OpenCV's decoder warnings, say) stays in Ray's log files unless debugging:
    # the driver reports every video's outcome itself.
    quiet = {"logging_level": logging.WARNING, "log_to_driver": bool(os.environ.get("POSETRACK_DEBUG"))}
    _check_reachable(address)
    try:
        if address:
            ray.init(address=address, **quiet)
            where = f"joined the Ray cluster at {address}"
        else:
            cpus = max(os.cpu_count() or 1, options.workers or 0)  # room for every worker asked for
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, **quiet)
            where = "started Ray on this machine"
    except (ConnectionError, RuntimeError, ValueError) as exc:
        causes: list[str] = []
        cause: BaseException | None = exc
        while cause is not None and len(causes) < 10:  # Ray wraps the GCS's refusal, as text, in a RuntimeError
            causes.append(f"{type(cause).__name__}: {cause}")
            cause = cause.__cause__ or cause.__context__
        hint = ""
        if re.search(r"AuthenticationError|InvalidAuthToken", " ".join(causes)):
            hint = ("; the cluster uses token authentication: set RAY_AUTH_MODE=token and give this machine its "
                    "token (~/.ray/auth_token or RAY_AUTH_TOKEN)")
        raise PosetrackError(f"cannot {'join the Ray cluster at ' + address if address else 'start Ray'}: "
                             f"{_one_line(exc)}{hint}") from None
    total = ray.cluster_resources()
    log(f"{where}: {len(ray.nodes())} node(s), {total.get('CPU', 0):g} CPUs, {total.get('GPU', 0):g} GPUs")


def _plan(ray: Any, spec: RunSpec, options: RayOptions, log: Callable[[str], None]) -> tuple[int, float, RunSpec]:
    """Workers, GPUs per worker, and the spec workers load (a CPU worker is told it is one)."""
    total = ray.cluster_resources()
    cpus, gpus = total.get("CPU", 0.0), total.get("GPU", 0.0)
    device = spec.estimator.device.strip().lower()
    per = options.gpus_per_worker
    if per is None:
        per = 1.0 if gpus >= 1 and device != "cpu" else 0.0
    if per > 0 and device == "cpu":
        raise PosetrackError("--gpus-per-worker reserves GPUs that --device cpu does not use")
    if per == 0 and device.startswith("cuda"):
        raise PosetrackError(f"--device {spec.estimator.device} on Ray needs --gpus-per-worker > 0: a worker sees only "
                             "the GPUs it reserves")
    if per > 1 and per != int(per):
        raise PosetrackError(f"--gpus-per-worker {per:g}: Ray shares a GPU (a fraction below 1) or reserves whole ones")
    if re.fullmatch(r"cuda:[1-9]\d*", device):
        raise PosetrackError(f"--device {spec.estimator.device}: a Ray worker sees only the GPUs it reserves, "
                             "numbered from 0; "
                             "use --device cuda")
    if per > gpus:
        raise PosetrackError(f"--gpus-per-worker {per:g}: the Ray cluster has {gpus:g} GPUs")
    if cpus < 1:
        raise PosetrackError("the Ray cluster has no CPUs for workers")
    fit = int(min(cpus, gpus // per if per > 0 else cpus))
    workers = options.workers or fit
    if workers > fit:
        log(f"the cluster has room for {fit} of {workers} workers now; the others start when resources free up")
    if per == 0 and device == "auto":
        # Ray leaves CUDA_VISIBLE_DEVICES alone for a worker without GPUs, so "auto" could pick a
        # GPU that another worker reserved.
        spec = replace(spec, estimator=replace(spec.estimator, device="cpu"))
    return workers, per, spec


# Seconds to wait for a killed worker's output lock: the kernel frees it once the worker's process
# is gone, usually a few seconds after ``ray.kill``, longer on a loaded machine.
KILLED_LOCK_WAIT = 30.0


def _ended(pid: int) -> bool:
    """Whether process ``pid`` of this machine has ended (a zombie its parent has not reaped yet
    counts as ended: it runs no more code)."""
    proc = Path("/proc")
    if proc.is_dir():
        try:
            return (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return True
    try:  # no /proc (macOS): signal 0 only asks whether the process is there
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _remove_partials(outputs: OutputSet) -> bool:
    """Remove the temporary files a dead worker left, under the output's lock; False when the lock
    stayed held (the files are then left for the next run, which removes them under the lock).
    Finished outputs stay."""
    lock = OutputLock(outputs.out_dir, outputs.name + outputs.suffix)
    if not lock.acquire(wait=KILLED_LOCK_WAIT):
        return False
    try:
        outputs.remove_stale_temps()
    finally:
        lock.release()
    return True


def run_on_ray(spec: RunSpec, items: list[InputItem], out_dir: Path, options: RayOptions = RayOptions(), *,
               overwrite: bool = False, earlier: list[ItemResult] | None = None,
               on_item: Callable[[ItemResult], None] | None = None,
               log: Callable[[str], None] | None = None) -> list[ItemResult]:
    """Run ``items`` on Ray workers into ``out_dir``; returns the summary rows and writes ``summary.csv``.

    The rows are those of the local executor for the same inputs, in input order after
    ``earlier``; ``on_item`` is called as each video ends (in completion order) and ``log`` with
    one-line notes (where Ray runs, a worker lost and its video retried). Uses the Ray connection
    of the calling process if there is one; otherwise connects (see :class:`RayOptions`) and
    disconnects at the end. Raises PosetrackError if no worker can start.
    """
    from posetrack_cli.models.weights import resolve, weights_dir

    ray = import_ray()
    log = log or (lambda line: None)
    record = BatchRecord(out_dir, items, earlier or [])
    if not items:
        record.write_summary()
        return record.rows()
    if spec.allow_download:
        for name in spec.models.model_files():  # download once, here, rather than once per worker
            resolve(name)
    connected_here = not ray.is_initialized()
    if connected_here:
        _connect(ray, options, log)
    out_dir = out_dir.absolute()
    probe = out_dir / f".posetrack-ray-{uuid.uuid4().hex[:12]}.probe"
    batch: _RayBatch | None = None
    try:
        probe.touch()
        count, per_gpu, worker_spec = _plan(ray, spec, options, log)
        actor_class = ray.remote(VideoWorker).options(num_cpus=1, num_gpus=per_gpu, max_restarts=0)
        arguments = (worker_spec, str(out_dir), probe.name, os.getcwd(), str(weights_dir().absolute()), overwrite)
        batch = _RayBatch(ray, lambda: actor_class.remote(*arguments), record, spec, out_dir, options.retries,
                          overwrite, on_item, log)
        return batch.run(count)
    finally:
        if batch is not None:
            batch.stop()
        probe.unlink(missing_ok=True)
        if connected_here:
            ray.shutdown()


class _RayBatch:
    """The driver's side of one batch: a changing pool of workers (they die and are replaced),
    a queue of videos, and the batch record every finished video goes into.

    Args:
        ray: the ``ray`` module.
        new_actor: starts one worker actor.
        record: the batch's rows.
        spec: the run (which files each input gets: a finished input missing one of its exports or
            its report goes to a worker, which makes it without tracking again).
        out_dir: where outputs go.
        retries: times a video is tried again after its worker died while processing it.
        overwrite: redo finished inputs.
        on_item, log: called with each finished row, and with one-line notes.
    """

    def __init__(self, ray: Any, new_actor: Callable[[], Any], record: BatchRecord, spec: RunSpec, out_dir: Path,
                 retries: int, overwrite: bool, on_item: Callable[[ItemResult], None] | None,
                 log: Callable[[str], None]) -> None:
        self.ray, self.new_actor, self.record = ray, new_actor, record
        self.spec, self.out_dir = spec, out_dir
        self.retries, self.overwrite = retries, overwrite
        self.on_item, self.log = on_item, log
        self.workers: list[_Worker] = []
        self.queue: deque[InputItem] = deque()
        self.idle: list[_Worker] = []
        self.deaths: Counter[str] = Counter()
        self.problems: list[str] = []
        self.key: str | None = None  # the first worker's; every other must match it
        self.version: str | None = None
        self.relative = any(not item.path.is_absolute() for item in record.items)

    def outputs(self, item: InputItem) -> OutputSet:
        return OutputSet(self.out_dir, item.name, render=self.spec.render,
                         derived=derived_paths(self.spec, self.out_dir, item.name))

    def item_key(self, item: InputItem) -> str:
        assert self.key is not None  # asked once the first worker has loaded
        return self.key

    def fingerprint(self, item: InputItem) -> str:
        return input_fingerprint(self.spec, item)

    def start(self) -> None:
        worker = _Worker(self.new_actor())
        worker.pending = worker.actor.describe.remote()
        self.workers.append(worker)

    def stop(self) -> None:
        for worker in self.workers:
            self.ray.kill(worker.actor)

    def finish(self, result: ItemResult) -> None:
        self.record.add(result)
        if self.on_item is not None:
            self.on_item(result)

    def run(self, count: int) -> list[ItemResult]:
        """Hand out videos until each has a row; writes the summary at the end, also on Ctrl-C."""
        from ray.exceptions import RayActorError, RayError, RayTaskError

        for _ in range(count):
            self.start()
        try:
            while True:
                self.dispatch()
                # Calls to wait for: every video in flight; workers still starting only while work may need them.
                busy = {w.pending: w for w in self.workers
                        if w.pending is not None and (w.item is not None or self.key is None or self.queue)}
                if not busy:
                    break
                [ref], _ = self.ray.wait(list(busy), num_returns=1)
                worker = busy[ref]
                worker.pending, item, worker.item = None, worker.item, None
                if item is None:  # describe() answered: the worker has loaded its models, or could not
                    try:
                        self.started(worker, self.ray.get(ref))
                    except RayActorError as exc:  # died while loading (out of memory, not installed there...)
                        problem = _death(exc)
                        if re.search(r"ModuleNotFoundError|No module named|Can't get attribute", problem):
                            problem += " (each machine imports its own posetrack: install the same version everywhere)"
                        self.retire(worker, problem)
                    continue
                try:
                    result = self.ray.get(ref)
                except RayTaskError as exc:  # a bug, not a bad input: this video fails, the batch goes on
                    cause = exc.cause if exc.cause is not None else exc
                    if os.environ.get("POSETRACK_DEBUG"):
                        self.log(str(exc))
                    why = f"{type(cause).__name__}: {_one_line(cause)}"
                    result = failed(item, f"internal error on {worker.host}: {why}")
                except RayError as exc:  # the worker process or its machine is gone (killed, out of memory...)
                    self.lost(worker, item, exc)
                    continue
                self.finish(result)
                self.idle.append(worker)
            if self.key is None:
                raise PosetrackError(f"no Ray worker could start: {self.last_problem('unknown reason')}")
            for item in self.queue:  # every worker failed to start again after deaths
                self.finish(failed(item, f"no Ray worker left to process it ({self.last_problem('all died')})"))
        except KeyboardInterrupt:
            self.interrupt()
            raise
        finally:
            if self.key is not None:
                self.record.write_summary()
        return self.record.rows()

    def last_problem(self, otherwise: str) -> str:
        return self.problems[-1] if self.problems else otherwise

    def dispatch(self) -> None:
        while self.queue and self.idle:
            worker, item = self.idle.pop(), self.queue.popleft()
            worker.item, worker.pending = item, worker.actor.process.remote(item)

    def retire(self, worker: _Worker, problem: str) -> None:
        self.workers.remove(worker)
        self.ray.kill(worker.actor)
        if problem not in self.problems:
            self.problems.append(problem)
            self.log(f"a Ray worker{' on ' + worker.host if worker.pid else ''} could not start: {problem}")

    def started(self, worker: _Worker, described: dict[str, Any]) -> None:
        worker.host, worker.pid = described["host"], described["pid"]
        if described["error"]:
            self.retire(worker, described["error"])
        elif self.relative and not described["cwd_ok"]:
            self.retire(worker, f"the folder posetrack run was started in, {os.getcwd()}, is not on this machine; "
                                "give SOURCEs as absolute paths on a filesystem every machine shares")
        elif self.key is not None and (described["key"], described["version"]) != (self.key, self.version):
            self.retire(worker, f"it runs posetrack {described['version']} with other models or settings than the "
                                f"first worker (posetrack {self.version}); install the same posetrack and model files "
                                "everywhere")
        else:
            if self.key is None:
                self.key, self.version = described["key"], described["version"]
                for item in self.record.items:  # the local executor's resume rule
                    skipped = skipped_if_done(self.outputs(item), self.key, item, overwrite=self.overwrite,
                                              fingerprint_of=self.fingerprint)
                    if skipped is not None:
                        self.finish(skipped)
                    else:
                        self.queue.append(item)
            self.idle.append(worker)

    def lost(self, worker: _Worker, item: InputItem, exc: Exception) -> None:
        """The worker died with ``item``: replace it, and retry the video or report it failed."""
        self.workers.remove(worker)
        self.ray.kill(worker.actor)  # an unreachable worker may still be running: stop it before a retry
        _remove_partials(self.outputs(item))
        self.deaths[item.name] += 1
        deaths = self.deaths[item.name]
        what = f"Ray worker pid {worker.pid} on {worker.host} died while processing {item.path}"
        if deaths <= self.retries:
            self.log(f"{what}; trying it again ({deaths + 1} of {self.retries + 1})")
            self.queue.appendleft(item)
        else:
            times = f", {deaths} times" if deaths > 1 else ""
            self.finish(failed(item, f"its Ray worker died while processing it{times} "
                                     f"({'last: ' if times else ''}pid {worker.pid} on {worker.host}: {_death(exc)})"))
        if self.queue:
            self.start()

    def interrupt(self) -> None:
        """Ctrl-C: stop every worker, remove the unfinished files of every input handed out, and give
        every input without a row the one its files on disk say: a worker may have committed its
        video just before it was stopped (``ok``), else it is ``interrupted``.

        Ctrl-C can land between a call's submission and the driver's note of it (inside
        ``dispatch``), so the inputs to clean are all those taken off the queue without a row, not
        only those the driver's notes give a worker, and every worker is stopped before any is
        cleaned."""
        for worker in self.workers:
            self.ray.kill(worker.actor)
        pending = [w.pending for w in self.workers if w.item is not None and w.pending is not None]
        if pending:  # the killed workers' calls end when Ray has them for dead
            self.ray.wait(pending, num_returns=len(pending), timeout=10)
        # Ray may report a worker dead before its process has stopped running. One that has only just
        # started its video may not hold its output lock yet, so taking the lock proves nothing: wait
        # for its process to end where it is visible, on this machine.
        here, deadline = socket.gethostname(), time.monotonic() + KILLED_LOCK_WAIT
        for worker in self.workers:
            while worker.host == here and worker.pid and not _ended(worker.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        if self.key is None:  # no worker had loaded: nothing was handed out
            return
        queued = {item.name for item in self.queue}
        handed_out = [item for item in self.record.items if not self.record.has(item) and item.name not in queued]
        for item in handed_out:
            if not _remove_partials(self.outputs(item)):
                self.log(f"the stopped worker of {item.path} still held its output lock after "
                         f"{KILLED_LOCK_WAIT:g} s; its unfinished files are removed by the next run")
        # The stopped workers are gone (or their locks waited for): their outputs are as they stay.
        for item in self.record.items:
            if not self.record.has(item):
                self.record.add(stopped_row(self, item, started=item.name not in queued))
