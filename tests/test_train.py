"""``posetrack train``: a small network learns rendered figures, checkpoints load in the estimator,
an interrupted run resumes exactly, bad input is one line or a counted warning."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from posetrack_cli.cli import main
from posetrack_cli.core.errors import CheckpointError, PosetrackError
from posetrack_cli.core.geometry import boxes_to_windows
from posetrack_cli.core.keypoints import COCO_KEYPOINTS
from posetrack_cli.core.types import Detections
from posetrack_cli.inference.estimator import PoseEstimator
from posetrack_cli.models.checkpoints import load_pose_checkpoint
from posetrack_cli.models.pose_resnet import PoseResNet, PoseResNetSpec, pose_resnet
from posetrack_cli.training import loop as training_loop
from posetrack_cli.training.data import load_keypoint_annotations
from posetrack_cli.training.dataset import TopDownDataset
from posetrack_cli.training.initialise import initial_model
from posetrack_cli.training.loop import RunOptions, TrainConfig, read_saved_run, train
from posetrack_cli.training.targets import joints_mse_loss

from helpers import trust_files, write_checkpoint
from synthetic_people import render_dataset

CPU = RunOptions(device="cpu", workers=0, progress=False)


def tiny(**changes: Any) -> TrainConfig:
    """ResNet-18 at 64x64 from scratch, small batches: seconds per epoch on a laptop CPU."""
    settings: dict[str, Any] = dict(depth=18, input_size=(64, 64), init="scratch", epochs=2, lr_steps=(1,),
                                    batch_size=4)
    return TrainConfig(**{**settings, **changes})


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_dataset(tmp_path_factory.mktemp("figures"), images=5, size=(96, 80), seed=1)


def quiet(_: str) -> None:
    pass


@pytest.fixture(autouse=True)
def one_thread() -> None:
    """One intra-op thread: on a shared CPU, two OpenMP threads that wait on each other slow a step down
    several-fold whenever another process holds a core; one thread degrades gracefully."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def training_set_loss(model: torch.nn.Module, samples, input_size: tuple[int, int]) -> float:
    """The training objective on the plain (un-augmented) crops of every sample, in eval mode."""
    data = TopDownDataset(samples, input_size=input_size, stride=4)
    batch = torch.utils.data.default_collate([data[i] for i in range(len(data))])
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = (batch["image"].float() / 255 - mean) / std
    with torch.no_grad():
        return joints_mse_loss(model.eval()(x), batch["target"], batch["weight"]).item()


@pytest.mark.slow
def test_small_network_learns_rendered_figures_and_its_checkpoint_runs_in_the_estimator(
        trained_on_figures) -> None:  # noqa: ANN001
    # The session's run (conftest): 24 rendered images, 20 epochs, flip on, no scale or rotation.
    trained = trained_on_figures
    samples, config, result, run = trained.samples, trained.config, trained.result, trained.run
    assert trained.skipped.total == 0 and len(samples) >= 30
    assert len(result.step_losses) >= 100 and result.final == run / "final.pth"

    with torch.random.fork_rng():
        torch.manual_seed(config.seed)  # the network the run started from
        untrained = PoseResNet(PoseResNetSpec(18, 17, config.deconv_channels))
    model, info = load_pose_checkpoint(result.checkpoint)  # strict=True, weights_only=True
    before, after = training_set_loss(untrained, samples, (64, 64)), training_set_loss(model, samples, (64, 64))
    assert before / after >= 5, f"loss {before:.2e} -> {after:.2e}"
    assert info.layout == "msra" and info.input_size == (64, 64) and info.keypoint_names == COCO_KEYPOINTS
    assert info.norm.channel_order == "rgb"

    # Through the same estimator 'posetrack run' uses (flip test on), from the file.
    estimator = PoseEstimator.from_checkpoint(result.checkpoint, device="cpu")
    import cv2

    errors = []
    for image in range(len(samples.image_paths)):
        rows = np.flatnonzero(samples.image_index == image)
        frame = cv2.imread(str(samples.image_paths[image]))
        poses = estimator.estimate(frame, Detections(samples.boxes[rows], np.ones(len(rows))))
        _, sizes = boxes_to_windows(samples.boxes[rows], 1.0)
        heatmap_pixel = sizes[:, 0] / 16  # frame pixels per heatmap pixel (64 / stride 4 = 16 columns)
        err = np.linalg.norm(poses.keypoints - samples.keypoints[rows], axis=2) / heatmap_pixel[:, None]
        errors.append(err[samples.labelled[rows]])
    errors = np.concatenate(errors)
    assert np.mean(errors <= 2) >= 0.8, f"{np.mean(errors <= 2):.0%} of keypoints within 2 heatmap pixels"
    seconds = sum(e.seconds for e in result.epochs) / len(result.step_losses)
    print(f"\n{len(result.step_losses)} steps, {seconds:.2f} s/step; "
          f"loss {before:.2e} -> {after:.2e} ({before / after:.1f}x); "
          f"{np.mean(errors <= 2):.1%} of {len(errors)} keypoints within 2 heatmap px, "
          f"{np.mean(errors <= 1):.1%} within 1")

    with open(run / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 21))
    assert float(rows[-1]["lr"]) == pytest.approx(1e-4) and float(rows[-1]["loss"]) < float(rows[0]["loss"])


