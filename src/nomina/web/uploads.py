"""Uploaded photos, for every form and API route that takes them: bounded, saved under a safe version of
their own name in a private temporary folder (each in a sub-folder of its own, so that two files of one name
never clash), handed to the library like files named on the command line, and removed afterwards. An error
the library raises about one names the file as it was sent, never the server's temporary folder."""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile

from ..errors import ImageTooLarge, InvalidField, NominaError
from ..files import PRIVATE_FILE, UPLOAD_TEMP

__all__ = [
    "MAX_PHOTOS",
    "MAX_PHOTO_BYTES",
    "counted",
    "declared_length",
    "mentions",
    "relabel",
    "safe_name",
    "saved",
    "write",
]

#: The largest photo file one upload may hold.
MAX_PHOTO_BYTES = 50 * 1024 * 1024
#: The most photos one request may upload.
MAX_PHOTOS = 20
_CHUNK = 1024 * 1024


def safe_name(name: str | None, number: int) -> str:
    """A file's own name as the library keeps it: its last path part, without control characters, not
    hidden, at most 120 characters; ``photo-N`` when nothing is left."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(c for c in unicodedata.normalize("NFC", base) if not unicodedata.category(c).startswith("C"))
    base = base.strip().lstrip(".")
    stem, dot, suffix = base.rpartition(".")
    if not dot or len(suffix) > 9:
        stem, dot, suffix = base, "", ""
    while stem and (len(stem) > 110 or len((stem + dot + suffix).encode()) > 200):  # file systems count bytes
        stem = stem[:-1]
    base = (stem.strip() + dot + suffix) if stem.strip() else ""
    return base or f"photo-{number}"


def write(files: list[UploadFile], folder: Path) -> list[Path]:
    """Write each uploaded file (0600) to a sub-folder of its own (0700) under ``folder``, under its safe
    name; ImageTooLarge for one over :data:`MAX_PHOTO_BYTES`, counted as it is written."""
    if len(files) > MAX_PHOTOS:
        raise InvalidField(f"photos: at most {MAX_PHOTOS} photos at a time", field="photos")
    paths = []
    for number, upload in enumerate(files, 1):
        place = folder / str(number)
        place.mkdir(mode=0o700)
        path = place / safe_name(upload.filename, number)
        size = 0
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE), "wb") as out:
            upload.file.seek(0)
            while chunk := upload.file.read(_CHUNK):
                size += len(chunk)
                if size > MAX_PHOTO_BYTES:
                    raise ImageTooLarge(
                        f"photos: {path.name} is larger than {MAX_PHOTO_BYTES // 2**20} MB", field="photos"
                    )
                out.write(chunk)
        paths.append(path)
    return paths


def declared_length(headers: Mapping[str, str]) -> int | None:
    """The body's length as the request declares it (``content-length``), or None when it declares none a
    number of ASCII digits can state (a chunked body, or a header that is not one: ``²`` is a digit too)."""
    declared = headers.get("content-length", "")
    return int(declared) if declared.isascii() and declared.isdigit() else None


def counted(
    receive: Callable[[], Awaitable[Any]], limit: int, too_big: Callable[[], NominaError]
) -> Callable[[], Awaitable[Any]]:
    """``receive`` that raises ``too_big()`` once the request's body grows past ``limit`` bytes, counted as it
    arrives (a body sent in chunks states no length beforehand)."""
    seen = 0

    async def wrapped() -> Any:
        nonlocal seen
        message = await receive()
        if message.get("type") == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise too_big()
        return message

    return wrapped


def relabel(exc: NominaError, folder: Path | str, count: int) -> NominaError:
    """``exc`` with the temporary folder of :func:`write` taken out of its message (files named as sent); an
    error about an uploaded file that names no field (an unreadable image, say) is about the ``photos``."""
    mentioned = any(f"{folder}/{number}/" in exc.message for number in range(1, count + 1))
    for number in range(count, 0, -1):
        exc.message = exc.message.replace(f"{folder}/{number}/", "")
    exc.args = (exc.message,)
    if mentioned and exc.field is None:
        exc.field = "photos"
    return exc


def mentions(message: str, name: str) -> bool:
    """Whether ``message`` speaks of the file ``name`` (as a whole name, not part of a longer one)."""
    return re.search(rf"(?<![\w.\-]){re.escape(name)}(?![\w.\-])", message) is not None


@contextmanager
def saved(files: list[UploadFile]) -> Iterator[list[Path]]:
    """The uploaded files written to a private temporary folder (:func:`write`) for the body of the ``with``,
    removed after; a NominaError raised in it names the files as they were sent (:func:`relabel`)."""
    if not files:
        raise InvalidField("photos: at least one photo file is required", field="photos")
    with tempfile.TemporaryDirectory(prefix=UPLOAD_TEMP) as folder:
        try:
            yield write(files, Path(folder))
        except NominaError as exc:
            relabel(exc, folder, len(files))
            raise
