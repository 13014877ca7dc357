"""posetrack from Python: load the models once, track a video frame by frame, use the results.

    python examples/track_video.py my_video.mp4            # prints each frame's people
    python examples/track_video.py my_video.mp4 --offline  # never download model files

It shows the three ways in: iterate over a video's tracked frames; bring your own person boxes;
and write the same files as `posetrack run`.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from posetrack_cli import COCO_KEYPOINTS, Detections, PosetrackError, VideoTracker


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", help="a video file or a folder of frames")
    parser.add_argument("--offline", action="store_true", help="never download model files")
    parser.add_argument("--out", default="posetrack-out", help="where run() writes its files")
    args = parser.parse_args()
    try:
        # Options are the command line's, by field name: preset, device, joint_threshold, detect_every...
        tracker = VideoTracker.load(preset="fast", device="cpu", allow_download=not args.offline)

        # 1. Frame by frame: each TrackedFrame has the frame's poses and their track ids.
        wrist = COCO_KEYPOINTS.index("left_wrist")
        boxes_by_frame = {}
        for tracked in tracker.track(args.video):
            people = ", ".join(f"id {tid} wrist ({x:.0f}, {y:.0f})" for tid, (x, y)
                               in zip(tracked.track_ids.tolist(), tracked.poses.keypoints[:, wrist]))
            print(f"frame {tracked.frame_index} t={tracked.timestamp:.2f}s: {len(tracked)} people {people}")
            boxes_by_frame[tracked.frame_index] = Detections(tracked.poses.boxes, np.full(len(tracked), 0.9))

        # 2. Your own boxes (here: the boxes found above) replace the detector.
        again = sum(len(t) for t in tracker.track(args.video, boxes=boxes_by_frame))
        print(f"with given boxes: {again} poses")

        # 3. The files `posetrack run` writes: <name>.json, <name>.csv and summary.csv.
        for row in tracker.run(args.video, out=args.out):
            print(f"{row.input}: {row.status} {row.frames} frames, {row.tracks} tracks {row.reason}")
    except PosetrackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
