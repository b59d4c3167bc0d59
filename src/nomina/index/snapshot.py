"""Gallery snapshots: the on-disk cache that spares a process rebuilding its index from the database.

Layout of a snapshot folder (every file private, written into a temporary folder beside it, flushed, then
renamed into place, so that a reader sees a whole snapshot or none):

- ``vectors.npy``: live faces x dim float32, ``face_ids.npy``: int64, ``references.npy``: int32 (index
  into meta.json's ``references``): fixed-width arrays aligned by row;
- with an approximate layer: ``lists.npy`` (int32 list number of each row), ``codes.npy`` (the row's
  32-byte PQ code) and ``trained.faiss``: the TRAINED but EMPTY faiss index (coarse centroids and PQ
  codebooks, no per-face data); loading re-adds the stored codes to it without retraining;
- ``meta.json``: format, dim, seq (the gallery-log position the contents reflect), kind, mode, references,
  and the layer's parameters.

Erasure on disk: :func:`scrub` overwrites IN PLACE every byte derived from given faces (vector row ->
zeros, code row -> zeros, list and reference number -> -1, face id -> -1), then flushes and fsyncs each file,
so that the bytes are gone from the file's own blocks; writing a new file and deleting the old one would
leave the old blocks on the disk. A loaded snapshot skips scrubbed rows.

:func:`folder_lock` serialises saves and scrubs of one snapshot between processes of one machine.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..files import PRIVATE_FILE, PRIVATE_FOLDER, private_folder

__all__ = ["FORMAT", "Snapshot", "folder_lock", "read", "remove_files", "scrub", "write"]

FORMAT = 1
_ARRAYS: dict[str, np.dtype[Any]] = {  # the dtype of each array file
    "vectors": np.dtype("<f4"),
    "face_ids": np.dtype("<i8"),
    "references": np.dtype("<i4"),
    "lists": np.dtype("<i4"),
    "codes": np.dtype("u1"),
}


@dataclass
class Snapshot:
    """A snapshot as read: ``meta`` and memory-mapped, read-only arrays (copy what you keep)."""

    meta: dict[str, Any]
    vectors: np.ndarray
    face_ids: np.ndarray
    references: np.ndarray
    lists: np.ndarray | None
    codes: np.ndarray | None
    trained: np.ndarray | None


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock (``fcntl.flock``) on a lock file beside ``folder``, so that two processes of
    one machine never save or scrub the same snapshot at once. Makes the parent folder privately."""
    private_folder(folder.parent)
    fd = os.open(folder.parent / f".{folder.name}.lock", os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _open_private(path: Path) -> IO[bytes]:
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE), "wb")


def _write_array(path: Path, dtype: np.dtype, shape: tuple[int, ...], parts: Iterable[np.ndarray]) -> None:
    """An .npy file written part by part (no whole copy in memory); each part is zeroed once written."""
    with _open_private(path) as fh:
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(fh, header)
        written = 0
        for part in parts:
            data = np.ascontiguousarray(part, dtype=dtype)
            fh.write(data.tobytes())
            written += len(data)
            if data.dtype in (np.float32, np.uint8):
                data.fill(0)
        if written != shape[0]:
            raise ValueError(f"{path.name}: {written} rows written, {shape[0]} expected")
        fh.flush()
        os.fsync(fh.fileno())


def write(
    folder: Path,
    meta: dict[str, Any],
    vector_parts: Iterable[np.ndarray],
    arrays: dict[str, np.ndarray],
    trained: np.ndarray | None,
) -> None:
    """Write a snapshot atomically into ``folder`` (replacing one there): ``vector_parts`` yields the float
    rows in order, ``arrays`` holds face_ids, references and (with a layer) lists and codes."""
    rows = int(meta["rows"])
    folder.parent.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))  # 0700
    try:
        _write_array(tmp / "vectors.npy", _ARRAYS["vectors"], (rows, int(meta["dim"])), vector_parts)
        for name, values in arrays.items():
            _write_array(tmp / f"{name}.npy", _ARRAYS[name], values.shape, [values])
        if trained is not None:
            with _open_private(tmp / "trained.faiss") as fh:
                fh.write(np.ascontiguousarray(trained, dtype=np.uint8).tobytes())
                fh.flush()
                os.fsync(fh.fileno())
        with _open_private(tmp / "meta.json") as fh:
            fh.write(json.dumps(meta).encode())
            fh.flush()
            os.fsync(fh.fileno())
        old = folder.with_name(f".{folder.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
        _fsync_folder(folder.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fsync_folder(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read(folder: Path, dim: int) -> Snapshot | None:
    """The snapshot in ``folder`` if it is whole and of this dimension; None when missing or inconsistent
    (the caller rebuilds from the database). The arrays are memory-mapped read-only."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("dim") != dim:
            return None
        rows, refs = int(meta["rows"]), meta["references"]
        int(meta["seq"])
        if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
            return None
        loaded = {name: _load(folder / f"{name}.npy", _ARRAYS[name]) for name in ("vectors", "face_ids", "references")}
        layer = meta.get("approximate")
        lists = codes = trained = None
        if layer is not None:
            lists = _load(folder / "lists.npy", _ARRAYS["lists"])
            codes = _load(folder / "codes.npy", _ARRAYS["codes"])
            trained = np.fromfile(folder / "trained.faiss", dtype=np.uint8)
            if lists.shape != (rows,) or codes.shape != (rows, int(layer["code_size"])):
                return None
            live = loaded["face_ids"] >= 0
            if np.any(lists[live] < 0) or np.any(lists >= int(layer["nlist"])):
                return None
        vectors, face_ids, references = loaded["vectors"], loaded["face_ids"], loaded["references"]
        if vectors.shape != (rows, dim) or face_ids.shape != (rows,) or references.shape != (rows,):
            return None
        live = face_ids >= 0
        if np.any(references[live] < 0) or np.any(references >= len(refs)):
            return None
        if len(np.unique(face_ids[live])) != int(live.sum()):
            return None
        return Snapshot(meta, vectors, face_ids, references, lists, codes, trained)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _load(path: Path, dtype: np.dtype) -> np.ndarray:
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if array.dtype != dtype:
        raise ValueError(f"{path.name}: {array.dtype}, not {dtype}")
    return np.asarray(array)


def scrub(folder: Path, face_ids: np.ndarray) -> int:
    """Overwrite in place, in the snapshot's files, every byte derived from these faces: vector and code rows
    with zeros, list and reference numbers and face ids with -1; flush and fsync each file. The number of
    rows scrubbed (0 when there is no snapshot or none of these faces is in it)."""
    ids_file = folder / "face_ids.npy"
    if not ids_file.is_file():
        return 0
    stored = np.load(ids_file, mmap_mode="r", allow_pickle=False)
    rows = np.flatnonzero(np.isin(stored, np.asarray(face_ids, dtype=np.int64)) & (stored >= 0))
    del stored
    if not len(rows):
        return 0
    for name, value in (("vectors", 0), ("codes", 0), ("lists", -1), ("references", -1), ("face_ids", -1)):
        path = folder / f"{name}.npy"
        if not path.is_file():
            continue
        array = np.load(path, mmap_mode="r+", allow_pickle=False)
        array[rows[rows < len(array)]] = value
        array.flush()
        del array
        fd = os.open(path, os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return len(rows)


def remove_files(root: Path) -> None:
    """Remove every index file under ``root`` (the workspace's ``index/`` folder), of every kind,
    including the leftovers of an interrupted save; the next search rebuilds what it needs."""
    if root.is_symlink() or root.is_file():
        root.unlink()
    elif root.exists():
        shutil.rmtree(root)
