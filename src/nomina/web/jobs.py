"""Bulk imports from the web: a manifest and a zip of photos, imported in the background.

A job is a folder under the workspace, ``<workspace>/imports/<job id>/`` (the user's alone: folders 0700,
files 0600), holding while it runs the uploaded zip, the photos unpacked from it and the manifest beside
them (its photo paths are relative to it, so to the zip's top level), and at every time ``status.json``:
who started it, its state, how far it is and what it found. The status is written whole (a temporary
file renamed over it), so any server process can read it; the job itself runs in a thread of the process
that started it, as the user who started it, and goes on when the browser is closed. When it ends, the
photos, the zip and the manifest are removed: only ``status.json`` and ``failures.csv`` (the failed rows,
as ``nomina reference import`` writes them) stay.

A running job notes a heartbeat in its status every few seconds. A job whose status says it is running
but whose process is gone (the server was restarted), or whose heartbeat stopped, is shown as stopped:
the rows it had finished are enrolled, and running the same manifest again adds the rest (rows already
enrolled are skipped).

The zip is checked before anything is unpacked: every entry must be a plain file or folder inside the
job's folder (no absolute path, no ``..``, no link or device), at most :data:`MAX_ENTRIES` entries and
:data:`MAX_UNPACKED` bytes in all, and what is unpacked is counted again as it is written (a zip may lie
about its sizes).
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import socket
import stat
import threading
import time
import zipfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import IO, Any

from ..errors import InvalidField, ManifestError, NominaError, NotFound
from ..files import PRIVATE_FILE, private_folder, write_whole
from ..importing import RowFailure, read_manifest
from ..records import now, shown
from ..workspace import Workspace

__all__ = [
    "MAX_ARCHIVE",
    "MAX_ENTRIES",
    "MAX_MANIFEST",
    "MAX_UNPACKED",
    "JobStatus",
    "check_archive",
    "create",
    "failures_file",
    "list_jobs",
    "read_status",
    "start",
    "unpack",
]

log = logging.getLogger("nomina.web")

#: A job id as made by :func:`create`; anything else names no job and never reaches the file system.
JOB_ID = re.compile(r"[0-9a-f]{32}")
FOLDER = "imports"
STATUS = "status.json"
FAILURES = "failures.csv"
_ARCHIVE = "photos.zip"
_PHOTOS = "photos"
_TEMP = ".status-"

MAX_MANIFEST = 50 * 1024 * 1024
MAX_ARCHIVE = 2 * 1024**3
MAX_ENTRIES = 100_000
MAX_UNPACKED = 2 * 1024**3
#: Seconds between heartbeats of a running job, and after which a silent one is taken to have stopped.
HEARTBEAT = 5.0
STALE = 60.0
_FORGOTTEN = 3600.0  # a job silent this long is not running, even if some process has its number now
_CHUNK = 1 << 20

STATES = ("running", "done", "failed", "stopped")
STOPPED_MESSAGE = (
    "the import stopped before it finished (the server was stopped or restarted); the rows it finished are "
    "enrolled: start the same manifest again to add the rest (rows already enrolled are skipped)"
)


@dataclass
class JobStatus:
    """What ``status.json`` holds. ``state`` is running, done, failed or stopped."""

    job: str
    user: str
    manifest: str
    archive: str
    started_at: str
    state: str = "running"
    finished_at: str | None = None
    done: int = 0
    total: int = 0
    added: int = 0
    failed: int = 0
    already_present: int = 0
    references_created: int = 0
    message: str = "unpacking the photos"
    warnings: list[str] = field(default_factory=list)
    pid: int = 0
    host: str = ""
    heartbeat: float = 0.0
    manifest_file: str = ""  # the manifest's name beside the unpacked photos

    def public(self) -> dict[str, Any]:
        """The status as ``GET /imports/{job}/status`` answers it (no process details)."""
        out = asdict(self)
        for key in ("pid", "host", "heartbeat", "manifest_file"):
            del out[key]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobStatus:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# -- where jobs live ------------------------------------------------------------------------------------
def _root(workspace: Path) -> Path:
    return Path(workspace) / FOLDER


def _folder(workspace: Path, job: str) -> Path:
    """The folder of job ``job``; NotFound for anything that is not a job id (checked before any path is made)."""
    if not isinstance(job, str) or not JOB_ID.fullmatch(job):
        raise NotFound(f"import {shown(job)}: no such import", record=f"import {job}")
    return _root(workspace) / job


def _write_status(folder: Path, status: JobStatus) -> None:
    write_whole(folder / STATUS, json.dumps(asdict(status), indent=1).encode(), _TEMP)


def _load(folder: Path) -> JobStatus | None:
    try:
        return JobStatus.from_dict(json.loads((folder / STATUS).read_text("utf-8")))
    except (OSError, ValueError, TypeError):
        return None


# -- jobs running in this process ----------------------------------------------------------------------
_running: dict[str, threading.Thread] = {}
_running_lock = threading.Lock()


def _alive(status: JobStatus) -> bool:
    """Whether a job whose status says running is being run by some process."""
    if status.host == socket.gethostname() and status.pid == os.getpid():
        with _running_lock:
            thread = _running.get(status.job)
        return thread is not None  # registered before it starts, removed by the thread as it ends
    if time.time() - status.heartbeat > STALE:
        return False
    if status.host != socket.gethostname():
        return True  # another machine: its heartbeat is all there is to go by
    if status.pid <= 0:
        return False
    try:
        os.kill(status.pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but another user's: not a Nomina worker of this workspace
        return False
    return True


def _settle(folder: Path, status: JobStatus) -> JobStatus:
    """``status`` as it is: a running job that no process runs any more has stopped (noted once, and its
    unpacked photos removed)."""
    if status.state != "running" or _alive(status):
        return status
    fresh = _load(folder)  # it may have ended between the reading and the looking
    if fresh is None or fresh.state != "running":
        return fresh or status
    status = fresh
    status.state = "stopped"
    status.message = STOPPED_MESSAGE
    status.finished_at = status.finished_at or now().isoformat()
    gone = (
        status.host != socket.gethostname()
        or status.pid == os.getpid()
        or not _pid_exists(status.pid)
        or time.time() - status.heartbeat > _FORGOTTEN
    )
    if gone:  # no process of this machine can still be writing: note it and remove what it left
        try:
            _write_status(folder, status)
        except OSError:
            pass
        _clean(folder)
    return status


def _pid_exists(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def read_status(workspace: Path, job: str) -> JobStatus:
    """The status of job ``job``; NotFound when there is no such job."""
    folder = _folder(workspace, job)
    status = _load(folder)
    if status is None or status.job != job:
        raise NotFound(f"import {job}: no such import", record=f"import {job}")
    return _settle(folder, status)


def list_jobs(workspace: Path) -> list[JobStatus]:
    """Every import job of the workspace, newest first."""
    root = _root(workspace)
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        if JOB_ID.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink():
            status = _load(entry)
            if status is not None and status.job == entry.name:
                found.append(_settle(entry, status))
    return sorted(found, key=lambda s: (s.started_at, s.job), reverse=True)


def failures_file(workspace: Path, job: str) -> Path | None:
    """The failed rows of job ``job`` as CSV, if it wrote any."""
    path = _folder(workspace, job) / FAILURES
    return path if path.is_file() else None


# -- making a job ---------------------------------------------------------------------------------------
def _copy(source: IO[bytes], target: Path, limit: int, what: str, field_name: str) -> int:
    """Copy an upload to ``target`` (a new file, its owner's alone), refusing one larger than ``limit``."""
    size = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as out:
        source.seek(0)
        while chunk := source.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise InvalidField(f"{field_name}: {what} is larger than {_size(limit)}", field=field_name)
            out.write(chunk)
    return size


def _size(n: int) -> str:
    return f"{n / 1024**3:g} GB" if n >= 1024**3 else f"{n / 1024**2:g} MB"


def create(
    workspace: Path, user: str, manifest: IO[bytes], manifest_name: str, archive: IO[bytes], archive_name: str
) -> JobStatus:
    """A new job of ``user``, for :func:`start` to run: the uploads saved in its folder, the manifest read
    and the zip checked (nothing unpacked yet). InvalidField or ManifestError, naming the upload at fault
    (field ``manifest`` or ``photos``), when either cannot be used; the job's folder is then removed again."""
    root = _root(workspace)
    private_folder(root)
    job = secrets.token_hex(16)
    folder = root / job
    os.mkdir(folder, 0o700)
    try:
        photos = folder / _PHOTOS
        os.mkdir(photos, 0o700)
        manifest_path = photos / f".nomina-manifest-{secrets.token_hex(8)}.csv"
        _copy(manifest, manifest_path, MAX_MANIFEST, shown(manifest_name), "manifest")
        try:
            rows = read_manifest(manifest_path)
        except ManifestError as exc:
            raise ManifestError(exc.message.replace(str(manifest_path), manifest_name), field="manifest") from None
        for line, row in rows:
            _check_photo_path(row.get("photo", ""), line, manifest_name)
        _copy(archive, folder / _ARCHIVE, MAX_ARCHIVE, shown(archive_name), "photos")
        check_archive(folder / _ARCHIVE, archive_name)
        status = JobStatus(
            job=job,
            user=user,
            manifest=manifest_name,
            archive=archive_name,
            started_at=now().isoformat(),
            total=len(rows),
            pid=os.getpid(),
            host=socket.gethostname(),
            heartbeat=time.time(),
            manifest_file=manifest_path.name,
        )
        return status  # status.json is written by start(): a job is listed once a thread runs it
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _check_photo_path(photo: str, line: int, manifest_name: str) -> None:
    """Refuse a manifest whose row names a photo outside the zip (an absolute path, or one climbing out with
    ``..``): on the server, such a path would name the server's own files, never the user's."""
    text = photo.replace("\\", "/")
    if text.startswith("/") or re.match(r"[A-Za-z]:", text) or ".." in text.split("/"):
        raise ManifestError(
            f"manifest: {shown(manifest_name)}, line {line}: photo {shown(photo)} is not a path inside the zip; "
            "name each photo by its path in the zip (e.g. photos/ana-1.jpg)",
            field="manifest",
        )


# -- zips -----------------------------------------------------------------------------------------------
def _member(name: str, archive_name: str) -> PurePosixPath | None:
    """A zip entry's path inside the folder it is unpacked into (None for the top folder itself);
    InvalidField for an absolute path or one that climbs out with ``..``."""
    text = name.replace("\\", "/")
    if text.startswith("/") or re.match(r"[A-Za-z]:", text):
        raise InvalidField(
            f"photos: {shown(archive_name)} holds {shown(name)}, an absolute path; the zip was refused and nothing "
            "was unpacked",
            field="photos",
        )
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidField(
            f"photos: {shown(archive_name)} holds {shown(name)}, a path leading out of the zip's folder ('..'); "
            "the zip was refused and nothing was unpacked",
            field="photos",
        )
    if any(ord(c) < 32 or c == "\x7f" for c in text):
        raise InvalidField(
            f"photos: {shown(archive_name)} holds {shown(name)}, a name with a control character", field="photos"
        )
    return PurePosixPath(*parts) if parts else None


def check_archive(path: Path, archive_name: str) -> list[zipfile.ZipInfo]:
    """The entries of the zip at ``path`` once each is known to be safe to unpack (see the module's
    description); InvalidField (field ``photos``) naming the first that is not."""
    label = shown(archive_name)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise InvalidField(f"photos: {label} is not a zip file", field="photos") from None
    if len(infos) > MAX_ENTRIES:
        raise InvalidField(
            f"photos: {label} holds {len(infos):,} entries; at most {MAX_ENTRIES:,} are accepted", field="photos"
        )
    total = 0
    for info in infos:
        _member(info.filename, archive_name)
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind == stat.S_IFLNK:
            raise InvalidField(
                f"photos: {label} holds {shown(info.filename)}, a symbolic link; the zip was refused", field="photos"
            )
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise InvalidField(
                f"photos: {label} holds {shown(info.filename)}, which is not a plain file", field="photos"
            )
        if info.flag_bits & 0x1:
            raise InvalidField(
                f"photos: {label} holds {shown(info.filename)}, which is encrypted; send a zip without a password",
                field="photos",
            )
        total += info.file_size
        if total > MAX_UNPACKED:
            raise InvalidField(
                f"photos: {label} would unpack to more than {_size(MAX_UNPACKED)}; split it into several imports",
                field="photos",
            )
    return infos


def unpack(path: Path, dest: Path, archive_name: str) -> int:
    """Unpack the zip at ``path`` into the folder ``dest`` after :func:`check_archive`; the number of files.
    Sizes are counted as the bytes are written, whatever the zip claims."""
    infos = check_archive(path, archive_name)
    root = dest.resolve()
    written = files = 0
    with zipfile.ZipFile(path) as zf:
        for info in infos:
            member = _member(info.filename, archive_name)
            if member is None:
                continue
            target = dest.joinpath(*member.parts)
            try:
                if info.is_dir():
                    target.mkdir(mode=0o700, parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                if not target.parent.resolve().is_relative_to(root):  # cannot happen: no links are unpacked
                    raise InvalidField(f"photos: {shown(info.filename)} leads out of the zip's folder", field="photos")
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                fd = os.open(target, flags, PRIVATE_FILE)
                with zf.open(info) as source, os.fdopen(fd, "wb") as out:
                    while chunk := source.read(_CHUNK):
                        written += len(chunk)
                        if written > MAX_UNPACKED:
                            raise InvalidField(
                                f"photos: {shown(archive_name)} unpacks to more than {_size(MAX_UNPACKED)}",
                                field="photos",
                            )
                        out.write(chunk)
                files += 1
            except FileExistsError:
                raise InvalidField(
                    f"photos: {shown(archive_name)} holds {shown(info.filename)} more than once", field="photos"
                ) from None
            except (OSError, zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError) as exc:
                raise InvalidField(
                    f"photos: {shown(info.filename)} in {shown(archive_name)} cannot be unpacked ({exc})",
                    field="photos",
                ) from None
    return files


# -- running a job --------------------------------------------------------------------------------------
class _Run:
    """One job being run in this process: its status, written whole under a lock."""

    def __init__(self, folder: Path, status: JobStatus) -> None:
        self.folder = folder
        self.status = status
        self.lock = threading.Lock()
        self.finished = threading.Event()
        self.last_write = 0.0

    def write(self, force: bool = False, **changes: Any) -> None:
        with self.lock:
            for key, value in changes.items():
                setattr(self.status, key, value)
            stamp = time.time()
            if not force and stamp - self.last_write < 0.5:
                return
            self.status.heartbeat = stamp
            self.last_write = stamp
            try:
                _write_status(self.folder, self.status)
            except OSError:
                log.exception("import %s: could not write its status", self.status.job)

    def beat(self) -> None:
        while not self.finished.wait(HEARTBEAT):
            self.write(force=True)


def _clean(folder: Path) -> None:
    """Remove a job's uploads and unpacked photos: only its status and failures stay."""
    shutil.rmtree(folder / _PHOTOS, ignore_errors=True)
    (folder / _ARCHIVE).unlink(missing_ok=True)


def _outside(text: str, photos: Path) -> str:
    """``text`` without the job folder's own path (a message names the photo as the manifest does)."""
    return text.replace(str(photos) + os.sep, "").replace(str(photos), "")


def _run(run: _Run, ws: Workspace) -> None:
    status = run.status
    folder = run.folder
    photos = folder / _PHOTOS
    try:
        unpack(folder / _ARCHIVE, photos, status.archive)
        (folder / _ARCHIVE).unlink(missing_ok=True)
        run.write(force=True, message="importing")
        manifest = photos / status.manifest_file  # by its own name: a zip may hold files named like it
        report = ws.import_references(manifest, progress=lambda done, total: run.write(done=done, total=total))
        report.failures = [
            RowFailure(f.line, f.reference_id, f.photo, _outside(f.error, photos)) for f in report.failures
        ]
        if report.failures:
            report.write_failures(folder / FAILURES)
        run.write(
            force=True,
            state="done",
            done=report.rows,
            total=report.rows,
            added=report.added,
            failed=len(report.failures),
            already_present=report.already_present,
            references_created=report.references_created,
            warnings=report.warnings,
            message=(
                f"{report.rows} rows: {report.added} photo(s) added ({report.references_created} new "
                f"reference(s)), {report.already_present} already present, {len(report.failures)} failed."
            ),
            finished_at=now().isoformat(),
        )
    except NominaError as exc:
        run.write(force=True, state="failed", message=_outside(exc.message, photos), finished_at=now().isoformat())
    except Exception:
        log.exception("import %s failed", status.job)
        run.write(
            force=True,
            state="failed",
            message="internal error; the server's log has the details",
            finished_at=now().isoformat(),
        )
    finally:
        run.finished.set()
        _clean(folder)
        with _running_lock:
            _running.pop(status.job, None)


def start(workspace: Workspace, status: JobStatus) -> None:
    """Run job ``status.job`` in a thread of this process, as the user ``workspace`` acts for."""
    folder = _folder(workspace.path, status.job)
    run = _Run(folder, status)
    thread = threading.Thread(target=_run, args=(run, workspace), name=f"nomina-import-{status.job[:8]}", daemon=True)
    beat = threading.Thread(target=run.beat, name=f"nomina-import-beat-{status.job[:8]}", daemon=True)
    with _running_lock:
        _running[status.job] = thread
    run.write(force=True)
    thread.start()
    beat.start()
