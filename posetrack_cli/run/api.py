"""posetrack as a library: load the models once, then track videos frame by frame or into files.

    >>> from posetrack_cli import PoseTrack
    >>> tracker = PoseTrack.load(preset="fast", device="auto")       # models load once
    >>> for tracked in tracker.track("clip.mp4"):                    # one TrackedFrame per frame
    ...     tracked.track_ids, tracked.poses.keypoints                # (N,), (N, 17, 2) frame pixels
    >>> tracker.run("videos/", out="results")                         # the files `posetrack run` writes

Options are the command line's, named after the config fields they set (``joint_threshold=0.3``,
``detect_every=5``, ``pose_weights="my.pth"``, ``render=True``): see :mod:`posetrack_cli.run.settings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.files import prepare_output_dir, refuse_overwriting_inputs
from posetrack_cli.core.types import Detections, Frame, Poses, TrackedFrame
from posetrack_cli.io.live import live_kind, open_live
from posetrack_cli.io.video import open_source
from posetrack_cli.run.batch import BatchRecord, ItemResult, LocalExecutor, expand_sources
from posetrack_cli.run.pipeline import Source
from posetrack_cli.run.run_job import LoadedRun, load_run, spec_from_options
from posetrack_cli.run.track_job import GivenPoses


class _Boxes:
    """Boxes by frame index from a mapping (frames without an entry have nobody)."""

    def __init__(self, boxes: Mapping[int, Detections]) -> None:
        self._boxes = boxes

    def get(self, index: int) -> Detections:
        return self._boxes.get(index, Detections.empty())


class PoseTrack:
    """A loaded run: detector, pose network, flow and tracker settings. Build with :meth:`load`."""

    def __init__(self, loaded: LoadedRun) -> None:
        self._loaded = loaded

    @classmethod
    def load(cls, preset: str = "fast", **options: Any) -> PoseTrack:
        """Load the models of ``preset`` with ``options`` (the command line's, by field name;
        ``allow_download=False`` is ``--offline``). Raises PosetrackError for a missing model file."""
        return cls(load_run(spec_from_options(preset=preset, **options)))

    @property
    def info(self) -> dict[str, Any]:
        """What the JSON files of this run record: models, settings, speed settings, resume key."""
        return dict(self._loaded.info)

    def track_frames(self, source: str | Path | int, *, boxes: Mapping[int, Detections] | None = None,
                     poses: Mapping[int, Poses] | None = None) -> Iterator[tuple[Frame, TrackedFrame]]:
        """Each decoded frame of a video file or frame folder with its tracked people.

        ``source`` may also be a live source (:func:`posetrack_cli.io.live.live_kind`): a webcam
        index (``0``), a stream URL, or ``"-"`` for raw frames on stdin, read with the loaded
        options ``reconnect`` and ``pipe_size``; frames come until it ends or is lost for good.

        ``boxes`` (your detector's person boxes by frame index) replace the detector; ``poses``
        (your estimator's poses by frame index) replace detector and pose network: posetrack then
        only tracks them. Frames without an entry have nobody.
        """
        if boxes is not None and poses is not None:
            raise PosetrackError("give boxes or poses, not both")
        spec, text = self._loaded.spec, str(source)
        opened: Source = (open_live(text, reconnect=spec.live.reconnect, pipe_size=spec.live.pipe_size)
                          if live_kind(text) is not None else open_source(Path(text), image_fps=spec.image_fps))
        given = GivenPoses(dict(poses), self._loaded.pipeline.num_keypoints) if poses is not None else None
        try:
            yield from self._loaded.pipeline.track(opened, boxes=_Boxes(boxes) if boxes is not None else None,
                                                   poses=given)
        finally:
            opened.close()

    def track(self, source: str | Path | int, *, boxes: Mapping[int, Detections] | None = None,
              poses: Mapping[int, Poses] | None = None) -> Iterator[TrackedFrame]:
        """Each frame's tracked people (:meth:`track_frames` without the images)."""
        for _, tracked in self.track_frames(source, boxes=boxes, poses=poses):
            yield tracked

    def run(self, *sources: str | Path, out: str | Path = "posetrack-out", overwrite: bool = False,
            recursive: bool = False) -> list[ItemResult]:
        """Write the files ``posetrack run`` writes for ``sources`` into ``out``; returns the summary
        rows (a bad input is a ``failed`` row, the others still run)."""
        out = Path(out)
        items, missing = expand_sources([Path(s) for s in sources], recursive, exclude=out)
        loaded = self._loaded.into(out)
        refuse_overwriting_inputs([p for item in items for p in loaded.outputs(item).paths().values()],
                                  [item.path for item in items])
        prepare_output_dir(out)
        return LocalExecutor(loaded, overwrite=overwrite).run(BatchRecord(out, items, missing))
