"""Content-addressed photo store: each photo's bytes kept once, as supplied, under its SHA-256.

Layout: ``photos/ab/abcdef...`` (first two hex digits as a folder). Files are written to a temporary
name and renamed, so a photo is either wholly present or absent; files and folders are their owner's
alone (0600, 0700; see :mod:`nomina.files`).

A removed photo's bytes are overwritten with zeros before its file is unlinked. On a file system that
writes in place (ext4, XFS, NTFS on a hard disk) that removes them from the disk as well as from the
folder; on copy-on-write file systems, SSDs and snapshots it cannot, which docs/erasure.md explains.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import NotFound, RecordTampered
from ..files import PRIVATE_FOLDER, shred, write_whole
from ..imaging import sha256_hex

__all__ = ["PhotoStore", "is_photo_name"]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_INCOMING = ".incoming-"


def is_photo_name(sha256: object) -> bool:
    """Whether ``sha256`` is a name the store gives a photo: 64 lower-case hex digits."""
    return isinstance(sha256, str) and bool(_SHA256.fullmatch(sha256))


class PhotoStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        """Where the photo with this SHA-256 is kept. RecordTampered for anything but 64 lower-case hex digits:
        a value read from the database (a photo record, an erasure journal row) changed outside Nomina must
        never name a file outside the store (``../../x``, ``/etc/x``)."""
        if not is_photo_name(sha256):
            raise RecordTampered(
                f"photo {sha256[:70]!r}: not a SHA-256; the database was changed outside Nomina",
                record="photo",
            )
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put(self, data: bytes) -> tuple[str, bool]:
        """Store bytes; returns their SHA-256 and whether a new file was written."""
        sha = sha256_hex(data)
        target = self.path(sha)
        if target.is_file():
            return sha, False
        self.root.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
        target.parent.mkdir(mode=PRIVATE_FOLDER, exist_ok=True)
        write_whole(target, data, _INCOMING)
        return sha, True

    def read(self, sha256: str) -> bytes:
        """The photo's bytes; NotFound when its file is gone (erased since its record was read)."""
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"photo {sha256[:12]}: not in the photo store (erased?)", record=f"photo {sha256}") from None

    def remove(self, sha256: str) -> None:
        """Remove a photo's file, its bytes overwritten first (nothing happens when it is absent)."""
        shred(self.path(sha256))

    def strays(self, known: set[str]) -> list[Path]:
        """Files no photo record (``known``) names: photos whose record was erased or never committed (an
        erasure or enrolment interrupted between the database and the files) and unfinished writes
        (``.incoming-*``). Files whose names the store does not use are never listed.

        A photo being enrolled is written inside its write transaction, before the commit: list strays
        only while holding the database's write lock (see :func:`nomina.erasure.sweep`).
        """
        found: list[Path] = []
        if not self.root.is_dir():
            return found
        for folder in sorted(self.root.iterdir()):
            if not (folder.is_dir() and len(folder.name) == 2):
                continue
            for path in sorted(folder.iterdir()):
                stray = path.name.startswith(_INCOMING) or (
                    path.name[:2] == folder.name and path.name not in known and bool(_SHA256.fullmatch(path.name))
                )
                if stray and path.is_file() and not path.is_symlink():
                    found.append(path)
        return found

    def remove_file(self, path: Path) -> None:
        """Remove a file of the store found by :meth:`strays`, its bytes overwritten first."""
        shred(path)
