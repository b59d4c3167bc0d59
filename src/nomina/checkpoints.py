"""Signed checkpoints of the audit trail: proof, kept outside the workspace, of where the trail stood.

The hash chain shows an edited trail, but someone able to rewrite the whole database file can rebuild a
consistent chain, head and record digests included (the digest key is in the database too). A checkpoint
defeats that: it holds the head (``seq`` and hash) and the digest of every record at one moment, signed
with an Ed25519 private key that the responsible authority keeps *outside* the workspace. Later, anyone
holding the public key can show that the trail still leads there: the checkpoint's head event is still
in the chain with the same hash (so every event up to it is as it was), the chain from it to the present
head verifies, and every record the checkpoint names is either as it was then or was changed by events
after it, each taking the record as the previous one left it. A rewritten trail no longer leads to the
checkpoint's head; without the private key, no new checkpoint can be made to match the rewrite.

File format (JSON, UTF-8): ``{"format": "nomina-audit-checkpoint/1", "written_at", "written_by", "head":
{"seq", "hash"}, "digest_key", "kinds", "records": {key: digest}, "public_key", "signature"}``. ``kinds``
lists the kinds of record the checkpoint covers (:data:`nomina.digests.KINDS` when it was written; a
checkpoint without it covers :data:`FIRST_KINDS`, those before calibrations were records). ``signature`` is
the Ed25519 signature (base64) of the canonical JSON (sorted keys, no spaces, UTF-8) of every other field;
``public_key`` is the fingerprint of the key that verifies it (:func:`fingerprint`), ``digest_key`` the
fingerprint of the workspace's record digest key (:func:`nomina.digests.fingerprint`). Keys are PEM files:
the private key PKCS#8, the public key SubjectPublicKeyInfo (:func:`generate_keys`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, digests
from .errors import AuditBroken, Conflict, FileMissing, InvalidField, RecordTampered
from .files import check_output
from .records import Record
from .store import schema as db

__all__ = [
    "FORMAT",
    "CheckpointCheck",
    "CheckpointFile",
    "check",
    "fingerprint",
    "generate_keys",
    "load",
    "make",
    "private_key",
    "public_key",
    "read",
    "write_keys",
]

#: The ``format`` of a checkpoint file this version writes and reads.
FORMAT = "nomina-audit-checkpoint/1"
#: The kinds of record a checkpoint without ``kinds`` covers: those of the Nomina that wrote the first ones.
FIRST_KINDS = ("case", "reference", "search", "user")


# -- keys ----------------------------------------------------------------------------------------------
def generate_keys() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair as PEM: (private key, PKCS#8 unencrypted; public key, SubjectPublicKeyInfo)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def write_keys(prefix: Path | str, private: bytes, public: bytes) -> tuple[Path, Path]:
    """Write ``PREFIX.key`` (readable by its owner only) and ``PREFIX.pub``; refuses to overwrite either."""
    base = Path(prefix)
    paths = (base.with_name(base.name + ".key"), base.with_name(base.name + ".pub"))
    if not base.parent.is_dir():
        raise InvalidField(f"out: {base.parent} is not a folder")
    check_output(paths[0], "out", why=": a private key kept beside the workspace protects nothing")
    for path in paths:
        if path.exists():
            raise Conflict(f"{path}: already exists; not overwriting a key", record=str(path))
    for path, data, mode in ((paths[0], private, 0o600), (paths[1], public, 0o644)):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    return paths


def _read(path: Path | str, what: str) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise FileMissing(f"{path}: no such {what} file", field=what.replace(" ", "_"))
    try:
        return path.read_bytes()
    except OSError as exc:
        raise FileMissing(
            f"{path}: cannot read the {what} file ({exc.strerror})", field=what.replace(" ", "_")
        ) from None


def private_key(path: Path | str) -> Ed25519PrivateKey:
    """The Ed25519 private key in a PEM (PKCS#8, unencrypted) file; InvalidField naming the file otherwise."""
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise InvalidField(
            f"{path}: not an unencrypted PEM (PKCS#8) private key", field="private_key", record=str(path)
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidField(f"{path}: a private key, but not an Ed25519 one", field="private_key", record=str(path))
    return key


def public_key(path: Path | str) -> Ed25519PublicKey:
    """The Ed25519 public key in a PEM (SubjectPublicKeyInfo) file; InvalidField naming the file otherwise."""
    data = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise InvalidField(
            f"{path}: not a PEM (SubjectPublicKeyInfo) public key", field="public_key", record=str(path)
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidField(f"{path}: a public key, but not an Ed25519 one", field="public_key", record=str(path))
    return key


def fingerprint(key: Ed25519PublicKey) -> str:
    """A public key's short name: ``ed25519:`` and the first 16 hex digits of the SHA-256 of its raw bytes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# -- writing -------------------------------------------------------------------------------------------
def make(s: Session, key: Ed25519PrivateKey, written_by: str) -> tuple[bytes, dict[str, Any]]:
    """A signed checkpoint of the trail as it stands in ``s`` (its file's bytes, and its contents).

    Refuses a trail that does not verify (AuditBroken for the chain, RecordTampered for the records): a
    signature must never vouch for a tampered state. Also refuses a trail begun before record digests that
    nothing has been recorded in since (AuditBroken): it has no record digests to sign yet.
    """
    result = audit.verify(s)
    if result.broken_seq is not None:
        raise AuditBroken(f"audit trail broken at seq {result.broken_seq}: {result.reason}; no checkpoint written")
    if result.records:
        raise RecordTampered(f"{result.records[0]}; no checkpoint written: run nomina audit verify")
    secret = digests.key(s)
    if secret is None or (result.events and not result.records_checked):
        raise AuditBroken(
            "audit trail: no record digests yet (a trail begun before them); record any action first, "
            "then write the checkpoint"
        )
    head = audit.head(s)
    body: dict[str, Any] = {
        "format": FORMAT,
        "written_at": datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z",
        "written_by": written_by,
        "head": {"seq": head.seq, "hash": head.hash},
        "digest_key": digests.fingerprint(secret),
        "kinds": list(digests.KINDS),
        "records": dict(sorted(digests.digests(s, secret).items())),
        "public_key": fingerprint(key.public_key()),
    }
    signature = base64.b64encode(key.sign(_canonical(body))).decode("ascii")
    signed = {**body, "signature": signature}
    return (json.dumps(signed, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8"), signed


# -- checking ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckpointCheck(Record):
    """What :func:`check` found: ``ok`` when the trail still leads to the checkpoint and every record it
    names is as it was then or was changed by later events; otherwise ``findings``, one line each."""

    ok: bool
    seq: int
    hash: str
    written_at: str
    public_key: str
    records: int
    findings: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        what = f"checkpoint of seq {self.seq} ({self.written_at}, key {self.public_key})"
        if self.ok:
            return (
                f"{what}: the trail still leads to it; each of its {self.records} records is as it was then "
                "or was changed by later events"
            )
        return "\n".join([f"{what}: the trail does not agree with it:", *self.findings])


@dataclass(frozen=True)
class CheckpointFile(Record):
    """A checkpoint written: where, the head it signs, how many records, its SHA-256, the signing key."""

    path: str
    seq: int
    hash: str
    records: int
    sha256: str
    public_key: str


def read(path: Path | str, key: Ed25519PublicKey) -> dict[str, Any]:
    """The checkpoint in file ``path``, once its signature verifies with ``key`` (see :func:`load`)."""
    return load(_read(path, "checkpoint"), key, str(path))


def load(data: bytes, key: Ed25519PublicKey, name: str = "checkpoint") -> dict[str, Any]:
    """The checkpoint in ``data``, once its signature verifies with ``key``; InvalidField otherwise."""
    try:
        found = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidField(f"{name}: not a Nomina audit checkpoint (not JSON)", field="checkpoint") from None
    if not isinstance(found, dict) or found.get("format") != FORMAT:
        raise InvalidField(f"{name}: not a Nomina audit checkpoint (format is not {FORMAT})", field="checkpoint")
    body = {k: v for k, v in found.items() if k != "signature"}
    try:
        signature = base64.b64decode(str(found.get("signature", "")), validate=True)
        key.verify(signature, _canonical(body))
    except (InvalidSignature, ValueError):
        raise InvalidField(
            f"{name}: the signature does not verify with public key {fingerprint(key)} "
            f"(the checkpoint names {found.get('public_key')}): a different key, or the file was edited",
            field="checkpoint",
        ) from None
    head, records = found.get("head"), found.get("records")
    if not (
        isinstance(head, dict)
        and isinstance(head.get("seq"), int)
        and isinstance(head.get("hash"), str)
        and isinstance(records, dict)
    ):
        raise InvalidField(f"{name}: signed, but without a head and records", field="checkpoint")
    kinds = found.get("kinds", FIRST_KINDS)
    if not (isinstance(kinds, list | tuple) and all(isinstance(k, str) for k in kinds)):
        raise InvalidField(f"{name}: signed, but its kinds of record are not a list of names", field="checkpoint")
    return found


def check(s: Session, checkpoint: dict[str, Any]) -> CheckpointCheck:
    """Whether the trail in ``s`` still leads to ``checkpoint`` (as :func:`load` returns it).

    The checkpoint's head event must still be in the chain with the same hash (so, the chain being intact,
    every event up to it is as it was), and the chain must verify from there to the present head
    (:func:`nomina.audit.verify`; its own findings are reported by it, not here). Each record the
    checkpoint names must be as it was then, unless a later event changed it, in which case the first
    such event must have found it as the checkpoint did; a record the checkpoint does not name must have
    been created by a later event.
    """
    seq, expected = int(checkpoint["head"]["seq"]), str(checkpoint["head"]["hash"])
    findings: list[str] = []
    result = audit.verify(s)
    if result.broken_seq is not None:
        findings.append(f"the trail itself is broken at seq {result.broken_seq}: {result.reason}")
    event = s.get(db.AuditEvent, seq) if seq > 0 else None
    if seq > 0 and (event is None or event.hash != expected):
        findings.append(
            f"seq {seq} is {'missing' if event is None else 'not the event the checkpoint signed'}: "
            "the trail no longer leads to the checkpoint's head; it was rewritten"
        )
        return _result(checkpoint, findings)
    secret = digests.key(s)
    if secret is None or digests.fingerprint(secret) != checkpoint.get("digest_key"):
        findings.append("the record digest key in workspace_info is not the checkpoint's: replaced or edited")
        return _result(checkpoint, findings)

    first_after: dict[str, tuple[int, str, Any]] = {}
    stmt = select(db.AuditEvent.seq, db.AuditEvent.action, db.AuditEvent.details).where(db.AuditEvent.seq > seq)
    for n, action, details in s.execute(stmt.order_by(db.AuditEvent.seq)):
        try:
            context = json.loads(details).get(audit.CONTEXT)
        except (AttributeError, TypeError, ValueError):
            continue  # the chain check reports it
        records = context.get("records") if isinstance(context, dict) else None
        if isinstance(records, dict):
            for k, value in records.items():
                first_after.setdefault(k, (n, action, value))
    signed: dict[str, Any] = checkpoint["records"]
    now = digests.digests(s, secret)
    kinds = checkpoint.get("kinds", FIRST_KINDS)
    for k in sorted(set(signed) | set(now) | set(first_after)):
        if k not in signed and k.split(" ", 1)[0] not in kinds:
            continue  # a kind of record this checkpoint was written without: verify accounts for it
        then = signed.get(k)
        later = first_after.get(k)
        if later is not None:
            n, action, value = later
            before = value[0] if isinstance(value, list) and len(value) == 2 else value
            if before != then:
                state = "as the checkpoint had it" if then is not None else "absent, as the checkpoint had it"
                findings.append(f"{k}: not {state} when seq {n} ({action}) changed it: changed behind Nomina's back")
        elif now.get(k) != then:
            if then is None:
                findings.append(
                    f"{k}: not in the checkpoint, and no later event created it: added behind Nomina's back"
                )
            elif k not in now:
                findings.append(f"{k}: in the checkpoint, gone now, and no later event erased it")
            else:
                findings.append(f"{k}: differs from the checkpoint, and no later event changed it")
    return _result(checkpoint, findings)


def _result(checkpoint: dict[str, Any], findings: list[str]) -> CheckpointCheck:
    return CheckpointCheck(
        ok=not findings,
        seq=int(checkpoint["head"]["seq"]),
        hash=str(checkpoint["head"]["hash"]),
        written_at=str(checkpoint.get("written_at")),
        public_key=str(checkpoint.get("public_key")),
        records=len(checkpoint["records"]),
        findings=findings,
    )
