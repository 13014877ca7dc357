"""One input's output files -- the JSON, the CSV and the overlay video -- one writer per format.

JSON (one file per video, COCO/PoseTrack18-like)::

    info:        command, source, models, settings, speed, outputs, frames, partial, version, ...
    images:      id (= frame index), frame_id, file_name (frame folders only), timestamp, width, height
    annotations: id, image_id, track_id, category_id, bbox [x, y, w, h], area, score,
                 keypoints [x, y, v] * K, keypoint_scores [K], num_keypoints, source, match
    categories:  one "person" category with keypoint names and a 0-indexed skeleton

``v`` is 2 where the keypoint score reaches the keypoint threshold recorded in ``info.settings``
and 1 below it (located, not confidently seen), as COCO's visible / labelled-but-hidden flags.
``source`` says where the person's box came from (``detector``, ``flow`` or ``given``) and
``match`` how the tracker gave the id (``live``, ``lost`` or ``new``), where known.

CSV: one row per person per frame: ``frame, time_s, track_id, x1, y1, x2, y2, score, source, match``
then ``<name>_x, <name>_y, <name>_score`` for each keypoint.

Each writer streams to a temporary file of its own (memory does not grow with the video) and
:class:`TrackOutputs` renames them into place together on ``commit``, the JSON last: its presence
marks a finished input. :class:`OutputSet` knows an input's file names, answers whether they are
finished (the resume rule asks it) and whether any of them is a file posetrack did not write.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, Any, Callable, Sequence

import numpy as np

from posetrack_cli.core.errors import PosetrackError
from posetrack_cli.core.files import OutputWriteError, read_json, stale_temp_files, temp_path
from posetrack_cli.core.keypoints import COCO_SKELETON
from posetrack_cli.core.paper import JOINT_THRESHOLD
from posetrack_cli.core.types import Frame, Poses, TrackedFrame
from posetrack_cli.core.version import __version__

# Draws one frame's people on a copy of its image: ``draw(image, tracked) -> image``.
Draw = Callable[[np.ndarray, TrackedFrame], np.ndarray]

CSV_COLUMNS = ("frame", "time_s", "track_id", "x1", "y1", "x2", "y2", "score", "source", "match")


def _round(values: np.ndarray, digits: int = 2) -> list[float]:
    return [round(float(v), digits) for v in values]


def image_entry(frame: Frame) -> dict[str, Any]:
    """The ``images`` entry of one decoded frame."""
    image: dict[str, Any] = {"id": frame.index, "frame_id": frame.index}
    if frame.file_name is not None:  # frame folders; video frames are known by index
        image["file_name"] = frame.file_name
    height, width = frame.image.shape[:2]
    return {**image, "timestamp": round(float(frame.timestamp), 6), "width": int(width), "height": int(height)}


def annotation_entries(frame: TrackedFrame, first_id: int, keypoint_threshold: float) -> list[dict[str, Any]]:
    """The ``annotations`` entries of one frame's tracked poses, numbered from ``first_id``."""
    poses = frame.poses
    entries = []
    for i in range(len(poses)):
        x1, y1, x2, y2 = (float(v) for v in poses.boxes[i])
        kscores = poses.keypoint_scores[i]
        vis = np.where(kscores >= keypoint_threshold, 2, 1)
        flat: list[float] = []
        for (x, y), v in zip(poses.keypoints[i], vis):
            flat += [round(float(x), 2), round(float(y), 2), int(v)]
        entry = {
            "id": first_id + i, "image_id": frame.frame_index, "track_id": int(frame.track_ids[i]),
            "category_id": 1, "bbox": _round(np.array([x1, y1, x2 - x1, y2 - y1])),
            "area": round((x2 - x1) * (y2 - y1), 2), "score": round(float(poses.scores[i]), 4),
            "keypoints": flat, "keypoint_scores": _round(kscores, 4), "num_keypoints": int((vis == 2).sum()),
        }
        if frame.sources is not None:
            entry["source"] = str(frame.sources[i])
        if frame.matches is not None:
            entry["match"] = str(frame.matches[i])
        entries.append(entry)
    return entries


