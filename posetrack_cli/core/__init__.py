"""The bottom layer: what every other layer speaks, importing nothing of posetrack's own.

Core types with their array shapes (:mod:`.types`), the keypoint convention (:mod:`.keypoints`),
box and crop geometry (:mod:`.geometry`), the paper's constants (:mod:`.paper`), the flow field
(:mod:`.flow_field`), user-facing errors (:mod:`.errors`), file safety (:mod:`.files`), config
conventions (:mod:`.config`) and the version (:mod:`.version`).
"""
