"""Training and fine-tuning the SimpleBaseline pose network on COCO-format keypoint annotations.

``data`` reads annotations into per-person samples; ``augment`` and ``targets`` are the pure
arithmetic of one example (crop transform, Gaussian heatmaps, the loss); ``dataset`` turns a sample
into tensors; ``initialise`` builds the network a run starts from (ImageNet, scratch, a checkpoint);
``validate`` scores COCO AP; ``loop`` runs the optimiser and writes checkpoints ``posetrack run`` loads.
"""