def category_entry(keypoint_names: Sequence[str]) -> dict[str, Any]:
    """The single ``person`` category with keypoint names and a 0-indexed skeleton."""
    skeleton = COCO_SKELETON if len(keypoint_names) == 17 else ()
    return {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(keypoint_names),
            "skeleton": [list(pair) for pair in skeleton]}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


class _Part:
    """An append-only file one writer streams to: a temporary name beside the output, or, for a
    resumable run, a fixed name in its work folder, which outlives the process and is cut back to
    the size recorded at the last checkpoint when the run resumes."""

    def __init__(self, output: Path, name: str, work: Path | None, size: int | None) -> None:
        self.output = output
        self.path = work / name if work is not None else temp_path(output, f".{name}.partial")
        self.resumable = work is not None
        try:
            if size is None:
                self.file: IO[str] = open(self.path, "w", newline="")
            else:  # resume: what was written after the checkpoint goes
                os.truncate(self.path, size)
                self.file = open(self.path, "a", newline="")
        except OSError as exc:
            raise OutputWriteError(output, exc) from None

    def write(self, text: str) -> None:
        try:
            self.file.write(text)
        except OSError as exc:
            raise OutputWriteError(self.output, exc) from None

    def durable(self) -> int:
        """Flush the part to the disk and return its size."""
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            return self.file.tell()
        except OSError as exc:
            raise OutputWriteError(self.output, exc) from None

    def close(self) -> None:
        try:
            self.file.close()
        except OSError:
            pass

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


class _Writer:
    """Streams one output file to parts; ``finish`` makes its complete temporary file, ``abort``
    removes what is not needed to resume."""

    suffix = ".partial"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temp = temp_path(path, self.suffix)

    def _guard(self, exc: OSError) -> OutputWriteError:
        return OutputWriteError(self.path, exc)

    def close(self) -> None:
        """Close handles without raising (an abort after a write error must still clean up)."""

    def position(self) -> dict[str, Any]:
        """Where the writer is, durable on disk (a resumed run starts its writer there)."""
        return {}

    def abort(self) -> None:
        self.close()
        self.temp.unlink(missing_ok=True)


class JsonWriter(_Writer):
    """The JSON document: ``images`` and annotations streamed to two parts, put together at the end.

    With ``work`` the parts live there under fixed names (a resumable run), and ``resume`` (a
    :meth:`position`) continues them from a checkpoint.
    """

    def __init__(self, path: Path, keypoint_names: Sequence[str], keypoint_threshold: float, *,
                 work: Path | None = None, resume: dict[str, Any] | None = None) -> None:
        super().__init__(path)
        self.keypoint_names = list(keypoint_names)
        self.threshold = keypoint_threshold
        self.frames = int(resume["frames"]) if resume else 0
        self.count = int(resume["count"]) if resume else 0
        self._images = _Part(path, "images", work, resume["images"] if resume else None)
        try:
            self._fragments = _Part(path, "annotations", work, resume["annotations"] if resume else None)
        except BaseException:
            self._images.remove()
            raise

    def add(self, frame: Frame, tracked: TrackedFrame) -> None:
        self._images.write(("," if self.frames else "") + _dumps(image_entry(frame)))
        self.frames += 1
        for entry in annotation_entries(tracked, self.count, self.threshold):
            self._fragments.write(("," if self.count else "") + _dumps(entry))
            self.count += 1

    def position(self) -> dict[str, Any]:
        return {"frames": self.frames, "count": self.count, "images": self._images.durable(),
                "annotations": self._fragments.durable()}

    def finish(self, info: dict[str, Any]) -> None:
        self._images.close()
        self._fragments.close()
        try:
            self._write_document(self.temp, info)
        except OSError as exc:
            raise self._guard(exc) from None
        for part in (self._images, self._fragments):
            if not part.resumable:  # a resumable run's parts go with its work folder
                part.remove()

    def remap(self, id_map: dict[int, int]) -> None:
        """Rewrite every annotation's ``track_id`` through ``id_map`` (offline stitching)."""
        part = self._fragments
        try:
            part.file.close()
            with open(part.path) as f:
                entries = json.loads("[" + f.read() + "]")
            for entry in entries:
                entry["track_id"] = id_map.get(entry["track_id"], entry["track_id"])
            with open(part.path, "w") as f:
                f.write(",".join(_dumps(entry) for entry in entries))
            part.file = open(part.path, "a")
        except OSError as exc:
            raise self._guard(exc) from None

    def snapshot(self, info: dict[str, Any]) -> None:
        """The document of the frames so far under the final name, atomically; writing goes on."""
        temp = temp_path(self.path)
        try:
            self._images.file.flush()
            self._fragments.file.flush()
            self._write_document(temp, info)
            os.replace(temp, self.path)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise self._guard(exc) from None

    def _write_document(self, path: Path, info: dict[str, Any]) -> None:
        settings = {**info.get("settings", {}), "keypoint_threshold": self.threshold}
        head = {**info, "settings": settings, "version": __version__}
        with open(path, "w") as f:
            f.write('{"info":' + _dumps(head) + ',"images":[')
            with open(self._images.path) as images:
                shutil.copyfileobj(images, f)
            f.write('],"annotations":[')
            with open(self._fragments.path) as fragments:
                shutil.copyfileobj(fragments, f)
            f.write('],"categories":' + _dumps([category_entry(self.keypoint_names)]) + "}")
            f.flush()
            os.fsync(f.fileno())

    def close(self) -> None:
        self._images.close()
        self._fragments.close()

    def abort(self) -> None:
        super().abort()
        for part in (self._images, self._fragments):
            if not part.resumable:
                part.remove()


