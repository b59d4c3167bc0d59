"""Content-addressed photo store: each photo's bytes kept once, as supplied, under its SHA-256.

Layout: ``photos/ab/abcdef...`` (first two hex digits as a folder). Files are written to a temporary
name and renamed, so a photo is either wholly present or absent.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..imaging import sha256_hex

__all__ = ["PhotoStore"]


class PhotoStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put(self, data: bytes) -> tuple[str, bool]:
        """Store bytes; returns their SHA-256 and whether a new file was written."""
        sha = sha256_hex(data)
        target = self.path(sha)
        if target.is_file():
            return sha, False
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return sha, True

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def remove(self, sha256: str) -> None:
        path = self.path(sha256)
        path.unlink(missing_ok=True)
        try:
            path.parent.rmdir()
        except OSError:
            pass  # folder still holds other photos
