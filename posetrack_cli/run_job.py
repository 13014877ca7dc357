"""One input of ``posetrack run``: open it, run the pipeline into a writer, commit, report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from posetrack_cli.batch import InputItem, ItemResult, fingerprint
from posetrack_cli.detector import FileDetections
from posetrack_cli.errors import PosetrackError
from posetrack_cli.outputs import TrackWriter
from posetrack_cli.pipeline import Pipeline
from posetrack_cli.render import draw_tracks
from posetrack_cli.video import ImageFolderSource, open_source


def make_processor(
    pipeline: Pipeline,
    out_dir: Path,
    *,
    keypoint_names: list[str],
    info: dict[str, Any],
    render: bool,
    image_fps: float,
    detections_file: Path | None = None,
    progress: Callable[[str, int | None], Any] | None = None,
) -> Callable[[InputItem], ItemResult]:
    """A function that processes one input into ``out_dir`` and returns its summary row.

    ``info`` (models, settings, settings_key) goes into every JSON; ``progress(name, total)``
    returns a per-video bar with ``update()``, ``set_postfix()`` and ``close()``.
    """
    threshold = pipeline.config.joint_threshold

    def draw(image, frame):  # noqa: ANN001, ANN202 - the writer's callback
        return draw_tracks(image, frame, keypoint_threshold=threshold)

    def process(item: InputItem) -> ItemResult:
        started = time.perf_counter()
        source = open_source(item.path, image_fps=image_fps)
        bar = progress(item.path.name, source.frame_count) if progress is not None else None
        try:
            boxes = None
            if detections_file is not None:
                names = [p.name for p in source.files] if isinstance(source, ImageFolderSource) else None
                boxes = FileDetections(detections_file, names, pipeline.config.detection_threshold)
            fps = source.fps if source.fps > 0 else image_fps
            with TrackWriter(out_dir, item.name, keypoint_names, keypoint_threshold=threshold,
                             render=(fps, draw) if render else None) as writer:

                def on_frame(_: int, people: int) -> None:
                    if bar is not None:
                        bar.update()
                        bar.set_postfix(people=people, refresh=False)

                result = pipeline.run(source, writer, boxes=boxes, on_frame=on_frame)
                if boxes is not None and boxes.last_frame >= result.frames:
                    raise PosetrackError(
                        f"{detections_file.name} has boxes for frame {boxes.last_frame} but {item.path} has {result.frames} frames"
                    )
                writer.commit({
                    **info, "source": str(item.path), "input_fingerprint": fingerprint(item.path),
                    "frames": result.frames, "partial": result.partial is not None, "partial_reason": result.partial,
                    "stage_seconds": {k: round(v, 3) for k, v in result.times.as_dict().items()},
                })
        finally:
            source.close()
            if bar is not None:
                bar.close()
        seconds = time.perf_counter() - started
        status = "partial" if result.partial else "ok"
        return ItemResult(str(item.path), item.name, status, result.partial or "", result.frames, seconds,
                          result.frames / seconds if seconds > 0 else 0.0, result.tracks)

    return process