class CsvWriter(_Writer):
    """One row per person per frame, in frame order then track id order, streamed to a part that
    becomes the file itself."""

    def __init__(self, path: Path, keypoint_names: Sequence[str], *, work: Path | None = None,
                 resume: dict[str, Any] | None = None) -> None:
        super().__init__(path)
        self._part = _Part(path, "rows", work, resume["rows"] if resume else None)
        self.temp = self._part.path
        self._csv = csv.writer(self._part.file)
        if resume is None:
            try:
                self._csv.writerow(csv_header(keypoint_names))
            except OSError as exc:
                self._part.remove()
                raise self._guard(exc) from None

    def add(self, frame: Frame, tracked: TrackedFrame) -> None:
        try:
            self._csv.writerows(csv_rows(tracked))
        except OSError as exc:
            raise self._guard(exc) from None

    def position(self) -> dict[str, Any]:
        return {"rows": self._part.durable()}

    def finish(self, info: dict[str, Any]) -> None:
        self._part.durable()
        self._part.close()

    def remap(self, id_map: dict[int, int]) -> None:
        """Rewrite every row's ``track_id`` through ``id_map`` (offline stitching), keeping each
        frame's rows in track id order."""
        try:
            self._part.file.close()
            with open(self.temp, newline="") as f:
                reader = csv.reader(f)
                header, rows = next(reader), list(reader)
            for row in rows:
                row[2] = str(id_map.get(int(row[2]), int(row[2])))
            rows.sort(key=lambda row: (int(row[0]), int(row[2])))  # stable: frame order, then id order
            with open(self.temp, "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(header)
                writer.writerows(rows)
            self._part.file = open(self.temp, "a", newline="")
            self._csv = csv.writer(self._part.file)
        except OSError as exc:
            raise self._guard(exc) from None

    def snapshot(self, info: dict[str, Any]) -> None:
        """The rows so far under the final name, atomically; writing goes on."""
        temp = temp_path(self.path)
        try:
            self._part.file.flush()
            shutil.copyfile(self.temp, temp)
            os.replace(temp, self.path)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise self._guard(exc) from None

    def close(self) -> None:
        self._part.close()

    def abort(self) -> None:
        if self._part.resumable:
            self._part.close()
        else:
            self._part.remove()

    @staticmethod
    def agrees(path: Path, document: dict[str, Any]) -> bool:
        """Whether the CSV at ``path`` has one row per annotation of ``document``."""
        with open(path, newline="") as f:
            rows = sum(1 for _ in csv.reader(f)) - 1
        return rows == len(document["annotations"])


# The overlay's codec: H.264 (x264, in PyAV's FFmpeg) in mp4, which browsers play (the report's
# <video>; MPEG-4 part 2, OpenCV's "mp4v", they refuse) as well as every desktop player, at about
# 0.15 bits a pixel. x264's "veryfast" preset keeps up with the tracker, where its default "medium"
# would hold a CPU run back; no B-frames, so each checkpoint's segment starts at decode time 0 and
# the segments join in order. H.264 in 4:2:0 needs an even width and height: an odd frame gets its
# last column or row repeated once.
OVERLAY_CODEC, OVERLAY_BITS_PER_PIXEL, OVERLAY_PRESET = "libx264", 0.15, "veryfast"


class OverlayWriter(_Writer):
    """The overlay video: each frame drawn by ``draw`` and encoded as mp4 with PyAV, which reports
    a write that fails (a full disk) at the frame it failed on.

    With ``work`` (a resumable run) the video is written in segments there, one per stretch
    between checkpoints, and joined without re-encoding at the end; a resumed run keeps the
    segments its checkpoint lists.
    """

    suffix = ".partial.mp4"

    def __init__(self, path: Path, fps: float, draw: Draw, *, work: Path | None = None,
                 resume: dict[str, Any] | None = None) -> None:
        super().__init__(path)
        self.fps, self.draw, self.work = fps, draw, work
        self.segments: list[list[Any]] = [list(s) for s in resume["segments"]] if resume else []  # [name, frames]
        if work is not None:
            listed = {name for name, _ in self.segments}
            for stale in work.glob("overlay-*.mp4"):  # written after the checkpoint
                if stale.name not in listed:
                    stale.unlink()
        self._open: Any = None  # (container, stream, path, frames) of the segment being written

    def _start(self, width: int, height: int) -> None:
        import av

        target = self.temp if self.work is None else self.work / f"overlay-{len(self.segments) + 1:05d}.mp4"
        try:
            container = av.open(str(target), "w", format="mp4")
            stream = container.add_stream(OVERLAY_CODEC, rate=Fraction(self.fps).limit_denominator(10_000))
            assert isinstance(stream, av.VideoStream)
            stream.width, stream.height, stream.pix_fmt = width + width % 2, height + height % 2, "yuv420p"
            stream.bit_rate = max(500_000, int(OVERLAY_BITS_PER_PIXEL * width * height * self.fps))
            stream.options = {"preset": OVERLAY_PRESET, "bf": "0"}  # no B-frames: segments join in order
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise OutputWriteError(self.path, _os_error(exc)) from None
        self._open = [container, stream, target, 0]

    def add(self, frame: Frame, tracked: TrackedFrame) -> None:
        import av

        image = frame.image
        if self._open is None:
            self._start(image.shape[1], image.shape[0])
        container, stream = self._open[0], self._open[1]
        picture = self.draw(image, tracked)
        if picture.shape[0] % 2 or picture.shape[1] % 2:
            picture = np.pad(picture, ((0, picture.shape[0] % 2), (0, picture.shape[1] % 2), (0, 0)), mode="edge")
        drawn = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="bgr24")
        drawn.pts = self._open[3]
        try:
            for packet in stream.encode(drawn):
                container.mux(packet)
        except (av.FFmpegError, OSError) as exc:
            raise OutputWriteError(self.path, _os_error(exc)) from None
        self._open[3] += 1

    def _end_segment(self) -> None:
        """Flush the encoder and close the segment being written (its frames are then on disk)."""
        import av

        if self._open is None:
            return
        container, stream, target, frames = self._open
        self._open = None
        try:
            for packet in stream.encode(None):
                container.mux(packet)
            container.close()
        except (av.FFmpegError, OSError) as exc:
            raise OutputWriteError(self.path, _os_error(exc)) from None
        if self.work is not None:
            with open(target, "rb") as f:
                os.fsync(f.fileno())
            self.segments.append([target.name, frames])

    def position(self) -> dict[str, Any]:
        self._end_segment()  # the next frame starts a new segment
        return {"segments": [list(s) for s in self.segments]}

    def finish(self, info: dict[str, Any]) -> None:
        self._end_segment()
        if self.work is not None and self.segments:
            assert self.work is not None
            _join_segments([self.work / name for name, _ in self.segments], self.temp, self.path)
        if not self.temp.exists():
            raise PosetrackError(f"the overlay video {self.path} was not written (no frames)")

    def close(self) -> None:
        if self._open is not None:
            try:
                self._open[0].close()
            except Exception:  # noqa: BLE001 - closing after a failed write must not raise again
                pass
            self._open = None

    def abort(self) -> None:
        if self._open is not None and self.work is not None:
            self._open[2].unlink(missing_ok=True)  # the segment after the checkpoint is not kept
        super().abort()

    @staticmethod
    def agrees(path: Path, document: dict[str, Any]) -> bool:
        """Whether the video at ``path`` has as many frames as ``document``."""
        import cv2

        cap = cv2.VideoCapture(str(path))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else -1
        cap.release()
        return bool(count == document["info"]["frames"])


