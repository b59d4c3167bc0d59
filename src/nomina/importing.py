"""Reference manifests: the CSV file `nomina reference import` reads, and the report of an import.

The columns are documented in docs/manifest.md.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidField, ManifestError
from .imaging import read_photo
from .records import PhotoInput, Provenance, ReferenceFields

__all__ = [
    "MANIFEST_OPTIONAL",
    "MANIFEST_REQUIRED",
    "ImportReport",
    "RowFailure",
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


def row_inputs(row: dict[str, str], base: Path) -> tuple[ReferenceFields, Provenance, PhotoInput]:
    """One manifest row as validated inputs; photo paths are relative to ``base``."""
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
    if face is not None and not face.isdigit():
        raise InvalidField(f"face: {face!r} is not a face number")
    photo = PhotoInput(
        path=base / row["photo"],
        face=int(face) if face else None,
        photo_date=row.get("photo_date"),  # type: ignore[arg-type]
        quality_override=row.get("quality_override"),
    )
    return fields, provenance, photo
