"""posetrack's version: one place, read by the package, every output's ``info.version`` and the CLI."""

__version__ = "0.1.0"