def _os_error(exc: Exception) -> OSError:
    """An FFmpeg error as the OSError it stands for (its errno kept: a full disk is ENOSPC)."""
    if isinstance(exc, OSError):
        return exc
    return OSError(getattr(exc, "errno", None), getattr(exc, "strerror", None) or str(exc))


def _join_segments(segments: list[Path], target: Path, output: Path) -> None:
    """Put mp4 segments of one stream (same codec, size and rate) end to end in ``target``,
    without re-encoding: each segment's packets are shifted past the previous one's."""
    import av

    try:
        with av.open(str(target), "w", format="mp4") as joined:
            stream: Any = None
            offset = 0
            for segment in segments:
                with av.open(str(segment)) as part:
                    source = part.streams.video[0]
                    if stream is None:
                        stream = joined.add_stream_from_template(source)
                    end = offset
                    for packet in part.demux(source):
                        if packet.dts is None:  # the demuxer's flush packet
                            continue
                        packet.pts += offset
                        packet.dts += offset
                        end = max(end, packet.pts + (packet.duration or 0))
                        packet.stream = stream
                        joined.mux(packet)
                    offset = end
    except (av.FFmpegError, OSError) as exc:
        target.unlink(missing_ok=True)
        raise OutputWriteError(output, _os_error(exc)) from None


