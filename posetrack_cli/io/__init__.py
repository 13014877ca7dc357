"""Frames in, files out: video files, frame folders and live sources; the track files, their
exports and reports; the overlay drawings. Depends only on the core layer."""
