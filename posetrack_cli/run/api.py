"""posetrack as a library: load the models once, then track videos frame by frame or into files.

Two entry points, for the two things users hold:

* :class:`VideoTracker` finds, estimates and tracks every person in videos with posetrack's own
  models (what ``posetrack run`` does);
* :class:`~posetrack_cli.run.frame_tracker.FrameTracker` gives ids to poses from any estimator, one
  frame at a time (what ``posetrack track`` does).

Options are the command line's, named after the config fields they set (``joint_threshold=0.3``,
``detect_every=5``, ``pose_weights="my.pth"``, ``render=True``): see
:func:`~posetrack_cli.run.settings.spec_from_options`. Options that cannot go together raise
:class:`~posetrack_cli.core.errors.OptionsError` with the command line's words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.types import Detections, Frame, Poses, TrackedFrame
from posetrack_cli.io.live import live_kind, open_live
from posetrack_cli.io.video import open_source
from posetrack_cli.run.batch import ItemResult
from posetrack_cli.run.job import LoadedRun, load_run
from posetrack_cli.run.pipeline import GivenPoses, Source
from posetrack_cli.run.runner import run_request
from posetrack_cli.run.settings import RunRequest, RunSpec, spec_from_options


class _Boxes:
    """Boxes by frame index from a mapping (frames without an entry have nobody)."""

    def __init__(self, boxes: Mapping[int, Detections]) -> None:
        self._boxes = boxes

    def get(self, index: int) -> Detections:
        return self._boxes.get(index, Detections.empty())


class VideoTracker:
    """Detector, pose network, flow and tracker settings, loaded once; build with :meth:`load`.

    Example:
        >>> from posetrack_cli import VideoTracker
        >>> tracker = VideoTracker.load(preset="fast", device="cpu")  # doctest: +SKIP
        >>> for tracked in tracker.track("clip.mp4"):  # doctest: +SKIP
        ...     print(tracked.frame_index, tracked.track_ids, tracked.poses.keypoints.shape)
        0 [0 1] (2, 17, 2)
        >>> rows = tracker.run("videos/", out="results")  # doctest: +SKIP
    """

    def __init__(self, loaded: LoadedRun) -> None:
        self._loaded = loaded

    @classmethod
    def load(cls, preset: str = "fast", **options: Any) -> VideoTracker:
        """Load the models of ``preset`` with ``options`` (the command line's, by field name;
        ``allow_download=False`` is ``--offline``). Raises PosetrackError for a missing model file,
        OptionsError for options that cannot go together, ValueError for a value out of range.

        The pose network and the flow load here; the person detector only when a video without
        given boxes first needs it (``track(video)`` without ``boxes=``, or ``run`` without a
        ``detections`` file), so a caller who gives every video's boxes never needs its file, and
        no detector is loaded for them.

        Example:
            >>> tracker = VideoTracker.load("realtime", joint_threshold=0.3, allow_download=False)  # doctest: +SKIP
            >>> mine = VideoTracker.load(pose_weights="my_pose.pth", allow_download=False)  # doctest: +SKIP
            >>> frames = list(mine.track("clip.mp4", boxes=my_boxes_by_frame))  # doctest: +SKIP
        """
        return cls(load_run(spec_from_options(preset=preset, **options), detector=False))

    @property
    def spec(self) -> RunSpec:
        """What was loaded, and the settings every video runs with."""
        return self._loaded.spec

    @property
    def info(self) -> dict[str, Any]:
        """What the JSON files of this run record: models, settings, speed settings, resume key
        (``settings["detector_runtime"]`` is None until the person detector has loaded)."""
        return dict(self._loaded.info)

    def _detector_loaded(self) -> LoadedRun:
        """The loaded run, with its person detector loaded first if it has not been yet."""
        self._loaded = self._loaded.with_detector()
        return self._loaded

    def track_frames(self, source: str | Path | int, *, boxes: Mapping[int, Detections] | None = None,
                     poses: Mapping[int, Poses] | None = None) -> Iterator[tuple[Frame, TrackedFrame]]:
        """Each decoded frame of a video file or frame folder with its tracked people.

        ``source`` may also be a live source (:func:`posetrack_cli.io.live.live_kind`): a webcam
        index (``0``), a stream URL, or ``"-"`` for raw frames on stdin, read with the loaded
        options ``reconnect`` and ``pipe_size``; frames come until it ends or is lost for good.

        ``boxes`` (your detector's person boxes by frame index) replace the detector; ``poses``
        (your estimator's poses by frame index) replace detector and pose network: posetrack then
        only tracks them. Frames without an entry have nobody.

        Example:
            >>> for frame, tracked in tracker.track_frames("clip.mp4"):  # doctest: +SKIP
            ...     print(frame.image.shape, tracked.track_ids)
            (720, 1280, 3) [0 1]
        """
        if boxes is not None and poses is not None:
            raise PosetrackError("give boxes or poses, not both")
        loaded = self._loaded if boxes is not None or poses is not None else self._detector_loaded()
        spec, text = loaded.spec, str(source)
        opened: Source = (open_live(text, reconnect=spec.live.reconnect, pipe_size=spec.live.pipe_size)
                          if live_kind(text) is not None else open_source(Path(text), image_fps=spec.image_fps))
        given = GivenPoses(dict(poses), loaded.pipeline.num_keypoints) if poses is not None else None
        try:
            yield from loaded.pipeline.track(opened, boxes=_Boxes(boxes) if boxes is not None else None,
                                                   poses=given)
        finally:
            opened.close()

    def track(self, source: str | Path | int, *, boxes: Mapping[int, Detections] | None = None,
              poses: Mapping[int, Poses] | None = None) -> Iterator[TrackedFrame]:
        """Each frame's tracked people (:meth:`track_frames` without the images).

        Example:
            >>> ids = {t.frame_index: t.track_ids.tolist() for t in tracker.track("clip.mp4")}  # doctest: +SKIP
        """
        for _, tracked in self.track_frames(source, boxes=boxes, poses=poses):
            yield tracked

    def run(self, *sources: str | Path, out: str | Path = "posetrack-out", overwrite: bool = False,
            recursive: bool = False) -> list[ItemResult]:
        """Write the files ``posetrack run`` writes for ``sources`` into ``out``; returns the summary
        rows (a bad input is a ``failed`` row, the others still run). The same checks as the command
        line's come first: options that need a live source, outputs that would replace an input.

        Example:
            >>> [(row.input, row.status, row.tracks) for row in tracker.run("a.mp4", out="results")]  # doctest: +SKIP
            [('a.mp4', 'ok', 2)]
        """
        request = RunRequest(tuple(str(s) for s in sources), self._loaded.spec)
        return run_request(request, Path(out), overwrite=overwrite, recursive=recursive,
                           loaded=self._detector_loaded()).rows