def csv_header(keypoint_names: Sequence[str]) -> list[str]:
    cols = list(CSV_COLUMNS)
    for name in keypoint_names:
        cols += [f"{name}_x", f"{name}_y", f"{name}_score"]
    return cols


def csv_rows(frame: TrackedFrame) -> list[list[Any]]:
    """The CSV rows of one frame's people, in track id order."""
    rows = []
    p = frame.poses
    for i in np.argsort(frame.track_ids, kind="stable"):
        row: list[Any] = [frame.frame_index, round(frame.timestamp, 6), int(frame.track_ids[i])]
        row += _round(p.boxes[i]) + [round(float(p.scores[i]), 4)]
        row += ["" if frame.sources is None else frame.sources[i], "" if frame.matches is None else frame.matches[i]]
        for (x, y), s in zip(p.keypoints[i], p.keypoint_scores[i]):
            row += [round(float(x), 2), round(float(y), 2), round(float(s), 4)]
        rows.append(row)
    return rows


@dataclass(frozen=True)
class OutputSet:
    """The output files of one input in one folder: ``<name><suffix>.json``, ``.csv`` and, when
    rendering, ``.mp4``. ``posetrack track`` uses the suffix ``.tracks`` so its files never meet
    ``posetrack run``'s."""

    out_dir: Path
    name: str
    render: bool = False
    suffix: str = ""
    images: bool = False  # ``run --images``: one COCO-results list, ``<name>.coco.json``
    # Files made from the finished track file (``run --format`` exports, ``--report``): a finished
    # input that lacks one gets it from its track file on a rerun, without being tracked again.
    derived: tuple[Path, ...] = ()

    def missing_derived(self) -> list[Path]:
        """The :attr:`derived` files that do not exist yet."""
        return [p for p in self.derived if not p.is_file()]

    def paths(self) -> dict[str, Path]:
        if self.images:
            return {"coco": self.out_dir / f"{self.name}{self.suffix}.coco.json"}
        kinds = ("json", "csv", "mp4") if self.render else ("json", "csv")
        return {kind: self.out_dir / f"{self.name}{self.suffix}.{kind}" for kind in kinds}

    def finished(self, key: str, fingerprint: str) -> dict[str, Any] | None:
        """The finished JSON document when every output is complete and was made from the same
        input (``fingerprint``) with the same models and settings (``key``), else None. An output
        a run was stopped in (``info.interrupted``) is not finished: a rerun resumes it."""
        if self.images:  # results lists record no settings: always redone
            return None
        paths = self.paths()
        try:
            doc: dict[str, Any] = read_json(paths["json"])
            info = doc["info"]
            if info.get("settings_key") != key or info.get("input_fingerprint") != fingerprint:
                return None
            if info.get("interrupted"):
                return None
            if len(doc["images"]) != info["frames"] or not CsvWriter.agrees(paths["csv"], doc):
                return None
            if self.render and not OverlayWriter.agrees(paths["mp4"], doc):
                return None
        except (PosetrackError, OSError, ValueError, KeyError, TypeError):
            return None
        return doc

    def interrupted(self, key: str, fingerprint: str) -> dict[str, Any] | None:
        """The ``info`` of the JSON a run of this input (``fingerprint``, ``key``) was stopped in, or None."""
        if self.images:
            return None
        try:
            info = read_json(self.paths()["json"])["info"]
        except (PosetrackError, OSError, ValueError, KeyError, TypeError):
            return None
        same = info.get("settings_key") == key and info.get("input_fingerprint") == fingerprint
        return info if isinstance(info, dict) and same and info.get("interrupted") else None

    def foreign(self) -> list[Path]:
        """Existing files under this set's names that posetrack did not write: a JSON is ours when
        it is posetrack's (``info.command`` and ``info.version``), another file when our JSON of
        the same name lists it in ``info.outputs``."""
        paths = self.paths()
        existing = [p for p in paths.values() if p.exists()]
        if not existing or self.images:
            return [p for p in existing if not _our_results(p)]
        listed: set[str] = set()
        try:
            info = read_json(paths["json"])["info"]
            if isinstance(info, dict) and "command" in info and "version" in info:
                listed = {paths["json"].name, *info.get("outputs", [paths["csv"].name])}
        except (PosetrackError, OSError, ValueError, KeyError, TypeError):
            pass
        return [p for p in existing if p.name not in listed]

    def remove_stale_temps(self) -> None:
        """Remove temporary files a killed process left for these outputs (hold the lock)."""
        for path in stale_temp_files(self.paths().values()):
            path.unlink(missing_ok=True)

    def open(self, keypoint_names: Sequence[str], *, keypoint_threshold: float = JOINT_THRESHOLD,
             fps: float = 0.0, draw: Draw | None = None, work: Path | None = None,
             resume: dict[str, Any] | None = None) -> TrackOutputs:
        """Writers for these outputs (the overlay needs ``fps`` and ``draw`` when rendering); with
        ``work``, resumable ones that stream there, continued from ``resume`` (a position)."""
        return TrackOutputs(self, keypoint_names, keypoint_threshold=keypoint_threshold, fps=fps, draw=draw,
                            work=work, resume=resume)


