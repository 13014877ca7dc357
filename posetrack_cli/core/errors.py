"""User-facing errors: the command line prints their message as one line and exits non-zero."""


class PosetrackError(Exception):
    """An error whose message is complete for a user: what went wrong, with which file, what to do.

    Example:
        A program of your own can print it as the command line does, one line, and exit non-zero:

        >>> from posetrack_cli import PosetrackError, open_source
        >>> try:
        ...     open_source("no-such-video.mp4")
        ... except PosetrackError as error:
        ...     print(f"posetrack: error: {error}")
        posetrack: error: no such file: no-such-video.mp4
    """


class OptionsError(PosetrackError):
    """Options that cannot go together. The settings types raise it on construction, so the library
    refuses what the command line refuses, in the same words (which name the command line's flags).

    Example:
        A One Euro setting without the One Euro filter is refused, not ignored:

        >>> from posetrack_cli import OptionsError, PosetrackError, SmoothingConfig
        >>> try:
        ...     SmoothingConfig(smooth_beta=5.0)
        ... except OptionsError as error:
        ...     print(f"{isinstance(error, PosetrackError)}: {error}")
        True: --smooth-beta applies to --smooth one-euro only
    """


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
