"""Top-down pose estimation on one frame: boxes -> affine crops -> one batched forward -> keypoints.

Paper section 2 at inference time, as the released models were evaluated: each person box is
padded to the model's aspect ratio and enlarged 1.25x, cropped by an affine warp, all crops of the
frame go through the network together, and with the flip test the mirrored crops ride in the same
batch. Heatmaps are decoded (arg-max + quarter-pixel shift) and mapped back to frame pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.geometry import apply_affine, boxes_to_windows, crop_transforms, invert_affine
from posetrack_cli.core.keypoints import flip_permutation
from posetrack_cli.core.types import Detections, Poses
from posetrack_cli.inference.config import EstimatorConfig
from posetrack_cli.models.checkpoints import CheckpointInfo, InputNorm, load_pose_checkpoint
from posetrack_cli.models.crop_input import CropInput
from posetrack_cli.models.crops import warp_crops_cv2, warp_crops_torch
from posetrack_cli.models.device import resolve_device
from posetrack_cli.models.heatmaps import decode_heatmaps, merge_flip
from posetrack_cli.runtime.cache import state_dict_sha256
from posetrack_cli.runtime.convert import crops_for_openvino
from posetrack_cli.runtime.engines import OpenVINORuntime, make_runtime
from posetrack_cli.runtime.quantize import Agreement


def _stride(model: torch.nn.Module) -> float:
    """Input pixels per heatmap pixel of a pose network (its spec's; 4 for the paper's head)."""
    spec = getattr(model, "spec", None)
    return float(getattr(spec, "stride", 4))


class PoseEstimator:
    """Runs a SimpleBaseline network top-down on the person boxes of a frame.

    Args:
        model: network mapping ``(N, 3, H, W)`` normalised crops to ``(N, K, H/s, W/s)`` heatmaps.
        norm: channel order, mean and std the network was trained with.
        keypoint_names: names of the K channels (their left/right pairs drive the flip test).
        config: inference settings.

    Example:
        A released checkpoint, its input size and keypoints read from the file (needs the file):

        >>> from posetrack_cli import PoseEstimator
        >>> path = "weights/res50_coco_256x192-ec54d7f3_20200709.pth"
        >>> estimator = PoseEstimator.from_checkpoint(path, device="cpu")  # doctest: +SKIP

        Any network that maps crops to heatmaps of a quarter of their size runs the same way; an
        untrained one shows the shapes, one pose per box:

        >>> import numpy as np
        >>> import torch
        >>> from posetrack_cli import COCO_KEYPOINTS, Detections, EstimatorConfig
        >>> from posetrack_cli.models.checkpoints import InputNorm
        >>> network = torch.nn.Conv2d(3, 17, kernel_size=4, stride=4)  # (N, 3, 256, 192) -> (N, 17, 64, 48)
        >>> estimator = PoseEstimator(network, norm=InputNorm("bgr"), keypoint_names=COCO_KEYPOINTS,
        ...                           config=EstimatorConfig(device="cpu", runtime="torch", precision="fp32"))
        >>> people = Detections([[100, 40, 160, 200], [200, 50, 250, 190]], [0.9, 0.7])
        >>> poses = estimator.estimate(np.zeros((240, 320, 3), np.uint8), people)
        >>> poses.keypoints.shape, poses.keypoint_scores.shape, poses.boxes.tolist()
        ((2, 17, 2), (2, 17), [[100.0, 40.0, 160.0, 200.0], [200.0, 50.0, 250.0, 190.0]])
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        norm: InputNorm,
        keypoint_names: Sequence[str],
        config: EstimatorConfig = EstimatorConfig(),
    ) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        if config.half and self.device.type != "cuda":
            raise PosetrackError(
                "half precision needs a CUDA device (float16 convolutions are slow or missing on a CPU)")
        self.norm = norm
        self.keypoint_names = tuple(keypoint_names)
        stride = _stride(model)
        network: torch.nn.Module = CropInput(model, norm)  # takes the crops as cut; normalises them itself
        # The digest of weights and normalisation keys the converted-model cache; taken before folding.
        sha256 = state_dict_sha256(network) if self.device.type == "cpu" and config.runtime != "torch" else None
        # BatchNorm is folded into the convolutions where the network runs in torch or is converted
        # (make_runtime), not here: a warm OpenVINO start reads the converted model from the cache.
        self.runtime = make_runtime(network, runtime=config.runtime, precision=config.precision, device=self.device,
                                    input_size=config.input_size, half=config.half, compile=config.compile,
                                    weights_sha256=sha256, stride=stride)
        self._permutation = torch.as_tensor(flip_permutation(self.keypoint_names), device=self.device)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        *,
        input_size: tuple[int, int] | None = None,
        keypoint_names: Sequence[str] | None = None,
        norm: InputNorm | None = None,
        **settings: Any,  # EstimatorConfig's other fields, checked by name there
    ) -> PoseEstimator:
        """Load any supported checkpoint layout strictly and wrap it.

        ``input_size`` and ``keypoint_names`` default to what the file (or its name) records; a file
        that records neither must be told, rather than guessed at.
        """
        model, info = load_pose_checkpoint(path)
        return cls.from_loaded(model, info, input_size=input_size, keypoint_names=keypoint_names, norm=norm, **settings)

    @classmethod
    def from_loaded(
        cls,
        model: torch.nn.Module,
        info: CheckpointInfo,
        *,
        input_size: tuple[int, int] | None = None,
        keypoint_names: Sequence[str] | None = None,
        norm: InputNorm | None = None,
        **settings: Any,  # EstimatorConfig's other fields, checked by name there
    ) -> PoseEstimator:
        size = input_size or info.input_size
        if size is None:
            raise PosetrackError(
                f"{info.path.name} does not say its input size; pass it (for example --input-size 192x256)"
            )
        names = keypoint_names or info.keypoint_names
        if names is None:
            raise PosetrackError(
                f"{info.path.name} has {info.spec.num_keypoints} keypoints, which have no standard names; pass them"
            )
        if len(names) != info.spec.num_keypoints:
            raise PosetrackError(f"{len(names)} keypoint names given for a {info.spec.num_keypoints}-keypoint model")
        width, height = size
        config = EstimatorConfig(input_size=(width, height), **settings)
        return cls(model, norm=norm or info.norm, keypoint_names=names, config=config)

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    @torch.inference_mode()
    def crops(self, frame: np.ndarray, boxes: np.ndarray) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """Affine crops of all the person boxes of a frame, on the model's device.

        One ``cv2.warpAffine`` per person on a CPU, one batched ``grid_sample`` on a GPU (see
        :mod:`posetrack_cli.models.crops`; both sample the same pixels).

        Args:
            frame: ``(H, W, 3)`` uint8 BGR.
            boxes: ``(N, 4)`` xyxy.

        Returns:
            crops ``(N, 3, h, w)`` BGR on the 0..255 scale (uint8 on a CPU, float32 on a GPU), window
            centres ``(N, 2)`` and sizes ``(N, 2)``.
        """
        size = self.config.input_size
        centers, sizes = boxes_to_windows(boxes, size[0] / size[1], self.config.padding)
        to_crop = crop_transforms(centers, sizes, size)  # (N, 2, 3): frame pixel -> crop pixel
        if self.device.type == "cpu":
            return warp_crops_cv2(frame, to_crop, size), centers, sizes
        return warp_crops_torch(frame, invert_affine(to_crop), size, self.device), centers, sizes

    @property
    def runtime_name(self) -> str:
        """``torch`` or ``openvino``: what runs the network."""
        return self.runtime.name

    @property
    def precision(self) -> str:
        """``fp32``, ``fp16``, ``bf16`` or ``int8``: the number format the network runs in."""
        return self.runtime.precision

    def runtime_state(self) -> Any:
        """The runtime's state a run resumed from a checkpoint restores (int8 calibration), or None."""
        return self.runtime.state() if isinstance(self.runtime, OpenVINORuntime) else None

    def restore_runtime_state(self, state: Any) -> None:
        """Restore a :meth:`runtime_state`; PosetrackError when this runtime cannot take it."""
        if isinstance(self.runtime, OpenVINORuntime):
            self.runtime.restore(state)
        elif state is not None:
            raise PosetrackError("the checkpoint was made with another runtime of the pose network")

    def runtime_info(self) -> dict[str, object]:
        """Runtime, its version, precision (and for int8 the calibration and its agreement), for the JSON."""
        return self.runtime.describe()

    @torch.inference_mode()
    def network_inputs(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """What the OpenVINO network is fed for these people, flipped crops included: uint8 ``(N or 2N, H, W, 3)``.

        int8 calibration samples these, so it sees the inputs the run will give it.
        """
        x = self.crops(frame, boxes)[0]
        if self.config.flip_test:
            x = torch.cat([x, x.flip(3)])
        return crops_for_openvino(x)

    def calibrate(self, inputs: np.ndarray, *, source: str) -> Agreement:
        """Quantize an int8 OpenVINO runtime on ``inputs`` (see :meth:`network_inputs`) and cache it."""
        if not isinstance(self.runtime, OpenVINORuntime) or self.runtime.precision != "int8":
            raise PosetrackError("calibration is for --runtime openvino --precision int8")
        return self.runtime.calibrate(inputs, source=source)

    @torch.inference_mode()
    def heatmaps(self, crops: torch.Tensor) -> torch.Tensor:
        """Network heatmaps ``(N, K, h, w)`` for BGR crops ``(N, 3, H, W)`` on the 0..255 scale (see
        :meth:`crops`), flip test included."""
        outputs = []
        step = max(1, self.config.batch_size // 2) if self.config.flip_test else self.config.batch_size
        for start in range(0, len(crops), step):
            x = crops[start:start + step]
            if self.config.flip_test:
                out = self.runtime(torch.cat([x, x.flip(3)]))  # (2n, K, h, w)
                n = x.shape[0]
                outputs.append(merge_flip(out[:n], out[n:], self._permutation))
            else:
                outputs.append(self.runtime(x))
        return torch.cat(outputs)

    def estimate(self, frame: np.ndarray, detections: Detections) -> Poses:
        """Poses of the people in ``detections`` on ``frame`` (``(H, W, 3)`` uint8 BGR).

        Returns one pose per box, in frame pixels, with per-keypoint heatmap maxima as scores; the
        person score is the box score (the pipeline may rescore).
        """
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame must be (H, W, 3) uint8 BGR, got {frame.shape} {frame.dtype}")
        if len(detections) == 0:
            return Poses.empty(self.num_keypoints)
        crops, centers, sizes = self.crops(frame, detections.boxes)
        heat = self.heatmaps(crops)  # (N, K, h, w)
        coords, scores = decode_heatmaps(heat)
        hm_h, hm_w = heat.shape[2:]
        to_frame = invert_affine(crop_transforms(centers, sizes, (hm_w, hm_h)))
        keypoints = apply_affine(coords.cpu().numpy(), to_frame)
        return Poses(keypoints, scores.cpu().numpy(), detections.boxes, detections.scores)