def _our_results(path: Path) -> bool:
    """Whether a ``.coco.json`` is one posetrack wrote: a results list whose entries keep ``file_name``."""
    try:
        doc = read_json(path)
    except (PosetrackError, OSError, ValueError):
        return False
    return isinstance(doc, list) and all(isinstance(e, dict) and {"file_name", "image_id", "keypoints"} <= e.keys()
                                         for e in doc)


class TrackOutputs:
    """The writers of one input, fed together and committed together.

    Use as a context manager: leaving it by an exception removes every temporary file.
    """

    def __init__(self, outputs: OutputSet, keypoint_names: Sequence[str], *, keypoint_threshold: float,
                 fps: float = 0.0, draw: Draw | None = None, work: Path | None = None,
                 resume: dict[str, Any] | None = None) -> None:
        paths = outputs.paths()
        self.paths = paths
        self._writers: dict[str, Any] = {}
        given = resume or {}
        try:
            self._writers["json"] = JsonWriter(paths["json"], keypoint_names, keypoint_threshold, work=work,
                                               resume=given.get("json"))
            self._writers["csv"] = CsvWriter(paths["csv"], keypoint_names, work=work, resume=given.get("csv"))
            if outputs.render:
                if draw is None or fps <= 0:
                    raise ValueError("rendering needs a frame rate and a draw function")
                self._writers["mp4"] = OverlayWriter(paths["mp4"], fps, draw, work=work, resume=given.get("mp4"))
        except BaseException:
            self.abort()
            raise

    def position(self) -> dict[str, Any]:
        """Every writer's position, flushed to disk: what a resumed run continues from (``resume``)."""
        return {kind: writer.position() for kind, writer in self._writers.items()}

    @property
    def annotations(self) -> int:
        """Annotations written so far."""
        return int(self._writers["json"].count)

    def add(self, frame: Frame, tracked: TrackedFrame) -> None:
        """Record one decoded frame and its tracked people (maybe none)."""
        for writer in self._writers.values():
            writer.add(frame, tracked)

    def commit(self, info: dict[str, Any], id_map: dict[int, int] | None = None) -> dict[str, Path]:
        """Finish every file and move it into place, the JSON last; returns the final paths.

        ``id_map`` (offline stitching's ``{old_id: new_id}``) rewrites the ids of the JSON and the
        CSV first; an overlay, drawn while the video ran, cannot follow it and is refused.
        """
        if id_map:
            if "mp4" in self._writers:
                raise ValueError("an overlay video cannot take ids rewritten after the video")
            self._writers["json"].remap(id_map)
            self._writers["csv"].remap(id_map)
        info = {**info, "outputs": [p.name for p in self.paths.values()]}
        for writer in self._writers.values():
            writer.finish(info)
        for kind in [k for k in self._writers if k != "json"] + ["json"]:
            writer = self._writers[kind]
            try:
                os.replace(writer.temp, writer.path)
            except OSError as exc:
                raise OutputWriteError(writer.path, exc) from None
        return dict(self.paths)

    def abort(self) -> None:
        """Remove every temporary file; earlier finished outputs stay untouched."""
        for writer in self._writers.values():
            writer.abort()

    def snapshot(self, info: dict[str, Any]) -> None:
        """Put the JSON and CSV of the frames so far in place (valid, each renamed atomically) while
        writing goes on: a live stream stopped any way keeps everything up to its last snapshot, and
        a stopped video its frames so far. ``info`` should say ``partial``; the overlay video is only
        complete at ``commit``."""
        info = {**info, "outputs": [self.paths["json"].name, self.paths["csv"].name]}
        self._writers["csv"].snapshot(info)
        self._writers["json"].snapshot(info)

    def __enter__(self) -> TrackOutputs:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is not None:
            self.abort()


