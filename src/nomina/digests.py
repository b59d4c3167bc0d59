"""Digests of the records the audit trail accounts for, so that a record changed behind Nomina's back shows.

The hash chain (:mod:`nomina.audit`) shows an edited *trail*; these digests show an edited *record*. Each
audited change carries the digests of the records it changed, as it found them and as it left them, and
:func:`nomina.audit.verify` recomputes the digest of every record in the database and compares.

Records
    A record is what one audit event can name, with everything that belongs to it:

    ``case ID``
        the case's row, its photos (each link with the stored photo's format, size and dimensions), their
        faces (every column, the embedding by its SHA-256), its identifications and their verifications;
    ``reference ID``
        the reference's row, its photos with their provenance (and the stored photo's row), their faces;
    ``search N``
        the search's row (model, settings, user, gallery size), its candidates (rank, reference, score,
        faces, photo) and the examiners' conclusions on them;
    ``user 'NAME'``
        the user's row (roles, active, who created or disabled them, their password hash, failed logins
        and lockout), their login sessions and their API tokens (each as the SHA-256 of its secret), so
        that a session or token written behind Nomina's back shows.
    ``calibration N``
        the calibration's row: the model it was fitted for and its score-to-likelihood-ratio mapping, which
        every later search's likelihood ratios come from.

    The keys read like the ``record`` of an error (``case UP-17``, ``search 4``, ``user 'ben'``).
    Workspace settings are not records: each ``setting.change`` event holds the setting's new value
    itself, and :func:`nomina.audit.verify` compares the stored values with them.

Canonical form
    Every column of every row, by name, in a JSON object with sorted keys and no spaces; rows in id
    order; floats as Python's ``repr`` (the shortest text that reads back as the same float); dates and
    times in ISO 8601; bytes (an embedding) as their SHA-256 in hex. A column whose value is NULL is left
    out, so a new nullable column added by a later migration does not change the digests of the records
    written before it. No column is left out otherwise (but ``id_skeleton``, derived from the id for the
    lookalike-id warnings and made again when Unicode's confusables data changes): a changed score, rank,
    verifier, conclusion, embedding or role changes the digest.

Keyed digests
    The digest is HMAC-SHA256 of the canonical form under the workspace's record digest key, 32 random
    bytes kept in ``workspace_info`` (:data:`KEY_INFO`). The trail, the audit log and signed checkpoints
    carry digests but not the key, so a digest does not let anyone who sees only those guess what a record
    holds (a conclusion is one of three phrases: a plain hash of a search could be tested against each,
    and a blind verifier could learn the hidden conclusions that way). Someone who can read the database
    can read the key, but they can read the conclusions themselves too.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
import secrets
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, TextClause, bindparam, text
from sqlalchemy.orm import Session

from .store import schema as db

__all__ = ["KEY_INFO", "KINDS", "digests", "fingerprint", "key", "parse_key", "record_key", "state"]

#: The ``workspace_info`` key holding the record digest key (64 hex digits).
KEY_INFO = "record_digest_key"
#: The kinds of record, as the first word of a record key.
KINDS = ("case", "reference", "search", "user", "calibration")

# Ids per query: well under SQLite's limit on bound parameters.
_CHUNK = 500
# Column values the canonical form holds as the database returns them.
_SIMPLE = (int, float, str)
# Columns derived from others, not part of any record (since schema 0011, the skeleton of an id).
_DERIVED = frozenset({"id_skeleton"})


# -- keys ------------------------------------------------------------------------------------------------
def record_key(kind: str, ident: str | int) -> str:
    """The key of one record: ``case UP-17``, ``reference MP-1``, ``search 4``, ``user 'ben'``."""
    if kind not in KINDS:
        raise ValueError(f"{kind!r} is not a kind of record")
    return f"user {str(ident)!r}" if kind == "user" else f"{kind} {ident}"


def parse_key(k: str) -> tuple[str, str]:
    """``(kind, id)`` of a record key."""
    kind, _, ident = k.partition(" ")
    if kind not in KINDS or not ident:
        raise ValueError(f"{k!r} is not a record key")
    if kind == "user":  # written by repr(): a Python string literal, escapes and all
        try:
            name = ast.literal_eval(ident)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            name = None
        if not isinstance(name, str) or repr(name) != ident:
            raise ValueError(f"{k!r} is not a record key")
        ident = name
    return kind, ident


# -- the digest key ----------------------------------------------------------------------------------------
def key(s: Session, create: bool = False) -> bytes | None:
    """The workspace's record digest key; made (in the caller's transaction) when ``create`` and missing.

    None when it is missing (and not made) or unreadable.
    """
    row = s.get(db.WorkspaceInfo, KEY_INFO)
    if row is None:
        if not create:
            return None
        row = db.WorkspaceInfo(key=KEY_INFO, value=secrets.token_hex(32))
        s.add(row)
        s.flush()
    try:
        secret = bytes.fromhex(row.value)
    except (TypeError, ValueError):
        return None
    return secret if len(secret) == 32 else None


def fingerprint(secret: bytes) -> str:
    """A short name of a digest key that says nothing about it: which key the trail's digests were made with."""
    return hashlib.sha256(b"nomina record digest key\0" + secret).hexdigest()[:16]


