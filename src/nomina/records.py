"""What users supply (inputs, validated) and what the workspace hands back (typed records).

Validation lives here so that the command line, the manifest importer and the Python API refuse the same
things with the same one-line messages, each naming the field at fault.

Every result the workspace returns is a frozen dataclass deriving from :class:`Record`, whose
``to_dict()`` is the JSON shape documented in docs/json.md (dates as ISO text, tuples as lists).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import operator
import os
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidField

__all__ = [
    "CASE_KINDS",
    "SKELETONS_INFO",
    "Record",
    "now",
    "plain",
    "SEXES",
    "SOURCES",
    "CaseFields",
    "LookalikeIds",
    "PhotoInput",
    "Provenance",
    "ReferenceFields",
    "check_eyes",
    "id_skeleton",
    "parse_date",
    "parse_past_date",
    "parse_retention",
    "parse_year",
    "record_number",
    "shown",
    "skeleton",
    "skeleton_data",
    "skeletons_outdated",
    "whole_number",
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


# -- validation -------------------------------------------------------------------------------------
#: The longest value a message echoes; a longer one is cut with an ellipsis.
ECHO_LIMIT = 80
#: The longest record id accepted.
ID_MAX_LENGTH = 200
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_YEAR = re.compile(r"[0-9]{1,4}")
# Format characters that names and places in Persian, Arabic, Indic and other scripts need (zero-width
# non-joiner and joiner, direction marks, soft hyphen); free text keeps them, ids never. The others
# (zero-width space, bidirectional overrides and isolates, byte-order mark...) hide or reorder text.
_TEXT_FORMAT_ALLOWED = frozenset("\u00ad\u061c\u200c\u200d\u200e\u200f")
# Characters that look like the ASCII hyphen-minus in an id: the dash punctuation (Unicode category Pd:
# hyphen, non-breaking hyphen, figure dash, en and em dashes...) and these; an id stores them as "-".
_OTHER_DASHES = frozenset("\u2212\u2043\u02d7\ufe63\uff0d")
# Unicode's default-ignorable code points (DerivedCoreProperties.txt) that are not format or unassigned
# characters, which an id refuses anyway: the combining grapheme joiner, variation selectors, Hangul and
# Khmer fillers. They show as nothing, so "vic\u034ftor" would read as "victor" in the trail and a report.
_INVISIBLE = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xE0000, 0xE0FFF),
)
# What a decoder puts where bytes were not valid UTF-8 (a web form's field sent in another encoding): the
# text given is not the text meant, so it is refused rather than stored.
_NOT_DECODED = "\ufffd"


def shown(value: object) -> str:
    """``repr(value)`` for a message, cut to about :data:`ECHO_LIMIT` characters with an ellipsis: a
    message never echoes a huge value whole, and repr writes control characters as escapes."""
    text = repr(value)
    return text if len(text) <= ECHO_LIMIT else text[: ECHO_LIMIT - 1] + "\u2026"


def _character(c: str) -> str:
    """A character as a message names it: ``U+202E RIGHT-TO-LEFT OVERRIDE``."""
    name = unicodedata.name(c, "")
    return f"U+{ord(c):04X}" + (f" {name}" if name else "")


def parse_date(value: str | date | None, field_name: str) -> date | None:
    """A date written exactly YYYY-MM-DD (ISO 8601's calendar date), or None for an empty value.

    Other ISO 8601 spellings that Python would read (``20200101``, ``2020-W01-1``) are refused: the
    message promises YYYY-MM-DD, and a date misread is worse than a date refused.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):  # a datetime is a date too, but cannot be compared with one
        return value.date()
    if isinstance(value, date):
        return value
    text = value.strip() if isinstance(value, str) else ""
    if _ISO_DATE.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise InvalidField(f"{field_name}: {shown(value)} is not a date (expected YYYY-MM-DD)")