def document_to_frames(document: dict[str, Any], where: str = "track document", *,
                       unique_ids: bool = True) -> tuple[list[TrackedFrame], list[dict[str, Any]], list[str]]:
    """Frames with poses and ids, the ``images`` entries and the keypoint names of a track document.

    Raises PosetrackError (one line naming ``where``, the annotation and the field) if the document
    is not posetrack's JSON: :func:`posetrack_cli.io.formats.check_document` checks it (with
    ``unique_ids`` False, a track id may name two people of a frame: ids that are given afresh).
    """
    from posetrack_cli.io.formats import check_document

    names = list(check_document(document, where, unique_ids=unique_ids))
    images = list(document["images"])
    times = {int(im.get("frame_id", im["id"])): float(im.get("timestamp", 0.0)) for im in images}
    by_frame: dict[int, list[dict[str, Any]]] = {}
    for ann in document["annotations"]:
        by_frame.setdefault(int(ann["image_id"]), []).append(ann)
    k = len(names)
    frames = []
    for index in sorted(by_frame):
        anns = by_frame[index]
        kps = np.array([a["keypoints"] for a in anns], dtype=np.float32).reshape(len(anns), k, 3)
        scores = np.array([a.get("keypoint_scores", kps[j, :, 2]) for j, a in enumerate(anns)], np.float32)
        boxes = np.array([a["bbox"] for a in anns], dtype=np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        poses = Poses(kps[..., :2], scores, boxes, np.array([a.get("score", 1.0) for a in anns]))
        ids = np.array([int(a["track_id"]) for a in anns], np.int64)
        frames.append(TrackedFrame(index, times.get(index, 0.0), poses, ids))
    return frames, images, names
