"""The method's constants, each named once: the paper's values and the released code's.

Every module that needs one of these imports it from here, so a value is never re-typed and a
reader finds where each number comes from in one place.
"""

from __future__ import annotations

# Xiao, Wu, Wei (ECCV 2018), section 3.2 / Algorithm 1.
DETECTION_THRESHOLD = 0.5  # detector boxes scoring below are dropped
JOINT_THRESHOLD = 0.4  # joints scoring below take no part in flow boxes or tracking
FLOW_BOX_ENLARGE = 0.15  # a flow box is the box of the moved joints grown by 15 %
CROP_PADDING = 1.25  # the aspect-padded person box is enlarged 1.25x before cropping

# The released inference code (MSRA ``in_vis_thre``, mmpose ``keypoint_score_thr``): a person's
# score is the box score times the mean score of the joints above 0.2. Separate from the paper's
# tracking threshold above: using 0.4 here too ranks people differently and lowers COCO AP.
RESCORE_JOINT_THRESHOLD = 0.2

# Not given by the paper. 0.5 is the usual person-box NMS (Faster R-CNN's test setting): a flow box
# overlapping a detection that much is the same person, and the detection (scored higher) wins.
NMS_IOU = 0.5
# A box around fewer than 3 joints is a point or a line; such poses are noise, not people.
MIN_JOINTS = 3
