"""Transfers shared by every service: checksums, rewindable upload bodies, atomic files, resumable
ranged downloads, parallel multipart uploads and progress events."""

__all__: list[str] = []
