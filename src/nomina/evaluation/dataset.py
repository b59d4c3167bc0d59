"""Labelled photo folders: one folder per identity (the layout of LFW), and optional group labels.

A dataset is ``DATASET_DIR/IDENTITY/PHOTO``. Photos are the files with an image suffix inside identity
folders, sorted by identity and then by file name; the first photo of an identity is the one that
identification puts in the gallery. Other files (notes, CSV files beside the folders) are counted and
ignored.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FileMissing, InvalidField, ManifestError

__all__ = ["IMAGE_SUFFIXES", "Dataset", "Labels", "Photo", "read_labels", "scan"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".png", ".webp", ".bmp", ".tif", ".tiff")
# Columns of a labels file that name a photo or a person rather than a group.
_PATH_COLUMNS = ("path", "photo", "file", "filename", "image")
_NOT_GROUPS = ("identity", "id", "person", "name", "licence", "license", "source", *_PATH_COLUMNS)
# A group column with more distinct values than this is not a grouping (an id, a free-text note).
_MAX_GROUPS = 20


@dataclass(frozen=True)
class Photo:
    path: Path
    identity: str

    @property
    def name(self) -> str:
        """``identity/file name``: how reports and messages name the photo."""
        return f"{self.identity}/{self.path.name}"


@dataclass(frozen=True)
class Dataset:
    path: Path
    photos: list[Photo]
    identities: list[str]
    ignored_files: int = 0

    def photos_of(self) -> dict[str, list[int]]:
        """Indices into ``photos`` for each identity, in sorted order."""
        out: dict[str, list[int]] = {i: [] for i in self.identities}
        for k, p in enumerate(self.photos):
            out[p.identity].append(k)
        return out


def scan(path: Path) -> Dataset:
    """The photos of a dataset folder; FileMissing or InvalidField when there is nothing to evaluate."""
    path = Path(path)
    if not path.exists():
        raise FileMissing(f"{path}: no such folder")
    if not path.is_dir():
        raise FileMissing(f"{path}: not a folder (expected one folder per identity)")
    photos: list[Photo] = []
    ignored = 0
    for folder in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(folder.iterdir()):
            if f.name.startswith(".") or f.is_dir():
                continue  # a broken link, a pipe or a device stays in: reported as a photo that cannot be read
            if f.suffix.lower() in IMAGE_SUFFIXES:
                photos.append(Photo(f, folder.name))
            else:
                ignored += 1
    identities = sorted({p.identity for p in photos})
    if not photos:
        raise InvalidField(f"{path}: no photos found (expected one folder per identity holding that person's photos)")
    return Dataset(path, photos, identities, ignored)


@dataclass(frozen=True)
class Labels:
    """Group values of dataset photos, from a labels CSV file."""

    path: Path
    columns: list[str]  # group columns, in file order
    values: dict[int, dict[str, str]]  # photo index -> column -> group value
    unmatched_rows: int = 0
    notes: list[str] = field(default_factory=list)


def _band(values: list[str]) -> dict[str, str] | None:
    """Numbers binned into ten-year bands ("20-29"), or None if the values are not all numbers."""
    try:
        numbers = {v: float(v) for v in values if v != ""}
    except ValueError:
        return None
    if not numbers or not all(math.isfinite(n) for n in numbers.values()):
        return None
    bands = {}
    for text, n in numbers.items():
        low = int(n // 10 * 10)
        bands[text] = f"{low}-{low + 9}"
    return bands


#: Values that mean "not known" in labels files (R's NA, spreadsheets' N/A ...): no group.
_MISSING = {"", "na", "n/a", "nan", "null", "none", "unknown", "?", "-"}


def _value(text: str | None) -> str:
    value = (text or "").strip()
    return "" if value.lower() in _MISSING else value


def read_labels(path: Path, dataset: Dataset, columns: list[str] | None = None) -> Labels:
    """Group labels for dataset photos.

    The photo column is the first of ``path``, ``photo``, ``file``, ``filename``, ``image``; its values
    are matched to dataset photos relative to the labels file's folder, to the dataset folder, or by
    their last two parts (``identity/file``). Group columns are ``columns`` if given, else every other
    column except names and ids; a column of numbers is grouped in ten-year bands (ages), and a column
    with more than 20 distinct values is left out with a note. Empty values, and values that say "not
    known" (NA, N/A, unknown, ...), are not a group.
    """
    path = Path(path)
    if not path.is_file():
        raise FileMissing(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not a UTF-8 text file") from None
    reader = csv.DictReader(text.splitlines())
    header = [c.strip() for c in reader.fieldnames or []]
    photo_column = next((c for c in header if c.lower() in _PATH_COLUMNS), None)
    if photo_column is None:
        raise ManifestError(f"{path}: no photo column (one of {', '.join(_PATH_COLUMNS)})")
    if columns:
        unknown = [c for c in columns if c not in header]
        if unknown:
            raise InvalidField(f"group_columns: {', '.join(unknown)} not in {path} (columns: {', '.join(header)})")
        chosen = list(columns)
    else:
        chosen = [c for c in header if c.lower() not in _NOT_GROUPS]
    rows = [{(k or "").strip(): _value(v) for k, v in row.items() if k is not None} for row in reader]

    by_path = {p.path.resolve(): k for k, p in enumerate(dataset.photos)}
    by_name = {p.name: k for k, p in enumerate(dataset.photos)}
    matched: dict[int, dict[str, str]] = {}
    unmatched = 0
    for row in rows:
        given = row.get(photo_column, "")
        if not given:
            unmatched += 1
            continue
        rel = Path(given)
        k = by_path.get((path.parent / rel).resolve())
        if k is None:
            k = by_path.get((dataset.path / rel).resolve())
        if k is None and len(rel.parts) >= 2:
            k = by_name.get("/".join(rel.parts[-2:]))
        if k is None:
            unmatched += 1
            continue
        matched[k] = {c: row.get(c, "") for c in chosen}

    notes: list[str] = []
    kept: list[str] = []
    for c in chosen:
        present = [v[c] for v in matched.values()]
        bands = _band(present)
        if bands is not None and len(set(present) - {""}) > _MAX_GROUPS // 2:
            for v in matched.values():
                v[c] = bands.get(v[c], "")
            notes.append(f"{c}: numbers grouped in ten-year bands")
            present = [v[c] for v in matched.values()]
        distinct = Counter(v for v in present if v)
        if not distinct:
            notes.append(f"{c}: no values for the dataset's photos; left out")
        elif len(distinct) > _MAX_GROUPS:
            notes.append(f"{c}: {len(distinct)} distinct values, too many to be groups; left out")
        else:
            kept.append(c)
    values = {k: {c: v[c] for c in kept if v[c]} for k, v in matched.items()}
    return Labels(path, kept, values, unmatched, notes)
