"""Files written whole or not at all: a temporary file beside the target, flushed to disk, then renamed.

A reader (or a crash) never sees half a photo, report or export: the rename is atomic on one file system.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["write_whole"]


def write_whole(target: Path, data: bytes, temp_prefix: str, private: bool) -> None:
    """Write ``data`` to ``target`` through a temporary file named ``temp_prefix...`` in its folder.

    ``private`` files are readable by their owner only (photo bytes); others get the usual permissions
    (the umask applies). Raises OSError, leaving no temporary file behind.
    """
    temp = target.parent / f"{temp_prefix}{secrets.token_hex(8)}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o666)  # the umask applies
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
