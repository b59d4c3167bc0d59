"""Pairs files in the format of LFW's ``pairs.txt``: which photo pairs to compare, in which fold.

The first line is ``FOLDS PAIRS_PER_CLASS``: two positive whole numbers separated by white space (LFW's
own file uses a tab). Then, for each fold in turn, PAIRS_PER_CLASS same-person lines ``name i j`` followed
by PAIRS_PER_CLASS different-person lines ``name1 i name2 j``. Image numbers start at 1: photo ``i`` of
``name`` is ``DATASET/name/name_{i:04d}.jpg``, or failing that the one file in ``DATASET/name/`` with the
stem ``name_{i:04d}`` and another image extension. Blank lines at the end are ignored.

Problems with the file as a whole raise :class:`~nomina.errors.ManifestError`, problems with one line
:class:`~nomina.errors.InvalidField`, both with a one-line message naming the file and the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import FileMissing, InvalidField, ManifestError
from .dataset import IMAGE_SUFFIXES

__all__ = ["Pair", "PairsProtocol", "read_pairs"]

_WHOLE_NUMBER = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Pair:
    """One comparison of the protocol."""

    fold: int  # 0-based
    a: Path  # photo paths inside the dataset folder
    b: Path
    same: bool
    line: int  # line number in the file (1-based), for messages


@dataclass(frozen=True)
class PairsProtocol:
    """Every pair of a pairs file, in file order."""

    path: Path
    folds: int
    pairs_per_class: int  # per fold
    pairs: list[Pair]


def read_pairs(path: Path, dataset: Path) -> PairsProtocol:
    """The pairs listed in ``path``, their photos found in the dataset folder ``dataset``.

    FileMissing when ``path`` does not exist; ManifestError when the file as a whole is unusable (not UTF-8,
    a bad first line, fewer than 2 folds, not FOLDS x 2 x PAIRS_PER_CLASS pair lines); InvalidField for the
    first bad pair line (fields, image numbers, a line of the wrong kind for its place, a photo not found).
    """
    path, dataset = Path(path), Path(dataset)
    lines = _read_lines(path)
    folds, per_class = _header(path, lines[0])
    expected = folds * 2 * per_class
    found = len(lines) - 1
    if found < expected:
        raise ManifestError(
            f"{path} line {len(lines) + 1}: the file ends after {found} pair lines; "
            f"{folds} folds x 2 x {per_class} pairs per class need {expected}"
        )
    if found > expected:
        raise ManifestError(
            f"{path} line {expected + 2}: more pair lines than the {expected} that "
            f"{folds} folds x 2 x {per_class} pairs per class need"
        )
    pairs = []
    for index, text in enumerate(lines[1:]):
        fold, place = divmod(index, 2 * per_class)
        pairs.append(_pair(path, dataset, index + 2, text, fold, same=place < per_class))
    return PairsProtocol(path, folds, per_class, pairs)


def _read_lines(path: Path) -> list[str]:
    """The file's lines without trailing blank ones; at least one."""
    if not path.exists():
        raise FileMissing(f"{path}: no such file")
    if not path.is_file():
        raise FileMissing(f"{path}: not a file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise FileMissing(f"{path}: cannot be read ({exc.strerror})") from None
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ManifestError(f"{path}: empty (expected a first line FOLDS PAIRS_PER_CLASS, then the pairs)")
    return lines


def _header(path: Path, text: str) -> tuple[int, int]:
    fields = text.split()
    if len(fields) != 2 or not all(_WHOLE_NUMBER.fullmatch(f) and int(f) >= 1 for f in fields):
        raise ManifestError(
            f"{path} line 1: expected FOLDS PAIRS_PER_CLASS (two whole numbers of at least 1), got {text.strip()!r}"
        )
    folds, per_class = int(fields[0]), int(fields[1])
    if folds < 2:
        raise ManifestError(f"{path} line 1: {folds} fold; needs at least 2 folds for cross-validation")
    return folds, per_class


def _pair(path: Path, dataset: Path, line: int, text: str, fold: int, *, same: bool) -> Pair:
    where = f"{path} line {line}"
    fields = text.split()
    want = 3 if same else 4
    if len(fields) != want:
        kind, shape = ("same-person", "name i j") if same else ("different-person", "name1 i name2 j")
        if len(fields) == 7 - want:
            other = "different-person" if same else "same-person"
            raise InvalidField(
                f"{where}: a {other} line where fold {fold + 1}'s {kind} lines ({shape}) are expected; got {text!r}"
            )
        raise InvalidField(f"{where}: expected a {kind} line ({shape}), got {len(fields)} fields: {text.strip()!r}")
    if same:
        name, i, j = fields
        first, second = _number(where, i), _number(where, j)
        if first == second:
            raise InvalidField(f"{where}: a same-person line compares photo {first} of {name} with itself")
        return Pair(fold, _photo(where, dataset, name, first), _photo(where, dataset, name, second), True, line)
    name_a, i, name_b, j = fields
    first, second = _number(where, i), _number(where, j)
    if name_a == name_b:
        raise InvalidField(f"{where}: a different-person line names {name_a} twice")
    return Pair(fold, _photo(where, dataset, name_a, first), _photo(where, dataset, name_b, second), False, line)


def _number(where: str, text: str) -> int:
    if not _WHOLE_NUMBER.fullmatch(text) or int(text) < 1:
        raise InvalidField(f"{where}: image number {text!r} is not a whole number of at least 1")
    return int(text)


def _photo(where: str, dataset: Path, name: str, number: int) -> Path:
    """``dataset/name/name_NNNN.jpg``, or the one file with that stem and another image extension."""
    if name in (".", "..") or "/" in name or "\\" in name or name.startswith("."):
        raise InvalidField(f"{where}: {name!r} cannot be the name of a person's folder")
    folder = dataset / name
    stem = f"{name}_{number:04d}"
    photo = folder / f"{stem}.jpg"
    if photo.is_file():
        return photo
    if not folder.is_dir():
        raise InvalidField(f"{where}: photo {stem} not found: no folder {folder}")
    matches = sorted(
        p for p in folder.iterdir() if p.stem == stem and p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    if not matches:
        raise InvalidField(f"{where}: photo {stem} not found in {folder}")
    if len(matches) > 1:
        names = ", ".join(p.name for p in matches)
        raise InvalidField(f"{where}: photo {stem} is ambiguous in {folder}: {names}")
    return matches[0]
