"""The networks and their files: the pose networks (ResNet and MobileNetV2 backbones with the
paper's deconvolution head), the detectors' architectures, optical flow (DIS, RAFT), checkpoint
loading in every released layout, and the weights manifest with its downloads. Nothing here
decides where a network runs (:mod:`posetrack_cli.runtime`) or runs it on frames
(:mod:`posetrack_cli.inference`)."""