def parse_past_date(value: str | date | None, field_name: str) -> date | None:
    """A date that has happened (last seen, found, photo taken): :func:`parse_date`, and not after today."""
    when = parse_date(value, field_name)
    if when is not None and when > date.today():
        raise InvalidField(f"{field_name}: {when.isoformat()} is in the future")
    return when


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
    """A year of birth: written in digits, from 1880 to this year."""
    if value is None or value == "":
        return None
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        year = int(value)
    elif isinstance(value, str) and _YEAR.fullmatch(value.strip()):
        year = int(value.strip())
    else:
        raise InvalidField(f"{field_name}: {shown(value)} is not a year")
    if not 1880 <= year <= date.today().year:
        raise InvalidField(f"{field_name}: {shown(year)} is not a plausible year")
    return year


def record_number(value: int, field_name: str) -> int:
    """A record's number (a search id): 1 to 2**63 - 1, what the database can hold."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**63:
        raise InvalidField(f"{field_name}: {shown(value)} is not a record number (1 to {2**63 - 1})")
    return value


def whole_number(value: object, field_name: str, least: int = 1, most: int = 2**63 - 1) -> int:
    """An int (numpy's too, not a bool, a float or text) from ``least`` to ``most``."""
    if isinstance(value, bool | np.bool_):
        number = None
    else:
        try:
            number = operator.index(value)  # type: ignore[arg-type]
        except TypeError:
            number = None
    if number is None or not least <= number <= most:
        raise InvalidField(f"{field_name}: {shown(value)} is not a whole number from {least:,} to {most:,}")
    return number


#: The least distance between two eye centres marked by hand, in pixels.
MIN_EYE_DISTANCE = 4


def check_eyes(value: object, field_name: str = "eyes") -> np.ndarray:
    """Two eye centres marked by hand, in photo pixels: a 2 x 2 array of finite numbers ([[x, y], [x, y]])
    at least :data:`MIN_EYE_DISTANCE` pixels apart, returned as float64 with the image-left eye first."""
    try:
        eyes = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        eyes = np.empty(0)
    if isinstance(value, str | bytes) or eyes.shape != (2, 2) or not np.isfinite(eyes).all():
        given = " ".join(shown(value).split())  # an array's repr has several lines
        raise InvalidField(f"{field_name}: {given} is not two eye centres [[x, y], [x, y]]", field="eyes")
    if np.hypot(*(eyes[1] - eyes[0])) < MIN_EYE_DISTANCE:
        raise InvalidField(
            f"{field_name}: the two eye centres are less than {MIN_EYE_DISTANCE} pixels apart", field="eyes"
        )
    return eyes[np.argsort(eyes[:, 0], kind="stable")]


def _choice(value: str | None, allowed: tuple[str, ...], field_name: str, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            raise InvalidField(f"{field_name}: required (one of {', '.join(allowed)})")
        return None
    value = str(value).strip().lower()
    if value not in allowed:
        raise InvalidField(f"{field_name}: {shown(value)} is not one of {', '.join(allowed)}")
    return value


#: The longest free text accepted (a reason, notes, a name), in characters: some pages of text.
TEXT_MAX_LENGTH = 20_000


def _clean_text(value: object, field_name: str, lines: bool = False) -> str:
    """Free text in Unicode's composed form (NFC), stripped, without characters that control a terminal
    or hide and reorder text: control characters (line breaks too, unless ``lines``), format characters
    other than those that scripts need, surrogates, line and paragraph separators. Ordinary spaces stay."""
    if not isinstance(value, str):  # bytes or a list would be stored as their Python spelling
        raise InvalidField(f"{field_name}: {shown(value)} is not text")
    if len(value) > TEXT_MAX_LENGTH:
        raise InvalidField(f"{field_name}: {len(value):,} characters; at most {TEXT_MAX_LENGTH:,}")
    text = unicodedata.normalize("NFC", value)
    if lines:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    for c in text:
        kind = unicodedata.category(c)
        if (
            (kind == "Cc" and not (lines and c == "\n"))
            or kind in ("Cs", "Zl", "Zp")
            or (kind == "Cf" and c not in _TEXT_FORMAT_ALLOWED)
        ):
            raise InvalidField(f"{field_name}: holds {_character(c)}, a control or format character")
        if c == _NOT_DECODED:
            raise InvalidField(f"{field_name}: holds {_character(c)}: text that was not valid UTF-8")
    return text.strip()


def _required_text(value: str | None, field_name: str) -> str:
    text = "" if value is None else _clean_text(value, field_name)
    if not text:
        raise InvalidField(f"{field_name}: required")
    return text


def _record_id(value: str | None, field_name: str) -> str:
    """A record id: NFKC-normalised, so that lookalike spellings (full-width letters, ligatures, the
    many Unicode dashes) become the one id they look like and an existing id is found again; without
    spaces, control, format, invisible or unassigned characters, nor '/', nor '.' or '..' (an id is one
    segment of a web address); at most :data:`ID_MAX_LENGTH` characters."""
    if value is not None and not isinstance(value, str):
        raise InvalidField(f"{field_name}: {shown(value)} is not text")
    if value is None or not value.strip():
        raise InvalidField(f"{field_name}: required")
    text = unicodedata.normalize("NFKC", value.strip())
    text = "".join("-" if unicodedata.category(c) == "Pd" or c in _OTHER_DASHES else c for c in text)
    for c in text:
        if (
            unicodedata.category(c).startswith("C")
            or unicodedata.category(c) in ("Zl", "Zp")
            or c == _NOT_DECODED
            or any(low <= ord(c) <= high for low, high in _INVISIBLE)
        ):
            raise InvalidField(
                f"{field_name}: {shown(text)} holds {_character(c)}; an id is letters, digits and punctuation"
            )
    if any(c.isspace() for c in text):
        raise InvalidField(f"{field_name}: {shown(text)} must be a short id without spaces")
    # an id is one segment of the web application's and the API's addresses
    if "/" in text:
        raise InvalidField(
            f"{field_name}: {shown(text)} holds '/', which a web address reads as a separator; write it as '-' "
            "(MP-2024-17)"
        )
    if text in (".", ".."):
        raise InvalidField(f"{field_name}: {shown(text)} is not an id (a web address reads it as a folder)")
    if len(text) > ID_MAX_LENGTH:
        raise InvalidField(
            f"{field_name}: {shown(text)} is too long for an id ({len(text):,} characters; at most {ID_MAX_LENGTH})"
        )
    return text


def skeleton(text: str) -> str:
    """Unicode's skeleton of ``text`` (UTS #39, section 4) without combining marks: strings that look alike,
    whatever characters they are made of (Latin 'P1', Cyrillic 'Р1', Greek 'Ρ1'), have the same skeleton.

    Marks are left out because a reader takes a letter with a mark for the letter: 'erin' with a dot
    above its 'i' (U+0307), 'cỵ' with a dot below, read as 'erin' and 'cy' in a list of names.
    """
    decomposed = unicodedata.normalize("NFD", text)
    mapped = unicodedata.normalize("NFD", decomposed.translate(_prototypes()))
    return "".join(c for c in mapped if unicodedata.category(c) != "Mn")


@functools.cache
def _prototypes() -> dict[int, str]:
    """Unicode's confusables mapping (confusables.txt) as a ``str.translate`` table: each character to the
    prototype it looks like. Made once, when an id is first compared, from the confusable-homoglyphs data.

    That data holds the mapping both ways, each character's list naming what it is confusable with, and
    writes right-to-left text between direction marks: a character whose only link is to a sequence or to
    a prototype of several characters maps to it; of two characters linked only to each other, the lower
    stands for both. The skeletons this gives are Unicode's, but for spacing characters (never in an id).
    """
    from confusable_homoglyphs.confusables import confusables_data

    marks = str.maketrans("", "", "\u200e\u200f")
    links: dict[str, set[str]] = {}
    for char, alike in confusables_data.items():
        links.setdefault(char.translate(marks), set()).update(a["c"].translate(marks) for a in alike)
    table = {}
    for char, alike in links.items():
        if len(char) == 1 and len(alike) == 1:
            (other,) = alike
            if len(other) > 1 or len(links.get(other, ())) > 1 or other < char:
                table[ord(char)] = other
    return table


#: The longest skeleton (in UTF-8 bytes) the database keeps as it is in ``id_skeleton``; a longer one is kept
#: as its SHA-256, so that every value fits in a PostgreSQL index entry (about 2,700 bytes at most): an id of
#: 200 Hangul syllables has a skeleton of over 4,000 bytes.
SKELETON_STORED_MAX = 1000


def id_skeleton(record_id: str) -> str:
    """What a reference's or case's ``id_skeleton`` column holds, and what a new id is looked up by: the id's
    :func:`skeleton`, or ``sha256:`` and the skeleton's SHA-256 in hex when it is longer than
    :data:`SKELETON_STORED_MAX` bytes. Two ids have the same one exactly when they have the same skeleton."""
    key = skeleton(record_id)
    data = key.encode("utf-8")
    return key if len(data) <= SKELETON_STORED_MAX else "sha256:" + hashlib.sha256(data).hexdigest()


#: The ``workspace_info`` key naming the data the stored ``id_skeleton`` values were made with
#: (:func:`skeleton_data`).
SKELETONS_INFO = "id_skeletons"
#: How :func:`skeleton` and :func:`_prototypes` read the confusables data: raised when that changes, so that
#: stored skeletons are made again.
_SKELETON_RULE = 2  # 2: combining marks left out


@functools.cache
def skeleton_data() -> str:
    """Which skeletons :func:`id_skeleton` makes, as ``workspace_info`` keeps it (:data:`SKELETONS_INFO`):
    JSON naming the rule, the confusable-homoglyphs version and a SHA-256 of the prototype table. A new
    version of that data may map some characters otherwise; skeletons stored with other data are then made
    again (:func:`skeletons_outdated`)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("confusable-homoglyphs")
    except PackageNotFoundError:  # not installed as a distribution: the table's hash still tells
        release = "0"
    table = json.dumps(sorted(_prototypes().items()), ensure_ascii=False).encode("utf-8")
    return json.dumps(
        {"rule": _SKELETON_RULE, "confusables": release, "table": hashlib.sha256(table).hexdigest()[:16]},
        sort_keys=True,
    )


def skeletons_outdated(stored: str | None) -> bool:
    """Whether skeletons made with ``stored`` data (:func:`skeleton_data` of whoever made them; None when
    unrecorded) are to be made again with this process's: when it is unrecorded, unreadable or other data,
    but not newer (a higher rule or confusable-homoglyphs version: another server of the workspace has been
    upgraded already; making them back would have the two make each other's in turn)."""
    if stored == skeleton_data():
        return False
    try:
        theirs = json.loads(stored or "")
        newer = _data_order(theirs) > _data_order(json.loads(skeleton_data()))
    except (TypeError, ValueError, KeyError):
        return True
    return not newer


def _data_order(data: dict[str, Any]) -> tuple[int, tuple[int, ...]]:
    return int(data["rule"]), tuple(int(n) for n in re.findall(r"[0-9]+", str(data["confusables"])))


class LookalikeIds:
    """The ids of one kind of record (references, cases) by :func:`skeleton`, to warn when a new id looks
    like one in use but is made of other characters (Cyrillic 'Р1' for Latin 'P1'): most likely the same
    person entered twice, the id typed on another keyboard. A warning, never a refusal: two people may have
    such ids. Two ids both in plain ASCII are never said to look alike: 0 and O, 1, l and I, rn and m can be
    told apart on screen and tell many genuine ids apart; the warning is about letters of other scripts,
    which look the same in every font.

    The ids in use come from ``lookup``, which gives the ids whose :func:`id_skeleton` is the one asked for
    (the workspace asks its database: one indexed query per new id, whatever the gallery's size), and from
    ``ids`` given in memory. Ids added are remembered too, so an id added earlier in a batch counts even
    before it is written.
    """

    def __init__(
        self,
        kind: str,
        same: str,
        ids: Iterable[str] = (),
        lookup: Callable[[str], Iterable[str]] | None = None,
    ) -> None:
        """``kind`` names the records (``reference``), ``same`` what two lookalikes may be (``person``)."""
        self._kind = kind
        self._same = same
        self._lookup = lookup
        self._known = _by_skeleton(ids)

    def add(self, new_id: str) -> list[str]:
        """Warnings naming each id in use that ``new_id`` looks like; from now on ``new_id`` is in use too."""
        key = id_skeleton(new_id)
        found = set(self._known.get(key, []))
        if self._lookup is not None:
            found.update(self._lookup(key))
        found.discard(new_id)  # already written, in a batch that writes each row before it is checked
        warnings = [
            f"{self._kind} {shown(new_id)} looks like existing {self._kind} {shown(known)} (different characters); "
            f"check it is not the same {self._same} entered twice"
            for known in sorted(found)
            if not (new_id.isascii() and known.isascii())
        ]
        self._known.setdefault(key, []).append(new_id)
        return warnings


def _by_skeleton(ids: Iterable[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for i in ids:
        out.setdefault(id_skeleton(i), []).append(i)
    return out


def _optional_text(value: str | None, field_name: str, lines: bool = False) -> str | None:
    text = "" if value is None else _clean_text(value, field_name, lines)
    return text or None


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
        object.__setattr__(self, "consent", _optional_text(self.consent, "consent"))


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
        object.__setattr__(self, "last_seen_on", parse_past_date(self.last_seen_on, "last_seen_on"))
        object.__setattr__(self, "last_seen_at", _optional_text(self.last_seen_at, "last_seen_at"))
        object.__setattr__(self, "notes", _optional_text(self.notes, "notes", lines=True))
        check_lifetime(self.birth_year, self.last_seen_on)


def check_lifetime(birth_year: int | None, last_seen_on: date | None) -> None:
    """Refuse a person last seen before the year they were born (on adding a reference and on changing one)."""
    if birth_year is not None and last_seen_on is not None and last_seen_on.year < birth_year:
        raise InvalidField(f"last_seen_on: {last_seen_on.isoformat()} is before the birth year {birth_year}")


#: Reference fields that ``update`` may change (the id never changes).
UPDATABLE = ("name", "sex", "birth_year", "last_seen_on", "last_seen_at", "notes", "retain_until")


def validate_update(changes: dict[str, Any]) -> dict[str, Any]:
    if not changes:  # an update that changes nothing would still be recorded as one
        raise InvalidField("changes: give at least one field to change")
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
            out[key] = parse_past_date(value, key)
        elif key == "retain_until":
            out[key] = parse_retention(value)
        else:
            out[key] = _optional_text(value, key, lines=key == "notes")
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
        object.__setattr__(self, "found_on", parse_past_date(self.found_on, "found_on"))
        object.__setattr__(self, "found_at", _optional_text(self.found_at, "found_at"))
        object.__setattr__(self, "notes", _optional_text(self.notes, "notes", lines=True))


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
        if not isinstance(self.path, str | os.PathLike):
            raise InvalidField(f"photos: {shown(self.path)} is not a path to a photo file", field="photos")
        object.__setattr__(self, "path", Path(self.path))
        try:  # the file name is kept and shown: nothing in it may act on a terminal or reorder text
            _clean_text(self.path.name, "photo")
        except InvalidField as exc:
            raise InvalidField(
                f"{shown(str(self.path))}: the file name {exc.message.removeprefix('photo: ')}; rename the file",
                field="photos",
            ) from None
        object.__setattr__(self, "photo_date", parse_past_date(self.photo_date, "photo_date"))
        object.__setattr__(self, "quality_override", _optional_text(self.quality_override, "quality_override"))
        if self.face is not None:
            try:
                object.__setattr__(self, "face", whole_number(self.face, "face", most=10_000))
            except InvalidField:
                number = shown(self.face)
                raise InvalidField(f"face: {number} is not a face number (faces are numbered from 1)") from None
        if self.eyes is not None:
            if self.face is not None:  # which would be meant: the detected face, or the one marked by hand?
                raise InvalidField("face: give a face number or the eyes marked by hand, not both", field="face")
            object.__setattr__(self, "eyes", check_eyes(self.eyes))
