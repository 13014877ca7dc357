"""Makes ``manifest.json`` installable as package data (``posetrack_cli.manifest``).

Model files downloaded into this folder are never packaged or committed.
"""
