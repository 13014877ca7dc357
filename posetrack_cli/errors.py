"""User-facing errors: the command line prints their message as one line and exits non-zero."""


class PosetrackError(Exception):
    """An error whose message is complete for a user: what went wrong, with which file, what to do."""


class CheckpointError(PosetrackError):
    """A file is not a loadable pose checkpoint (missing, not torch, truncated, unknown layout)."""


class WeightsError(PosetrackError):
    """A model file is missing, unverifiable, or cannot be downloaded."""
