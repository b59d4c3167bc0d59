"""What users supply (inputs, validated) and what the workspace hands back (typed records).

Validation lives here so that the command line, the manifest importer and the Python API refuse the same
things with the same one-line messages, each naming the field at fault.

Every result the workspace returns is a frozen dataclass deriving from :class:`Record`, whose
``to_dict()`` is the JSON shape documented in docs/json.md (dates as ISO text, tuples as lists).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidField

__all__ = [
    "CASE_KINDS",
    "Record",
    "now",
    "plain",
    "SEXES",
    "SOURCES",
    "CaseFields",
    "PhotoInput",
    "Provenance",
    "ReferenceFields",
    "parse_date",
    "parse_retention",
    "parse_year",
]

SOURCES = ("family", "official-record", "other")
SEXES = ("female", "male", "other", "unknown")
CASE_KINDS = ("deceased", "living")


def now() -> datetime:
    """The time stored on records: UTC, naive, to the second."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: records and dataclasses as dicts, dates as ISO text, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


class Record:
    """Base of the typed results the workspace returns (frozen dataclasses)."""

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON shape of this result (docs/json.md)."""
        out = plain(self)
        assert isinstance(out, dict)
        return out


def parse_date(value: str | date | None, field_name: str) -> date | None:
    """An ISO date (YYYY-MM-DD), or None for an empty value."""
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidField(f"{field_name}: {value!r} is not a date (expected YYYY-MM-DD)") from None


def parse_retention(value: str | date | None) -> date | None:
    """A reference's retention date: today or later. An earlier date would have the next retention run
    erase the record without anyone saying why; erasing now is an admin's `reference delete --reason`."""
    when = parse_date(value, "retain_until")
    if when is not None and when < date.today():
        raise InvalidField(
            f"retain_until: {when.isoformat()} is in the past; to erase the record now, an admin deletes it "
            "with a reason"
        )
    return when


def parse_year(value: str | int | None, field_name: str = "birth_year") -> int | None:
    if value is None or value == "":
        return None
    try:
        year = int(value)
    except (TypeError, ValueError):
        raise InvalidField(f"{field_name}: {value!r} is not a year") from None
    if not 1880 <= year <= date.today().year:
        raise InvalidField(f"{field_name}: {year} is not a plausible year")
    return year


def _choice(value: str | None, allowed: tuple[str, ...], field_name: str, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            raise InvalidField(f"{field_name}: required (one of {', '.join(allowed)})")
        return None
    value = value.strip().lower()
    if value not in allowed:
        raise InvalidField(f"{field_name}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _required_text(value: str | None, field_name: str) -> str:
    if value is None or not str(value).strip():
        raise InvalidField(f"{field_name}: required")
    return str(value).strip()


def _record_id(value: str | None, field_name: str) -> str:
    text = _required_text(value, field_name)
    if any(c.isspace() for c in text) or len(text) > 200:
        raise InvalidField(f"{field_name}: {text!r} must be a short id without spaces")
    return text


def _optional_text(value: str | None) -> str | None:
    return None if value is None or not str(value).strip() else str(value).strip()


@dataclass(frozen=True)
class Provenance:
    """Who supplied a reference photo, from what source, and on what legal basis. All but consent required."""

    source: str
    supplied_by: str
    legal_basis: str
    consent: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", _choice(self.source, SOURCES, "source", required=True))
        object.__setattr__(self, "supplied_by", _required_text(self.supplied_by, "supplied_by"))
        object.__setattr__(self, "legal_basis", _required_text(self.legal_basis, "legal_basis"))
        object.__setattr__(self, "consent", _optional_text(self.consent))


@dataclass(frozen=True)
class ReferenceFields:
    id: str
    name: str
    sex: str | None = None
    birth_year: int | None = None
    last_seen_on: date | None = None
    last_seen_at: str | None = None
    notes: str | None = None
    retain_until: date | None = None  # default: the workspace's retention_years from today

    def __post_init__(self) -> None:
        object.__setattr__(self, "retain_until", parse_retention(self.retain_until))
        object.__setattr__(self, "id", _record_id(self.id, "reference_id"))
        object.__setattr__(self, "name", _required_text(self.name, "name"))
        object.__setattr__(self, "sex", _choice(self.sex, SEXES, "sex", required=False))
        object.__setattr__(self, "birth_year", parse_year(self.birth_year))
        object.__setattr__(self, "last_seen_on", parse_date(self.last_seen_on, "last_seen_on"))
        object.__setattr__(self, "last_seen_at", _optional_text(self.last_seen_at))
        object.__setattr__(self, "notes", _optional_text(self.notes))


#: Reference fields that ``update`` may change (the id never changes).
UPDATABLE = ("name", "sex", "birth_year", "last_seen_on", "last_seen_at", "notes", "retain_until")


def validate_update(changes: dict[str, Any]) -> dict[str, Any]:
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        raise InvalidField(f"{sorted(unknown)[0]}: not a field that can be updated")
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "name":
            out[key] = _required_text(value, "name")
        elif key == "sex":
            out[key] = _choice(value, SEXES, "sex", required=False)
        elif key == "birth_year":
            out[key] = parse_year(value)
        elif key == "last_seen_on":
            out[key] = parse_date(value, key)
        elif key == "retain_until":
            out[key] = parse_retention(value)
        else:
            out[key] = _optional_text(value)
    return out


@dataclass(frozen=True)
class CaseFields:
    id: str
    kind: str = "deceased"
    found_on: date | None = None
    found_at: str | None = None
    notes: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", _record_id(self.id, "case_id"))
        object.__setattr__(self, "kind", _choice(self.kind, CASE_KINDS, "kind", required=True))
        object.__setattr__(self, "found_on", parse_date(self.found_on, "found_on"))
        object.__setattr__(self, "found_at", _optional_text(self.found_at))
        object.__setattr__(self, "notes", _optional_text(self.notes))


@dataclass(frozen=True)
class PhotoInput:
    """A photo file to add, with the face to take when it shows several, or eyes marked by hand.

    ``quality_override`` is the reason for enrolling a reference photo whose face fails the workspace's
    quality gate (it is recorded with the photo); without it such a photo is refused.
    """

    path: Path
    face: int | None = None
    eyes: np.ndarray | None = field(default=None, compare=False)
    photo_date: date | None = None
    quality_override: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        object.__setattr__(self, "photo_date", parse_date(self.photo_date, "photo_date"))
        object.__setattr__(self, "quality_override", _optional_text(self.quality_override))
        if self.face is not None and self.face < 1:
            raise InvalidField(f"face: {self.face} is not a face number (faces are numbered from 1)")
