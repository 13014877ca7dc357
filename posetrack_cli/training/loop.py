"""The training loop: Adam with step decay, per-epoch checkpoints ``posetrack run`` loads, resume.

The recipe is the paper's (section 4, and the released COCO experiment files): Adam at 1e-3,
multiplied by 0.1 at epochs 90 and 120 of 140, batch 32, the weighted joint MSE against sigma-2
Gaussian heatmaps, scale/rotation/flip augmentation. ``TrainConfig`` holds all of it; it is saved in
every checkpoint, and ``--resume`` continues exactly that configuration.

Files written to the output folder:

* ``checkpoint.pth`` after every epoch: MSRA layout (``state_dict`` with ``conv1 ... final_layer``)
  plus ``posetrack`` metadata (input size, keypoint names, normalisation), so ``posetrack run`` and
  ``load_pose_checkpoint`` load it strictly; and the training state (``epoch`` completed,
  ``optimizer``, ``scaler``, ``train_config``, ``history``) that ``--resume`` continues from.
  Written to a temporary file and renamed: an interrupt leaves the previous epoch's file intact.
* ``best.pth`` (with validation): weights and metadata of the epoch with the highest COCO AP.
* ``final.pth`` when the last epoch is done: weights and metadata only, the file to share.
* ``history.csv``: one row per epoch (loss, learning rate, time, skipped examples, AP).
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm import tqdm

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.files import atomic_write
from posetrack_cli.core.paper import CROP_PADDING
from posetrack_cli.models.checkpoints import (
    InputNorm,
    load_resnet_checkpoint,
    read_checkpoint,
    save_msra_checkpoint,
)
from posetrack_cli.models.device import resolve_device
from posetrack_cli.models.pose_resnet import RESNET_STAGES, PoseResNet
from posetrack_cli.training.augment import AugmentSettings
from posetrack_cli.training.data import PersonSamples
from posetrack_cli.training.dataset import TopDownDataset
from posetrack_cli.training.initialise import initial_model
from posetrack_cli.training.targets import joints_mse_loss
from posetrack_cli.training.validate import CocoValidation

CHECKPOINT_NAME = "checkpoint.pth"
BEST_NAME = "best.pth"
FINAL_NAME = "final.pth"
HISTORY_NAME = "history.csv"


@dataclass(frozen=True)
class TrainConfig:
    """What a run learns and how. Saved in every checkpoint; ``--resume`` continues it unchanged."""

    depth: int = 50  # ResNet depth: 18, 34, 50, 101 or 152 (the paper: 50, 101, 152)
    # network input (width, height), multiples of 32 (paper: 256x192 and 384x288 as HxW)
    input_size: tuple[int, int] = (192, 256)
    deconv_channels: tuple[int, ...] = (256, 256, 256)  # the paper's head: three 4x4 deconvolutions of 256 filters
    # "imagenet" (torchvision weights, as the paper), "scratch", or a pose checkpoint to fine-tune
    init: str = "imagenet"
    epochs: int = 140  # paper: 140
    lr: float = 1e-3  # Adam learning rate (paper: 1e-3)
    lr_steps: tuple[int, ...] = (90, 120)  # epochs where the rate is multiplied by lr_factor (paper: 90 and 120)
    lr_factor: float = 0.1  # paper: 0.1
    batch_size: int = 32  # per step (MSRA: 32 per GPU)
    sigma: float = 2.0  # Gaussian target std in heatmap pixels (paper: 2)
    padding: float = CROP_PADDING  # person box enlargement before cropping (paper: 1.25)
    scale_factor: float = 0.3  # random scale 1 +- 0.3 (MSRA COCO: SCALE_FACTOR 0.3)
    rotation_factor: float = 40.0  # random rotation std, clipped at twice it (MSRA COCO: ROT_FACTOR 40)
    rotation_prob: float = 0.6  # share of examples rotated at all (MSRA: 0.6)
    flip: bool = True  # mirror half the examples, left/right joints swapped (MSRA: FLIP true)
    seed: int = 0  # initialisation, shuffling and augmentation: the same seed gives the same run

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        object.__setattr__(self, "deconv_channels", tuple(int(v) for v in self.deconv_channels))
        object.__setattr__(self, "lr_steps", tuple(sorted(int(v) for v in self.lr_steps)))
        w, h = self.input_size
        checks = [
            (self.depth in RESNET_STAGES, f"depth must be one of {sorted(RESNET_STAGES)}, got {self.depth}"),
            (w >= 32 and h >= 32 and w % 32 == 0 and h % 32 == 0, f"input size must be multiples of 32, got {w}x{h}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.lr > 0 and 0 < self.lr_factor <= 1, "lr must be > 0 and lr_factor in (0, 1]"),
            (all(s >= 1 for s in self.lr_steps), f"lr steps must be epochs >= 1, got {list(self.lr_steps)}"),
            (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
            (self.sigma > 0 and self.padding > 0, "sigma and padding must be > 0"),
            (0 <= self.scale_factor < 1 and self.rotation_factor >= 0 and 0 <= self.rotation_prob <= 1,
             "scale_factor must be in [0, 1), rotation_factor >= 0, rotation_prob in [0, 1]"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def augment(self) -> AugmentSettings:
        return AugmentSettings(self.scale_factor, self.rotation_factor, self.rotation_prob, self.flip)

    def learning_rate(self, epoch: int) -> float:
        """Rate of 0-based ``epoch``: ``lr`` times ``lr_factor`` per step already reached (MultiStepLR)."""
        return self.lr * self.lr_factor ** sum(epoch >= s for s in self.lr_steps)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (lists, numbers, strings): loads with ``torch.load(weights_only=True)``."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training settings {', '.join(unknown)}")
        converted: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**converted)


@dataclass(frozen=True)
class RunOptions:
    """How a run executes; free to change on ``--resume`` (not part of what is learnt)."""

    device: str = "auto"  # auto, cpu, cuda, cuda:N
    workers: int = 2  # DataLoader worker processes reading and augmenting images (0: in the main process)
    amp: bool | None = None  # mixed precision (float16 autocast + GradScaler); None: on for CUDA, off for CPU
    progress: bool = True  # a progress bar per epoch with the running loss
    val_every: int = 1  # validate every N epochs (and after the last) when a validation set is given


@dataclass(frozen=True)
class EpochRecord:
    """One finished epoch (``epoch`` counts from 1)."""

    epoch: int
    lr: float
    loss: float
    seconds: float
    skipped: int
    metrics: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrainResult:
    """What a call to ``train`` did.

    Attributes:
        epochs: the epochs run by this call (a resumed call starts after the saved ones).
        step_losses: loss of every step run by this call, in order.
        checkpoint: the latest checkpoint.
        final: ``final.pth`` once the schedule is complete.
    """

    epochs: tuple[EpochRecord, ...]
    step_losses: tuple[float, ...]
    checkpoint: Path
    final: Path | None


def posetrack_metadata(input_size: tuple[int, int], keypoint_names: tuple[str, ...], norm: InputNorm) -> dict[str, Any]:
    """The ``posetrack`` entry ``load_pose_checkpoint`` reads: what the estimator needs besides weights."""
    return {
        "input_size": list(input_size),
        "keypoint_names": list(keypoint_names),
        "channel_order": norm.channel_order,
        "mean": list(norm.mean),
        "std": list(norm.std),
    }


@dataclass(frozen=True)
class SavedRun:
    """The training state in a ``checkpoint.pth``."""

    path: Path
    config: TrainConfig
    epoch: int
    model: PoseResNet
    norm: InputNorm
    keypoint_names: tuple[str, ...]
    optimizer: dict[str, Any]
    scaler: dict[str, Any]
    history: tuple[dict[str, Any], ...]


def read_saved_run(output: str | Path) -> SavedRun:
    """Load the training checkpoint of an output folder for ``--resume``.

    The weights load strictly, through the released-file loader.
    """
    path = Path(output) / CHECKPOINT_NAME
    if not path.is_file():
        raise PosetrackError(f"nothing to resume: {path} does not exist")
    raw = read_checkpoint(path)
    needed = ("train_config", "epoch", "optimizer", "posetrack")
    if not isinstance(raw, dict) or any(k not in raw for k in needed):
        raise PosetrackError(f"{path} is not a posetrack training checkpoint (no optimiser state to resume); "
                             "fine-tune from it with --init")
    try:
        config = TrainConfig.from_dict(dict(raw["train_config"]))
    except (TypeError, ValueError) as exc:
        raise PosetrackError(f"{path} holds training settings this version cannot use: {exc}") from None
    model, info = load_resnet_checkpoint(path)
    return SavedRun(
        path=path, config=config, epoch=int(raw["epoch"]), model=model.train(), norm=info.norm,
        keypoint_names=tuple(info.keypoint_names or ()), optimizer=raw["optimizer"], scaler=raw.get("scaler") or {},
        history=tuple(raw.get("history") or ()),
    )


def config_differences(saved: TrainConfig, asked: TrainConfig) -> list[str]:
    """``name: saved -> asked`` for each setting that differs."""
    a, b = saved.to_dict(), asked.to_dict()
    return [f"{k} {a[k]} -> {b[k]}" for k in a if a[k] != b[k]]


def _write_history(path: Path, history: list[dict[str, Any]]) -> None:
    metric_names = sorted({m for row in history for m in row.get("metrics", {})}, key=lambda m: (len(m), m))
    with atomic_write(path, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "lr", "loss", "seconds", "skipped", *metric_names])
        for row in history:
            metrics = row.get("metrics", {})
            writer.writerow([row["epoch"], f"{row['lr']:.3g}", f"{row['loss']:.6g}", f"{row['seconds']:.1f}",
                             row["skipped"], *(f"{metrics[m]:.4f}" if m in metrics else "" for m in metric_names)])


def train(
    config: TrainConfig,
    samples: PersonSamples,
    output: str | Path,
    *,
    options: RunOptions = RunOptions(),
    validation: CocoValidation | None = None,
    resume: SavedRun | None = None,
    log: Callable[[str], None] = print,
    warn: Callable[[str], None] = print,
) -> TrainResult:
    """Train (or continue training) a pose network on ``samples``, writing checkpoints to ``output``.

    Args:
        config: the recipe (see ``TrainConfig``); with ``resume`` it must equal the saved one.
        samples: annotated people (``data.load_keypoint_annotations``).
        output: folder for ``checkpoint.pth``, ``best.pth``, ``final.pth`` and ``history.csv``.
        options: device, workers, mixed precision, progress bar, validation interval.
        validation: a ``validate.CocoValidation`` to score COCO AP every ``options.val_every`` epochs.
        resume: the run saved in ``output/checkpoint.pth`` (``read_saved_run``) to continue from its
            epoch, weights, optimiser state and learning rate; without it, a folder that already
            holds a run is refused.
        log: receives one line per epoch (and the start-up lines).
        warn: receives warnings (examples skipped because their image could not be read).

    Raises:
        PosetrackError: unusable input or state; the loss became NaN or infinite.
        KeyboardInterrupt: passed on after saying which checkpoint is the last complete one.
    """
    output = Path(output)
    if validation is not None:
        validation.check_model(samples.keypoint_names)
    device = resolve_device(options.device)
    amp = device.type == "cuda" if options.amp is None else bool(options.amp)
    names = tuple(samples.keypoint_names)
    checkpoint = output / CHECKPOINT_NAME
    history: list[dict[str, Any]] = []
    start_epoch = 0

    if resume is not None:
        saved = resume
        diff = config_differences(saved.config, config)
        if diff:
            raise PosetrackError(
                f"--resume continues the saved run unchanged, but these settings differ: {'; '.join(diff)}"
            )
        if saved.keypoint_names != names:
            raise PosetrackError(f"{checkpoint} was trained on keypoints {', '.join(saved.keypoint_names[:3])}, ...; "
                                 f"the data has {', '.join(names[:3])}, ...")
        model, norm, start_epoch, history = saved.model, saved.norm, saved.epoch, list(saved.history)
        log(f"resuming {saved.path} after epoch {start_epoch} of {config.epochs}")
    else:
        if checkpoint.exists():
            raise PosetrackError(f"{output} already holds a training run ({checkpoint.name}); "
                                 "continue it with --resume or choose another --output")
        start = initial_model(depth=config.depth, deconv_channels=config.deconv_channels, init=config.init,
                              keypoint_names=names, seed=config.seed, progress=options.progress)
        model, norm = start.model, start.norm
        log(f"starting from {start.description}")
        for note in start.notes:
            log(note)
    output.mkdir(parents=True, exist_ok=True)

    stride = model.spec.stride
    dataset = TopDownDataset(samples, input_size=config.input_size, stride=stride, sigma=config.sigma,
                             padding=config.padding, channel_order=norm.channel_order, augment=config.augment,
                             seed=config.seed)
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest kernels (MSRA does)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate(start_epoch))
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    if resume is not None:
        optimizer.load_state_dict(saved.optimizer)
        if amp and saved.scaler:
            scaler.load_state_dict(saved.scaler)
    mean = torch.tensor(norm.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(norm.std, device=device).view(1, 3, 1, 1)
    layout = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    meta = posetrack_metadata(config.input_size, names, norm)
    best_ap = max((row["metrics"].get("AP", -1.0) for row in history if row.get("metrics")), default=-1.0)
    step_losses: list[float] = []
    records: list[EpochRecord] = []
    if start_epoch == 0:
        log(f"training on {len(samples)} people from {len(samples.image_paths)} images, {config.epochs} epochs of "
            f"{math.ceil(len(samples) / config.batch_size)} steps, on {device}{' with mixed precision' if amp else ''}")

    try:
        for epoch in range(start_epoch, config.epochs):
            lr = config.learning_rate(epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            dataset.set_epoch(epoch)
            # This epoch's shuffle, the same on resume.
            order = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
            # Workers are forked afresh each epoch so they see set_epoch. (No cv2.setNumThreads in them: after
            # a fork it can wait forever on the parent's OpenCV thread pool.)
            loader = torch.utils.data.DataLoader(
                dataset, batch_size=config.batch_size, shuffle=True, generator=order, num_workers=options.workers,
                pin_memory=device.type == "cuda",
            )
            model.train()
            began, total, count, skipped, first_bad = time.perf_counter(), 0.0, 0, 0, None
            bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", unit="step", leave=False,
                       disable=not options.progress, dynamic_ncols=True)
            batch: dict[str, torch.Tensor]  # TopDownDataset's examples, collated (tqdm's bar is untyped)
            for step, batch in enumerate(bar):
                x = batch["image"].to(device, non_blocking=True).float().div_(255.0)  # (B, 3, H, W)
                x = ((x - mean) / std).contiguous(memory_format=layout)
                target = batch["target"].to(device, non_blocking=True)  # (B, K, h, w)
                weight = batch["weight"].to(device, non_blocking=True)  # (B, K)
                with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                    heatmaps = model(x)  # (B, K, h, w)
                loss = joints_mse_loss(heatmaps, target, weight)
                if not torch.isfinite(loss):
                    done = f"{checkpoint} (epoch {history[-1]['epoch']})" if history else "none yet"
                    raise PosetrackError(
                        f"training diverged: the loss became {loss.item()} at epoch {epoch + 1} step {step + 1}; "
                        f"lower --lr (last complete checkpoint: {done})"
                    )
                optimizer.zero_grad(set_to_none=True)
                torch.autograd.backward(scaler.scale(loss))
                scaler.step(optimizer)
                scaler.update()

                value = loss.item()
                step_losses.append(value)
                total, count = total + value * len(x), count + len(x)
                bad = ~batch["ok"]
                if bad.any():
                    skipped += int(bad.sum())
                    first_bad = first_bad or samples.image_path(int(batch["index"][bad][0]))
                bar.set_postfix_str(f"loss {total / count:.3e} lr {lr:.0e}", refresh=False)
            bar.close()
            if skipped:
                warn(f"epoch {epoch + 1}: skipped {skipped} example(s) whose image could not be read "
                     f"(first: {first_bad})")

            metrics: dict[str, float] = {}
            due = (epoch + 1) % max(1, options.val_every) == 0 or epoch + 1 == config.epochs
            if validation is not None and due:
                metrics = validation.evaluate(model, norm=norm, keypoint_names=names, input_size=config.input_size,
                                              device=device, progress=options.progress)
                model.train()
            record = EpochRecord(epoch + 1, lr, total / max(count, 1), time.perf_counter() - began, skipped, metrics)
            records.append(record)
            history.append(record.to_dict())

            save_msra_checkpoint(
                model, checkpoint, posetrack=meta, epoch=epoch + 1, train_config=config.to_dict(),
                optimizer=optimizer.state_dict(), scaler=scaler.state_dict(), history=history,
            )
            if "AP" in metrics and metrics["AP"] > best_ap:
                best_ap = metrics["AP"]
                save_msra_checkpoint(model, output / BEST_NAME, posetrack=meta, epoch=epoch + 1,
                                     train_config=config.to_dict(), metrics=metrics)
            _write_history(output / HISTORY_NAME, history)
            shown = "".join(f"  {k} {v:.3f}" for k, v in metrics.items() if k in ("AP", "AP50"))
            log(f"epoch {epoch + 1}/{config.epochs}  loss {record.loss:.4e}  lr {lr:.0e}  "
                f"{record.seconds:.0f} s{shown}  -> {checkpoint}")
    except KeyboardInterrupt:
        last = history[-1]["epoch"] if history else 0
        where = f"{checkpoint} (epoch {last})" if checkpoint.exists() else "none yet"
        log(f"interrupted; the last complete checkpoint is {where}; continue with --resume")
        raise

    final = None
    if history and history[-1]["epoch"] == config.epochs:
        final = output / FINAL_NAME
        save_msra_checkpoint(model, final, posetrack=meta, epoch=config.epochs, train_config=config.to_dict(),
                             history=history)
        log(f"done: {final}")
    return TrainResult(tuple(records), tuple(step_losses), checkpoint, final)