# -- digests ----------------------------------------------------------------------------------------------
def digests(s: Session, secret: bytes, keys: Iterable[str] | None = None) -> dict[str, str]:
    """The digest of each record that exists, by key: of ``keys``, or of every record when None.

    Records that do not exist are left out. Reads in bulk (a few queries per kind), so digesting every
    record of a workspace costs about as much as reading its rows once.
    """
    return {k: _hmac(secret, v) for k, v in state(s, keys).items()}


def state(s: Session, keys: Iterable[str] | None = None) -> dict[str, Any]:
    """The canonical state (plain JSON data) of each record that exists, by key (see :func:`digests`)."""
    wanted: dict[str, list[str]] | None = None
    if keys is not None:
        wanted = defaultdict(list)
        for k in keys:
            kind, ident = parse_key(k)
            wanted[kind].append(ident)
    found: dict[str, Any] = {}
    collectors = (
        ("case", _cases),
        ("reference", _references),
        ("search", _searches),
        ("user", _users),
        ("calibration", _calibrations),
    )
    for kind, collect in collectors:
        ids = None if wanted is None else wanted.get(kind)
        if wanted is not None and not ids:
            continue
        for ident, value in collect(s, ids):
            found[record_key(kind, ident)] = value
    return found


def _hmac(secret: bytes, value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
    return hmac.new(secret, text.encode("utf-8"), hashlib.sha256).hexdigest()


def _plain(value: Any) -> Any:
    """A column's value as the canonical form holds it: the value the database returns, but bytes as their
    SHA-256 and dates and times as ISO 8601 (on SQLite they are returned as the text stored already)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return "sha256:" + hashlib.sha256(bytes(value)).hexdigest()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value  # text, integers, floats (json writes repr(float); NaN and infinities as NaN, Infinity)


def _rows(
    s: Session, model: type[db.Base], column: str | None = None, values: Sequence[Any] | None = None
) -> Iterator[dict[str, Any]]:
    """Every row of ``model``, every column as stored, as a dict without NULLs: where ``column`` is one of
    ``values`` when both are given, where ``column`` is not NULL when only it is.

    ``SELECT *``: a column added by a later migration is covered without anyone listing it here.
    """
    table = model.__table__
    assert isinstance(table, Table)
    base = f'SELECT * FROM "{table.name}"'
    if column is None:
        batches: list[tuple[TextClause, dict[str, Any]]] = [(text(base), {})]
    elif values is None:
        batches = [(text(f'{base} WHERE "{column}" IS NOT NULL'), {})]
    else:
        stmt = text(f'{base} WHERE "{column}" IN :values').bindparams(bindparam("values", expanding=True))
        batches = [(stmt, {"values": list(values[i : i + _CHUNK])}) for i in range(0, len(values), _CHUNK)]
    for stmt, params in batches:
        result = s.execute(stmt, params)
        names = list(result.keys())
        for row in result:
            pairs = zip(names, row, strict=True)
            yield {
                name: v if type(v) in _SIMPLE else _plain(v)
                for name, v in pairs
                if v is not None and name not in _DERIVED
            }


def _grouped(rows: Iterable[dict[str, Any]], by: str) -> dict[Any, list[dict[str, Any]]]:
    out: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        out[row.get(by)].append(row)
    for group in out.values():
        group.sort(key=lambda r: (_sortable(r.get("id")), _sortable(r.get("rank"))))
    return out


def _sortable(value: Any) -> tuple[str, Any]:
    """A raw value as a sort key that orders values of different types too (a rank edited into text)."""
    return type(value).__name__, value


def _photo_links(
    s: Session, model: type[db.Base], owner: str, face_owner: str, owners: Collection[str] | None
) -> dict[Any, list[dict[str, Any]]]:
    """The photo links of ``owners`` (all when None), each with its stored photo's row and its faces."""
    links = list(_rows(s, model, owner, None if owners is None else list(owners)))
    ids = [link["id"] for link in links]
    if owners is None:
        faces = _grouped(_rows(s, db.Face, face_owner), face_owner)
        photos = {p["sha256"]: p for p in _rows(s, db.Photo)}
    else:
        faces = _grouped(_rows(s, db.Face, face_owner, ids), face_owner)
        photos = {p["sha256"]: p for p in _rows(s, db.Photo, "sha256", sorted({lk["photo_sha256"] for lk in links}))}
    for link in links:
        link["faces"] = faces.get(link["id"], [])
        link["photo"] = photos.get(link["photo_sha256"])
    return _grouped(links, owner)


def _cases(s: Session, ids: list[str] | None) -> Iterator[tuple[str, Any]]:
    cases = list(_rows(s, db.Case, "id", ids))
    present = None if ids is None else [c["id"] for c in cases]
    photos = _photo_links(s, db.CasePhoto, "case_id", "case_photo_id", present)
    idents = list(_rows(s, db.Identification, "case_id", present))
    checks = {
        v["identification_id"]: v
        for v in _rows(s, db.Verification, "identification_id", None if ids is None else [i["id"] for i in idents])
    }
    for i in idents:
        i["verification"] = checks.get(i["id"])
    by_case = _grouped(idents, "case_id")
    for c in cases:
        yield c["id"], {"case": c, "photos": photos.get(c["id"], []), "identifications": by_case.get(c["id"], [])}


def _references(s: Session, ids: list[str] | None) -> Iterator[tuple[str, Any]]:
    refs = list(_rows(s, db.Reference, "id", ids))
    present = None if ids is None else [r["id"] for r in refs]
    photos = _photo_links(s, db.ReferencePhoto, "reference_id", "reference_photo_id", present)
    for r in refs:
        yield r["id"], {"reference": r, "photos": photos.get(r["id"], [])}


def _numbers(ids: list[str] | None) -> list[int] | None:
    """The ids of numbered records (searches, calibrations) as numbers; an id that is not one names nothing."""
    return None if ids is None else [int(i) for i in ids if i.isascii() and i.isdigit()]


def _searches(s: Session, ids: list[str] | None) -> Iterator[tuple[str, Any]]:
    numbers = _numbers(ids)
    rows = list(_rows(s, db.Search, "id", numbers))
    present = None if ids is None else [r["id"] for r in rows]
    candidates = _grouped(_rows(s, db.Candidate, "search_id", present), "search_id")
    conclusions = _grouped(_rows(s, db.Conclusion, "search_id", present), "search_id")
    for r in rows:
        yield (
            str(r["id"]),
            {"search": r, "candidates": candidates.get(r["id"], []), "conclusions": conclusions.get(r["id"], [])},
        )


def _users(s: Session, ids: list[str] | None) -> Iterator[tuple[str, Any]]:
    rows = {r["name"]: r for r in _rows(s, db.User, "name", ids)}
    sessions = _grouped(_rows(s, db.LoginSession, "user", ids), "user")
    tokens = _grouped(_rows(s, db.ApiToken, "user", ids), "user")
    # Sessions and tokens under a name no user has are a record of their own, which no event ever recorded:
    # written behind Nomina's back (users are never deleted), and shown as such.
    for name in sorted(rows.keys() | sessions.keys() | tokens.keys(), key=str):
        # Keys only when there is something under them, so a user without sessions or tokens keeps the
        # digest it had before sessions and tokens existed.
        extra = {"user": rows.get(name), "sessions": sessions.get(name), "tokens": tokens.get(name)}
        yield name, {k: v for k, v in extra.items() if v}


def _calibrations(s: Session, ids: list[str] | None) -> Iterator[tuple[str, Any]]:
    for r in _rows(s, db.Calibration, "id", _numbers(ids)):
        yield str(r["id"]), {"calibration": r}
