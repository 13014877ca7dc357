"""``posetrack run`` on a batch: the checks before any work, one executor, the summary.

What can be checked before models load is checked first (an output that would replace an input,
an output folder that cannot be written); a run that ends up writing nothing leaves no folder.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

from posetrack_cli.core.files import prepare_output_dir, refuse_overwriting_inputs, remove_if_empty
from posetrack_cli.io.outputs import OutputSet
from posetrack_cli.run.batch import BatchRecord, InputItem, ItemResult, LocalExecutor, format_summary
from posetrack_cli.run.run_job import RunSpec, load_run


def run_batch_command(spec: RunSpec, items: list[InputItem], missing: list[ItemResult], out: Path, *,
                      overwrite: bool, progress: bool, executor: str, ray_options: tuple[Any, ...],
                      echo: Callable[[str], None], warn: Callable[[str], None]) -> None:
    """Run ``items`` into ``out`` with the local or the Ray executor, print the summary table,
    and exit 1 if any input failed."""
    from tqdm import tqdm

    planned = [p for item in items
               for p in OutputSet(out, item.name, render=spec.render, images=spec.images).paths().values()]
    inputs = [item.path for item in items] + [p for p in (spec.models.detections,) if p is not None]
    refuse_overwriting_inputs(planned, inputs)
    if spec.models.detections is not None:  # a boxes file that cannot serve the video fails before models load
        from posetrack_cli.io.coco_results import check_input

        check_input(items[0].path, detections=spec.models.detections, image_fps=spec.image_fps,
                    score_threshold=spec.pipeline.detection_threshold)  # its warnings come once, when it runs
    if executor == "local":  # every model file present, or every missing one named in one line
        from posetrack_cli.models.weights import require_files

        require_files(spec.models.model_files(), allow_download=spec.allow_download, progress=progress)
    created = prepare_output_dir(out)
    batch_bar = tqdm(total=len(items), unit="video", desc="batch", position=0, disable=not progress or len(items) < 2)

    def video_bar(name: str, total: int | None) -> Any:
        return tqdm(total=total, unit="frame", desc=name, position=1 if len(items) > 1 else 0, leave=False,
                    disable=not progress)

    def after(result: ItemResult) -> None:
        if result.status == "failed" and result.frames == 0:
            batch_bar.total -= 1  # failed at once: it says nothing about how long the others take
            batch_bar.refresh()
        else:
            batch_bar.update()
        if result.status in ("failed", "partial"):
            word = "error" if result.status == "failed" else "warning"
            tqdm.write(f"posetrack: {word}: {result.input}: {result.reason}", file=sys.stderr)

    try:
        if executor == "local":
            loaded = load_run(spec).into(out, progress=video_bar)  # models load once for the whole batch
            results = LocalExecutor(loaded, overwrite=overwrite, on_item=after).run(BatchRecord(out, items, missing))
        else:
            from posetrack_cli.run.ray_executor import RayOptions, run_on_ray

            address, workers, gpus_per_worker, retries = ray_options
            options = RayOptions(address=address, workers=workers, gpus_per_worker=gpus_per_worker,
                                 retries=RayOptions.retries if retries is None else retries)
            results = run_on_ray(spec, items, out, options, overwrite=overwrite, earlier=missing, on_item=after,
                                 log=lambda line: tqdm.write(f"posetrack: {line}", file=sys.stderr))
    finally:
        batch_bar.close()
        if created:
            remove_if_empty(out)
    echo(format_summary(results))
    echo(f"outputs and summary.csv in {out}")
    if any(r.status == "failed" for r in results):
        raise SystemExit(1)
