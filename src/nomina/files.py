"""Files Nomina writes: whole or not at all, and readable by their owner only.

A file is written to a temporary file beside the target, flushed to disk, then renamed: a reader (or a
crash) never sees half a photo, report or export, since the rename is atomic on one file system.

Everything Nomina writes is its owner's alone, whatever the umask: files 0600, folders 0700. A workspace
holds photos, biometric data and the conclusions a blind verifier must not see; a report or export goes to
the responsible authority through a person, never through group permissions. :func:`restrict` takes group
and other permissions off a file or folder made before (an older workspace, a folder given to ``init``).
"""

from __future__ import annotations

import csv
import io
import os
import secrets
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from .errors import InvalidField
from .store.layout import is_workspace

__all__ = [
    "PRIVATE_FILE",
    "PRIVATE_FOLDER",
    "check_output",
    "csv_text",
    "private_folder",
    "remove_stale_temporaries",
    "restrict",
    "shred",
    "write_whole",
]

#: The prefixes of the temporary folders Nomina's server writes a request's uploads, reports and exports to
#: (removed when the request ends; :func:`remove_stale_temporaries` removes those a killed process left).
UPLOAD_TEMP, REPORT_TEMP, EXPORT_TEMP = "nomina-upload-", "nomina-report-", "nomina-export-"
TEMPORARY_PREFIXES = (UPLOAD_TEMP, REPORT_TEMP, EXPORT_TEMP)
#: How old such a folder must be to be taken for one a killed process left (no request lasts this long).
STALE_AFTER_SECONDS = 3600.0

_CHUNK = 1 << 20

#: The permissions of every file Nomina writes: read and write for its owner, nothing for anyone else.
PRIVATE_FILE = 0o600
#: The permissions of every folder Nomina makes.
PRIVATE_FOLDER = 0o700

#: The first characters that make a spreadsheet read a cell as a formula (OWASP's list for CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def check_output(target: Path, field: str, inputs: Iterable[Path] = (), why: str = "") -> None:
    """Refuse (InvalidField about ``field``, its message ending with ``why``) to write a report, export,
    checkpoint, key or list of failed rows to ``target``:

    not into a workspace's folder (any folder above it, or above where a link at ``target`` leads, holding
    a workspace database or the file naming one), where the file would replace or sit among the workspace's
    own files (``--out ws/nomina.db`` would destroy the database); not over one of ``inputs``, the photo or
    manifest the command reads; not over anything but a regular file (a folder, a named pipe, a device such
    as ``/dev/sda``, which the rename that writes the file would replace).
    """
    target = Path(target)
    places = [target.parent.resolve()]
    if target.is_symlink():  # where the link leads counts too
        places.append(target.resolve().parent)
    for folder in (f for where in places for f in (where, *where.parents)):
        if is_workspace(folder):
            raise InvalidField(f"{field}: {target} is inside the workspace folder {folder}; write it elsewhere{why}")
    try:
        found = target.stat()
    except OSError:
        found = None
    if found is not None and not stat.S_ISREG(found.st_mode):
        raise InvalidField(f"{field}: {target}: not a regular file; write it elsewhere{why}")
    if target.exists():
        for source in inputs:
            try:
                same = os.path.samefile(target, source)
            except OSError:
                continue
            if same:
                raise InvalidField(f"{field}: {target} is the file this command reads; write it elsewhere{why}")


def write_whole(target: Path, data: bytes, temp_prefix: str) -> None:
    """Write ``data`` to ``target`` through a temporary file named ``temp_prefix...`` in its folder, readable
    and writable by its owner only (whatever the umask). Raises OSError, leaving no temporary file behind."""
    temp = target.parent / f"{temp_prefix}{secrets.token_hex(8)}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)  # a umask only takes bits away
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def private_folder(path: Path) -> None:
    """Make the folder ``path`` (its missing parents too, with the usual permissions) unless it exists, and
    make it its owner's alone (:func:`restrict`)."""
    path.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    restrict(path)


def restrict(path: Path) -> None:
    """Take every group and other permission off ``path`` (a file or folder) when it exists and belongs to
    the user running Nomina; the owner's permissions stay as they are.

    Anything else is left as it is: another user's file (only its owner may change it), a file system that
    refuses (read-only), and Windows, where access is set by the folder's access-control lists.
    """
    if sys.platform == "win32":
        return
    try:
        found = os.stat(path)
        if found.st_uid == os.getuid() and found.st_mode & 0o077:
            os.chmod(path, found.st_mode & 0o7700)
    except OSError:
        pass


def csv_text(rows: Iterable[Iterable[object]]) -> str:
    """``rows`` as CSV text, None as an empty cell, with no text cell a spreadsheet would run as a formula.

    Ids, names and reasons are typed by people, and a CSV file goes on to an authority that may open it
    in a spreadsheet: a reason such as ``=HYPERLINK("http://...?"&B2, "details")`` would run there. A text
    cell beginning with one of :data:`FORMULA_START` is written with an apostrophe before it, which a
    spreadsheet shows as text (OWASP's advice). Numbers are written as they are. The JSON forms hold
    every text unchanged.
    """
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(
            ["" if v is None else "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v for v in row]
        )
    return buffer.getvalue()


def remove_stale_temporaries(older_than: float = STALE_AFTER_SECONDS, where: Path | None = None) -> int:
    """Remove this user's temporary folders of :data:`TEMPORARY_PREFIXES` not changed for ``older_than``
    seconds, each file overwritten with zeros first; how many folders went. A request's folder is removed when
    the request ends, but not when its process is killed (a worker stopped by the system, SIGKILL): the photos
    uploaded with it, or the report written for it, would stay in the temporary folder for good. Anything
    that is not this user's own folder (another user's, a link) is left alone; what cannot be removed is too."""
    base = Path(where or tempfile.gettempdir())
    removed, now = 0, time.time()
    try:
        entries = list(base.iterdir())
    except OSError:
        return 0
    for folder in entries:
        try:
            found = folder.lstat()
            if (
                not folder.name.startswith(TEMPORARY_PREFIXES)
                or not stat.S_ISDIR(found.st_mode)
                or (sys.platform != "win32" and found.st_uid != os.getuid())
                or now - found.st_mtime < older_than
            ):
                continue
            for path in [p for p in folder.rglob("*") if p.is_file() or p.is_symlink()]:
                shred(path)  # which removes a folder it empties
            if folder.exists():
                shutil.rmtree(folder)
            removed += 1
        except OSError:
            continue
    return removed


def shred(path: Path) -> None:
    """Overwrite a file's bytes with zeros, flush them to disk, then unlink it and, when that empties it, its
    folder. A symbolic link is only unlinked: the file it points to is not Nomina's to overwrite."""
    if path.is_symlink():
        path.unlink()
        return
    try:
        with path.open("r+b") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(0)
            zeros = bytes(min(size, _CHUNK))
            for start in range(0, size, _CHUNK):
                fh.write(zeros[: min(_CHUNK, size - start)])
            fh.flush()
            os.fsync(fh.fileno())
    except FileNotFoundError:
        return
    except PermissionError:
        pass  # a read-only file is still removed from the folder; its bytes stay until the space is reused
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:
        pass  # the folder still holds other files
