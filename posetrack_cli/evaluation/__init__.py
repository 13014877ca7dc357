"""Accuracy against ground truth: PoseTrack mAP (PCKh@0.5) and MOTA, and COCO keypoint AP."""
