"""Reference manifests: the CSV file `nomina reference import` reads, and the report of an import.

The columns are documented in docs/manifest.md.
"""

from __future__ import annotations

import csv
import io
import os
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidField, ManifestError
from .files import PRIVATE_FILE, check_output, csv_text, write_whole
from .imaging import read_photo
from .records import ECHO_LIMIT, PhotoInput, Provenance, ReferenceFields, _clean_text, shown

__all__ = [
    "MANIFEST_OPTIONAL",
    "MANIFEST_REQUIRED",
    "ImportReport",
    "ROW_PROBLEM",
    "RowFailure",
    "check_failures_file",
    "read_manifest",
    "row_inputs",
]

MANIFEST_REQUIRED = ("reference_id", "photo", "name", "source", "supplied_by", "legal_basis")
MANIFEST_OPTIONAL = (
    "sex",
    "birth_year",
    "last_seen_on",
    "last_seen_at",
    "consent",
    "photo_date",
    "notes",
    "face",
    "quality_override",
)


@dataclass(frozen=True)
class RowFailure:
    line: int
    reference_id: str
    photo: str
    error: str

    @classmethod
    def of(cls, line: int, row: dict[str, str], error: Exception) -> RowFailure:
        return cls(line, row.get("reference_id", ""), row.get("photo", ""), str(error))


#: How the temporary file a failures report is written through is named, in the report's folder.
_FAILURES_TEMP = ".nomina-failures-"


