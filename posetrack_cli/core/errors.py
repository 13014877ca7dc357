"""User-facing errors: the command line prints their message as one line and exits non-zero."""


class PosetrackError(Exception):
    """An error whose message is complete for a user: what went wrong, with which file, what to do."""


class CheckpointError(PosetrackError):
    """A file is not a loadable pose checkpoint (missing, not torch, truncated, unknown layout)."""


class WeightsError(PosetrackError):
    """A model file is missing, unverifiable, or cannot be downloaded."""


class FrameStopped(PosetrackError):
    """Reading stopped partway: the frames before are good, the rest cannot be used."""


class FrameSizeChanged(FrameStopped):
    """A frame's size differs from the first frame's."""


class FrameUnreadable(FrameStopped):
    """An image of a frame folder (after the first) cannot be decoded."""
