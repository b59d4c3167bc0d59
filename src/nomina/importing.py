"""Reference manifests: the CSV file `nomina reference import` reads, and the report of an import.

The columns are documented in docs/manifest.md.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ManifestError
from .imaging import read_photo

__all__ = ["MANIFEST_OPTIONAL", "MANIFEST_REQUIRED", "ImportReport", "RowFailure", "read_manifest"]

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
)


@dataclass(frozen=True)
class RowFailure:
    line: int
    reference_id: str
    photo: str
    error: str


@dataclass
class ImportReport:
    rows: int = 0
    added: int = 0
    already_present: int = 0
    references_created: int = 0
    failures: list[RowFailure] = field(default_factory=list)

    def write_failures(self, path: Path) -> None:
        with Path(path).open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["line", "reference_id", "photo", "error"])
            for f in self.failures:
                writer.writerow([f.line, f.reference_id, f.photo, f.error])


def read_manifest(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) pairs; ManifestError when the file as a whole cannot be used."""
    data = read_photo(path)  # same checks: exists, is a file, readable
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not a UTF-8 text file") from None
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip() for c in (reader.fieldnames or [])]
    missing = [c for c in MANIFEST_REQUIRED if c not in columns]
    if missing:
        raise ManifestError(f"{path}: missing column(s) {', '.join(missing)}")
    unknown = [c for c in columns if c not in MANIFEST_REQUIRED + MANIFEST_OPTIONAL]
    if unknown:
        raise ManifestError(f"{path}: unknown column(s) {', '.join(unknown)}")
    rows = []
    for row in reader:
        clean = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if any(clean.values()):
            rows.append((reader.line_num, clean))
    if not rows:
        raise ManifestError(f"{path}: no rows")
    return rows