@dataclass
class ImportReport:
    rows: int = 0
    added: int = 0
    already_present: int = 0
    references_created: int = 0
    failures: list[RowFailure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # "line N: ...": a new reference's id looks like another's

    def write_failures(self, path: Path) -> None:
        """Write the failed rows as CSV, whole (through a temporary file renamed over ``path``) and readable
        by its owner only, whatever the umask: the rows name people and hold what was wrong with their
        photos. InvalidField naming the file (field ``failures``) if it cannot be written. (Where a person
        chose the file, :func:`check_failures_file` says first whether it may be written there.)"""
        rows: list[list[object]] = [
            ["line", "reference_id", "photo", "error"],
            *([f.line, f.reference_id, f.photo, f.error] for f in self.failures),
        ]
        try:
            write_whole(Path(path), csv_text(rows).encode("utf-8"), _FAILURES_TEMP)
        except OSError as exc:
            raise InvalidField(f"failures: {path}: cannot be written ({exc.strerror or exc})") from None


def check_failures_file(path: Path, inputs: Iterable[Path] = ()) -> None:
    """Refuse, before anything is imported, a failures file that could not be written afterwards.

    The file must be a regular file or not exist yet, in an existing folder where Nomina can make the
    temporary file it writes the report through (:meth:`ImportReport.write_failures`). The file is not
    changed: the temporary file made to try is removed again.
    """
    path = Path(path)
    if path.is_dir():
        raise InvalidField(f"failures: {path}: is a folder, not a file")
    check_output(path, "failures", inputs)  # a pipe or a device too
    if not path.parent.is_dir():
        raise InvalidField(f"failures: {path}: no such folder {path.parent}")
    trial = path.parent / f"{_FAILURES_TEMP}{secrets.token_hex(8)}"
    try:
        os.close(os.open(trial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except OSError as exc:
        raise InvalidField(f"failures: {path}: cannot be written ({exc.strerror or exc})") from None
    trial.unlink()


#: Key of a row's problem (wrong number of cells) in the dicts :func:`read_manifest` returns; no column
#: has this name. :func:`row_inputs` refuses such a row, so that it is reported with its line.
ROW_PROBLEM = "_problem"


def read_manifest(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) pairs, one for every line that is not blank; ManifestError when the file as a
    whole cannot be used: not UTF-8 text, not valid CSV (a quote not closed), a field holding a line break,
    a header with a missing, repeated, unnamed or unknown column, or no rows. Cells are stripped and in
    Unicode's composed form (NFC). A row whose number of cells differs from the header's is returned
    with a :data:`ROW_PROBLEM`, for :func:`row_inputs` to refuse: every line is accounted for.
    """
    data = read_photo(path)  # same checks: exists, is a file, readable
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not a UTF-8 text file") from None
    records = _records(text, path)
    if not records:
        raise ManifestError(f"{path}: no rows")
    header_line, header = records[0]
    columns = [c.strip() for c in header]
    _check_header(columns, header_line, path)
    rows = []
    for line, cells in records[1:]:
        values = [unicodedata.normalize("NFC", c.strip()) for c in cells]
        if not any(values):
            continue  # an empty row (only commas): nothing to import
        row = dict(zip(columns, values, strict=False))
        if len(values) != len(columns):
            row[ROW_PROBLEM] = f"{len(values)} cells, but the header (line {header_line}) names {len(columns)} columns"
        rows.append((line, row))
    if not rows:
        raise ManifestError(f"{path}: no rows")
    return rows


def _records(text: str, path: Path) -> list[tuple[int, list[str]]]:
    """The CSV records of ``text`` with the line each is on; blank lines skipped. A record must fit on
    its line: a field that runs on over several lines is almost always a quote left open, which would
    otherwise swallow the rows that follow without a word."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, list[str]]] = []
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return records
        except csv.Error as exc:
            raise ManifestError(f"{path}: line {line}: not valid CSV ({exc}); is a quote not closed?") from None
        if reader.line_num != line:
            raise ManifestError(
                f"{path}: line {line}: a field runs on to line {reader.line_num} (a quote not closed?); a field "
                "may not hold a line break"
            )
        if cells:
            records.append((line, cells))


def _check_header(columns: list[str], line: int, path: Path) -> None:
    unnamed = [i for i, c in enumerate(columns, 1) if not c]
    if unnamed:
        raise ManifestError(f"{path}: line {line}: column {unnamed[0]} has no name")
    repeated = [c for c in columns if columns.count(c) > 1]
    if repeated:
        raise ManifestError(f"{path}: line {line}: column {_short(repeated[0])} appears more than once")
    missing = [c for c in MANIFEST_REQUIRED if c not in columns]
    if missing:
        raise ManifestError(f"{path}: missing column(s) {', '.join(missing)}")
    unknown = [c for c in columns if c not in MANIFEST_REQUIRED + MANIFEST_OPTIONAL]
    if unknown:
        raise ManifestError(f"{path}: unknown column(s) {', '.join(map(_short, unknown))}")


def _short(name: str) -> str:
    """A column name as a message shows it: cut to the echo limit, and quoted when it is not plain."""
    return name if name.isidentifier() and len(name) <= ECHO_LIMIT else shown(name)


def row_inputs(row: dict[str, str], base: Path) -> tuple[ReferenceFields, Provenance, PhotoInput]:
    """One manifest row as validated inputs; photo paths are relative to ``base``. A row with the wrong
    number of cells, or a cell holding a control or format character, is refused whole."""
    problem = row.get(ROW_PROBLEM)
    if problem:
        raise InvalidField(problem, field="")
    for column, value in row.items():
        _clean_text(value, column)  # every cell, the photo's path too
    fields = ReferenceFields(
        id=row["reference_id"],
        name=row["name"],
        sex=row.get("sex"),
        birth_year=row.get("birth_year"),  # type: ignore[arg-type]
        last_seen_on=row.get("last_seen_on"),  # type: ignore[arg-type]
        last_seen_at=row.get("last_seen_at"),
        notes=row.get("notes"),
    )
    provenance = Provenance(row["source"], row["supplied_by"], row["legal_basis"], row.get("consent"))
    if not row["photo"]:
        raise InvalidField("photo: required")
    face = row.get("face") or None
    if face is not None and not _FACE_NUMBER.fullmatch(face):
        raise InvalidField(f"face: {shown(face)} is not a face number")
    photo = PhotoInput(
        path=base / row["photo"],
        face=int(face) if face else None,
        photo_date=row.get("photo_date"),  # type: ignore[arg-type]
        quality_override=row.get("quality_override"),
    )
    return fields, provenance, photo


_FACE_NUMBER = re.compile(r"[0-9]{1,6}")