def _interrupt_after(monkeypatch: pytest.MonkeyPatch, examples: int) -> None:
    """Ctrl-C while the ``examples + 1``-th example is being loaded."""
    original = TopDownDataset.__getitem__
    seen = {"n": 0}

    def getitem(self: TopDownDataset, index: int) -> dict:
        seen["n"] += 1
        if seen["n"] > examples:
            raise KeyboardInterrupt
        return original(self, index)

    monkeypatch.setattr(TopDownDataset, "__getitem__", getitem)


def test_interrupted_run_resumes_at_the_saved_epoch_and_learning_rate(small_set: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    samples, _ = load_keypoint_annotations([small_set])
    config = tiny()
    straight = train(config, samples, tmp_path / "straight", options=CPU, log=quiet, warn=quiet)

    lines: list[str] = []
    with monkeypatch.context() as m:
        _interrupt_after(m, len(samples) + 3)  # epoch 1 completes, epoch 2 is cut short
        with pytest.raises(KeyboardInterrupt):
            train(config, samples, tmp_path / "cut", options=CPU, log=lines.append, warn=quiet)
    assert "last complete checkpoint is" in lines[-1] and "(epoch 1)" in lines[-1]
    assert sorted(p.name for p in (tmp_path / "cut").iterdir()) == ["checkpoint.pth", "history.csv"]
    raw = torch.load(tmp_path / "cut" / "checkpoint.pth", weights_only=True)  # plain tensors and containers only
    assert raw["epoch"] == 1 and raw["train_config"]["lr_steps"] == [1] and "state" in raw["optimizer"]
    load_pose_checkpoint(tmp_path / "cut" / "checkpoint.pth")  # and it is a model 'posetrack run' loads

    saved = read_saved_run(tmp_path / "cut")
    with pytest.raises(PosetrackError, match=r"settings differ: lr 0.001 -> 0.01"):
        train(tiny(lr=0.01), samples, tmp_path / "cut", options=CPU, resume=saved, log=quiet, warn=quiet)
    with pytest.raises(PosetrackError, match="already holds a training run"):
        train(config, samples, tmp_path / "cut", options=CPU, log=quiet, warn=quiet)
    resumed = train(config, samples, tmp_path / "cut", options=CPU, resume=saved, log=lines.append, warn=quiet)
    assert [(e.epoch, e.lr) for e in resumed.epochs] == [(2, pytest.approx(1e-4))]
    assert resumed.final is not None and len(resumed.step_losses) == len(straight.step_losses) // 2
    # The same schedule, optimiser state and examples: the same network as the run that never stopped.
    a, b = torch.load(straight.final, weights_only=True), torch.load(resumed.final, weights_only=True)
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert [h["epoch"] for h in b["history"]] == [1, 2]


@pytest.mark.slow
def test_mixed_precision_path_trains_and_resumes_its_loss_scale(small_set: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """autocast(float16) + GradScaler, the CUDA path, exercised on the CPU."""
    samples, _ = load_keypoint_annotations([small_set])
    steps_per_epoch = -(-len(samples) // 8)
    amp = RunOptions(device="cpu", workers=0, progress=False, amp=True)
    with monkeypatch.context() as m:
        _interrupt_after(m, len(samples))
        with pytest.raises(KeyboardInterrupt):
            train(tiny(batch_size=8), samples, tmp_path, options=amp, log=quiet, warn=quiet)
    first = torch.load(tmp_path / "checkpoint.pth", weights_only=True)["scaler"]
    assert first["scale"] > 0 and first["_growth_tracker"] == steps_per_epoch
    result = train(tiny(batch_size=8), samples, tmp_path, options=amp, resume=read_saved_run(tmp_path),
                   log=quiet, warn=quiet)
    assert all(np.isfinite(result.step_losses))
    assert torch.load(tmp_path / "final.pth", weights_only=True)["epoch"] == 2
    scaler = torch.load(tmp_path / "checkpoint.pth", weights_only=True)["scaler"]
    assert scaler["_growth_tracker"] == 2 * steps_per_epoch


def test_unreadable_image_mid_run_is_counted_not_fatal(small_set: Path, tmp_path: Path) -> None:
    samples, _ = load_keypoint_annotations([small_set])
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    samples = dataclasses.replace(samples, image_paths=(broken, *samples.image_paths[1:]))
    warnings: list[str] = []
    result = train(tiny(epochs=1), samples, tmp_path / "run", options=CPU, log=quiet, warn=warnings.append)
    lost = int((samples.image_index == 0).sum())
    assert warnings == [f"epoch 1: skipped {lost} example(s) whose image could not be read (first: {broken})"]
    assert result.epochs[0].skipped == lost and np.isfinite(result.epochs[0].loss)


def test_a_diverging_loss_stops_with_one_line_and_keeps_the_last_checkpoint(small_set: Path, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    samples, _ = load_keypoint_annotations([small_set])
    steps_per_epoch = -(-len(samples) // 4)
    calls = {"n": 0}

    def loss_that_explodes_in_epoch_2(*args: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        loss = joints_mse_loss(*args)
        return loss * float("nan") if calls["n"] > steps_per_epoch else loss

    monkeypatch.setattr(training_loop, "joints_mse_loss", loss_that_explodes_in_epoch_2)
    diverged = r"training diverged: the loss became nan at epoch 2 step 1; lower --lr"
    with pytest.raises(PosetrackError, match=diverged) as info:
        train(tiny(), samples, tmp_path, options=CPU, log=quiet, warn=quiet)
    assert f"last complete checkpoint: {tmp_path / 'checkpoint.pth'} (epoch 1)" in str(info.value)
    assert torch.load(tmp_path / "checkpoint.pth", weights_only=True)["epoch"] == 1


def test_imagenet_start_loads_every_backbone_tensor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.models import resnet18, resnet34

    from posetrack_cli.models import weights as W

    entry = W.load_manifest()["resnet18_imagenet"]
    W.weights_dir().mkdir(parents=True)
    reference = resnet18().state_dict()
    torch.save(reference, W.local_path(entry))  # stands in for the download
    trust_files(monkeypatch, W.local_path(entry))
    start = initial_model(depth=18, deconv_channels=(256, 256, 256), init="imagenet", keypoint_names=COCO_KEYPOINTS)
    state = start.model.state_dict()
    for key, value in reference.items():
        if not key.startswith("fc."):
            torch.testing.assert_close(state[key], value, msg=key)
    assert start.norm.channel_order == "rgb" and "ImageNet ResNet-18" in start.description
    torch.save(resnet34().state_dict(), W.local_path(entry))
    trust_files(monkeypatch, W.local_path(entry))
    with pytest.raises(CheckpointError, match=r"does not fit a ResNet-18 backbone \(layer1"):
        initial_model(depth=18, deconv_channels=(256, 256, 256), init="imagenet", keypoint_names=COCO_KEYPOINTS)


@pytest.mark.parametrize("layout, order", [("mmpose-0.x", "rgb"), ("msra", "bgr")])
def test_fine_tuning_starts_from_the_checkpoint_and_keeps_its_input_convention(
    small_set: Path, tmp_path: Path, layout: str, order: str
) -> None:
    released = write_checkpoint(pose_resnet(depth=18), tmp_path / f"pose_resnet_18_64x64_{layout}.pth", layout)
    out = tmp_path / "tuned"
    result = CliRunner().invoke(main, [
        "train", str(small_set), "--init", str(released), "--epochs", "1", "--lr", "1e-9", "--batch-size", "4",
        "--device", "cpu", "--workers", "0", "--no-progress", "-o", str(out),
    ])
    assert result.exit_code == 0, result.output
    assert f"starting from {layout} checkpoint" in result.stdout
    model, info = load_pose_checkpoint(out / "final.pth")
    assert info.input_size == (64, 64) and info.spec.depth == 18  # the checkpoint's, as nothing else was asked
    assert info.norm.channel_order == order  # the first layer learnt this plane order; keep feeding it
    original, _ = load_pose_checkpoint(released)
    torch.testing.assert_close(model.final_layer.weight, original.final_layer.weight, atol=1e-6, rtol=0)

    renamed = initial_model(depth=18, deconv_channels=(256, 256, 256), init=str(released),
                            keypoint_names=["nose", "head_bottom", "head_top", *COCO_KEYPOINTS[3:]])
    assert renamed.notes == (
        "fine-tuning renames 2 heatmap channel(s): left_eye -> head_bottom, right_eye -> head_top",
    )
    mismatch = CliRunner().invoke(
        main, ["train", str(small_set), "--init", str(released), "--depth", "50", "-o", str(tmp_path / "x")]
    )
    assert mismatch.exit_code == 1 and mismatch.stderr.count("\n") == 1
    assert "is a ResNet-18" in mismatch.stderr and "leave --depth out" in mismatch.stderr


def test_cli_trains_warns_about_missing_images_and_guards_the_output(small_set: Path, tmp_path: Path) -> None:
    doc = json.loads(small_set.read_text())
    doc["images"][0]["file_name"] = "gone.png"
    annotations = small_set.parent / "with_missing.json"
    annotations.write_text(json.dumps(doc))
    out = tmp_path / "run"
    args = ["train", str(annotations), "--init", "scratch", "--depth", "18", "--input-size", "64x64", "--epochs", "1",
            "--batch-size", "4", "--device", "cpu", "--workers", "1", "--no-progress", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    missing = sum(1 for a in doc["annotations"] if a["image_id"] == doc["images"][0]["id"])
    assert result.stderr.strip().splitlines() == [
        f"posetrack: warning: skipped {missing} annotation{'s' * (missing != 1)}: "
        f"{missing} whose image file is missing "
        f"(first: {small_set.parent / 'gone.png'})"
    ]
    assert "epoch 1/1" in result.stdout and (out / "final.pth").is_file()
    inspect = CliRunner().invoke(main, ["weights", "inspect", str(out / "checkpoint.pth")])
    assert "layout:      msra" in inspect.stdout and "64x64" in inspect.stdout and "RGB" in inspect.stdout

    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1 and "already holds a training run" in again.stderr and again.stderr.count("\n") == 1
    changed = CliRunner().invoke(main, [*args, "--resume", "--epochs", "3"])
    assert changed.exit_code == 1 and "settings differ: epochs 1 -> 3" in changed.stderr
    done = CliRunner().invoke(main, [*args, "--resume"])  # nothing left to do, and it says so by finishing
    assert done.exit_code == 0 and "resuming" in done.stdout


@pytest.mark.parametrize(
    "content, message",
    [
        ("[]", "a COCO results file"),
        (json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "person"}]}),
         "no category lists 'keypoints'"),
    ],
)
def test_cli_refuses_files_that_are_not_coco_keypoints_in_one_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = CliRunner().invoke(main, ["train", str(path), "--init", "scratch", "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("posetrack: error:") and message in lines[0]
    assert not (tmp_path / "out").exists()


def test_help_shows_examples() -> None:
    result = CliRunner().invoke(main, ["train", "--help"])
    assert result.exit_code == 0
    for text in ("Examples:", "posetrack train", "--init pose_resnet50_256x192", "--resume", "--val"):
        assert text in result.stdout


@pytest.mark.slow
def test_one_epoch_on_the_coco_sample_with_validation(shared_data: Path, tmp_path: Path) -> None:
    gt = shared_data / "coco_sample" / "test_coco.json"
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "train", str(gt), "--val", str(gt), "--init", "scratch", "--depth", "18", "--input-size", "64x64",
        "--epochs", "1", "--batch-size", "4", "--device", "cpu", "--workers", "0", "--no-progress", "-o", str(out),
    ])
    assert result.exit_code == 0, result.output
    assert "read 12 people from 4 images" in result.stdout and "validation: 12 people" in result.stdout
    assert "skipped 2 annotations: 2 without labelled keypoints" in result.stderr
    with open(out / "history.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert 0.0 <= float(row["AP"]) <= 1.0 and np.isfinite(float(row["loss"]))
    best = torch.load(out / "best.pth", weights_only=True)
    assert best["epoch"] == 1 and best["metrics"]["AP"] == pytest.approx(float(row["AP"]), abs=1e-4)
    assert (out / "final.pth").is_file()
    PoseEstimator.from_checkpoint(out / "final.pth", device="cpu")
