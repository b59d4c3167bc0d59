"""The workspace database schema (SQLAlchemy 2 declarative models).

Changes to these tables are made by Alembic migrations in ``migrations/versions``; a test checks that
the migrations produce exactly this schema.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .checked import check_reads

__all__ = [
    "AuditEvent",
    "Base",
    "Calibration",
    "Candidate",
    "Case",
    "CasePhoto",
    "Conclusion",
    "Face",
    "GalleryChange",
    "Identification",
    "PendingErasure",
    "Photo",
    "Reference",
    "ReferencePhoto",
    "Search",
    "Verification",
    "User",
    "WorkspaceInfo",
]


class Base(DeclarativeBase):
    pass


def _id_skeleton(context: Any) -> str:
    """The ``id_skeleton`` of a reference or case row being inserted, made from its id; so every insert through
    SQLAlchemy (ORM objects, bulk and Core inserts) fills it. Ids never change (``update`` cannot set one)."""
    from ..records import id_skeleton

    return id_skeleton(context.get_current_parameters()["id"])


class WorkspaceInfo(Base):
    """Key/value facts about the workspace: model identity, creation time, index generation."""

    __tablename__ = "workspace_info"
    # Read as they are: a damaged setting is refused naming the setting, and an admin sets it again
    # (nomina.workspace); a damaged chain head or key is the audit trail's own finding.
    __checked__ = False
    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Photo(Base):
    """A photo's bytes as supplied, stored once under its SHA-256 in the photo store."""

    __tablename__ = "photos"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    format: Mapped[str] = mapped_column(String)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    stored_at: Mapped[datetime] = mapped_column(DateTime)


class Reference(Base):
    """A missing person's record."""

    __tablename__ = "references"
    id: Mapped[str] = mapped_column(String, primary_key=True)
    name: Mapped[str] = mapped_column(String)
    sex: Mapped[str | None] = mapped_column(String)
    birth_year: Mapped[int | None] = mapped_column(Integer)
    last_seen_on: Mapped[date | None] = mapped_column(Date)
    last_seen_at: Mapped[str | None] = mapped_column(String)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    # Since schema 0004: the date after which `nomina retention apply` erases the record.
    retain_until: Mapped[date | None] = mapped_column(Date)
    # Since schema 0011: the id's skeleton (nomina.records.id_skeleton), to find ids that look like a new one
    # with one indexed query. Derived from the id: not part of the record's digest. NULL on a row inserted
    # by other means than SQLAlchemy until the next enrolment fills it (nomina.references.refresh_skeletons).
    id_skeleton: Mapped[str | None] = mapped_column(String, index=True, default=_id_skeleton)
    photos: Mapped[list[ReferencePhoto]] = relationship(
        back_populates="reference", cascade="all, delete-orphan", order_by="ReferencePhoto.id"
    )


class ReferencePhoto(Base):
    """One photo of a reference with its provenance: who supplied it, from what, on what legal basis."""

    __tablename__ = "reference_photos"
    __table_args__ = (UniqueConstraint("reference_id", "photo_sha256"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference_id: Mapped[str] = mapped_column(ForeignKey("references.id", ondelete="CASCADE"), index=True)
    photo_sha256: Mapped[str] = mapped_column(ForeignKey("photos.sha256"), index=True)
    file_name: Mapped[str] = mapped_column(String)
    source: Mapped[str] = mapped_column(String)
    supplied_by: Mapped[str] = mapped_column(String)
    legal_basis: Mapped[str] = mapped_column(String)
    consent: Mapped[str | None] = mapped_column(String)
    photo_date: Mapped[date | None] = mapped_column(Date)
    added_at: Mapped[datetime] = mapped_column(DateTime)
    added_by: Mapped[str] = mapped_column(String)
    # Set when the photo failed the quality gate and was enrolled anyway: the reason given, and by whom.
    quality_override: Mapped[str | None] = mapped_column(Text)
    quality_override_by: Mapped[str | None] = mapped_column(String)
    reference: Mapped[Reference] = relationship(back_populates="photos")
    # never set or read: it tells a flush that the photo's row goes in before its links (a batch of rows is
    # written in one flush)
    photo: Mapped[Photo] = relationship()
    faces: Mapped[list[Face]] = relationship(
        back_populates="reference_photo", cascade="all, delete-orphan", order_by="Face.id"
    )


class Case(Base):
    """An unidentified person, deceased or living."""

    __tablename__ = "cases"
    id: Mapped[str] = mapped_column(String, primary_key=True)
    kind: Mapped[str] = mapped_column(String)
    found_on: Mapped[date | None] = mapped_column(Date)
    found_at: Mapped[str | None] = mapped_column(String)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # Since schema 0011: the id's skeleton, as for references.
    id_skeleton: Mapped[str | None] = mapped_column(String, index=True, default=_id_skeleton)
    photos: Mapped[list[CasePhoto]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="CasePhoto.id"
    )
    searches: Mapped[list[Search]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="Search.id"
    )
    identifications: Mapped[list[Identification]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="Identification.id"
    )


class CasePhoto(Base):
    """One photo of a case. ``no_face`` flags a photo in which the detector found nothing."""

    __tablename__ = "case_photos"
    __table_args__ = (UniqueConstraint("case_id", "photo_sha256"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    photo_sha256: Mapped[str] = mapped_column(ForeignKey("photos.sha256"), index=True)
    file_name: Mapped[str] = mapped_column(String)
    photo_date: Mapped[date | None] = mapped_column(Date)
    no_face: Mapped[bool] = mapped_column(default=False)
    added_at: Mapped[datetime] = mapped_column(DateTime)
    added_by: Mapped[str] = mapped_column(String)
    case: Mapped[Case] = relationship(back_populates="photos")
    photo: Mapped[Photo] = relationship()  # as ReferencePhoto.photo
    faces: Mapped[list[Face]] = relationship(
        back_populates="case_photo", cascade="all, delete-orphan", order_by="Face.id"
    )


class Face(Base):
    """One face of a reference or case photo: where it is, how good it is, and its embedding."""

    __tablename__ = "faces"
    __table_args__ = (
        CheckConstraint("(reference_photo_id IS NULL) != (case_photo_id IS NULL)", name="face_has_one_owner"),
        # Since schema 0005: an erased face's id is never given to another face (searches keep it).
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference_photo_id: Mapped[int | None] = mapped_column(
        ForeignKey("reference_photos.id", ondelete="CASCADE"), index=True
    )
    case_photo_id: Mapped[int | None] = mapped_column(ForeignKey("case_photos.id", ondelete="CASCADE"), index=True)
    number_in_photo: Mapped[int | None] = mapped_column(Integer)  # None when marked by hand
    box: Mapped[list[float]] = mapped_column(JSON)
    landmarks: Mapped[list[list[float]]] = mapped_column(JSON)
    manual: Mapped[bool] = mapped_column(default=False)
    detector_score: Mapped[float | None] = mapped_column(Float)
    inter_eye_px: Mapped[float] = mapped_column(Float)
    sharpness: Mapped[float] = mapped_column(Float)
    brightness: Mapped[float] = mapped_column(Float)
    roll: Mapped[float] = mapped_column(Float)
    yaw: Mapped[float | None] = mapped_column(Float)
    pitch: Mapped[float | None] = mapped_column(Float)
    # Measured since schema 0002; None on faces added before.
    contrast: Mapped[float | None] = mapped_column(Float)
    noise: Mapped[float | None] = mapped_column(Float)
    # Length of the embedding network's output before normalisation, a quality measure: SFace's since schema
    # 0012 (SFace-based models), ArcFace's since 0013 (ArcFace models); None for other models and before.
    sface_norm: Mapped[float | None] = mapped_column(Float)
    arcface_norm: Mapped[float | None] = mapped_column(Float)
    model: Mapped[str] = mapped_column(String)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32, L2-normalised
    added_at: Mapped[datetime] = mapped_column(DateTime)
    reference_photo: Mapped[ReferencePhoto | None] = relationship(back_populates="faces")
    case_photo: Mapped[CasePhoto | None] = relationship(back_populates="faces")


class Search(Base):
    """One search of a case against the gallery, with everything needed to account for it later."""

    __tablename__ = "searches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    case_face_ids: Mapped[list[int]] = mapped_column(JSON)
    model: Mapped[dict[str, object]] = mapped_column(JSON)
    settings: Mapped[dict[str, object]] = mapped_column(JSON)
    gallery_references: Mapped[int] = mapped_column(Integer)
    gallery_faces: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    os_user: Mapped[str] = mapped_column(String)
    nomina_version: Mapped[str] = mapped_column(String)
    # Since schema 0002: the calibration in use when the search ran (None: uncalibrated), and the warnings
    # that came with it (case faces below the quality gate).
    calibration_id: Mapped[int | None] = mapped_column(Integer)
    warnings: Mapped[list[str] | None] = mapped_column(JSON)
    # Since schema 0004: the Nomina user who ran the search.
    user: Mapped[str | None] = mapped_column(String)
    case: Mapped[Case] = relationship(back_populates="searches")
    candidates: Mapped[list[Candidate]] = relationship(
        back_populates="search", cascade="all, delete-orphan", order_by="Candidate.rank"
    )
    conclusions: Mapped[list[Conclusion]] = relationship(
        back_populates="search", cascade="all, delete-orphan", order_by="Conclusion.id"
    )


class Candidate(Base):
    """One reference in a search's ranked result. Ids are kept as text: the record may be erased later."""

    __tablename__ = "candidates"
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id", ondelete="CASCADE"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference_id: Mapped[str] = mapped_column(String, index=True)
    score: Mapped[float] = mapped_column(Float)
    reference_face_id: Mapped[int] = mapped_column(Integer)
    photo_sha256: Mapped[str] = mapped_column(String(64))
    case_face_id: Mapped[int] = mapped_column(Integer)
    search: Mapped[Search] = relationship(back_populates="candidates")


class Calibration(Base):
    """A score -> likelihood-ratio mapping fitted on labelled data; the newest one is in use."""

    __tablename__ = "calibrations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[dict[str, object]] = mapped_column(JSON)  # identity of the model whose scores it maps
    mapping: Mapped[dict[str, object]] = mapped_column(JSON)  # nomina.calibration.Calibration.to_dict()
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String)


class User(Base):
    """A person who uses Nomina, with the roles that decide what they may do (see nomina.users).

    Users are disabled, never deleted, so that every name in the audit trail keeps meaning someone.
    ``password_hash`` is an argon2id hash (see nomina.auth); ``failed_logins`` counts failed logins in a
    row and ``locked_until`` ends a lockout (both NULL when there is none).
    """

    __tablename__ = "users"
    name: Mapped[str] = mapped_column(String, primary_key=True)
    roles: Mapped[list[str]] = mapped_column(JSON)  # a subset of nomina.users.ROLES, never empty
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String)  # a user name; the OS user for the first user
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime)
    disabled_by: Mapped[str | None] = mapped_column(String)
    password_hash: Mapped[str | None] = mapped_column(String)
    failed_logins: Mapped[int | None] = mapped_column(Integer)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)


class GalleryChange(Base):
    """A reference face added or removed, logged by a trigger on ``faces`` (since schema 0010): how every
    process brings its in-memory gallery index up to date. No biometric data: a face id and which way."""

    __tablename__ = "gallery_changes"
    __table_args__ = ({"sqlite_autoincrement": True},)
    # Read as they are: the index's update skips a row naming no face and audit verify reports it, so that
    # one such row stops no search or erasure (nomina.indexing).
    __checked__ = False
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    face_id: Mapped[int] = mapped_column(Integer)
    added: Mapped[bool] = mapped_column(Boolean)


class UserPreference(Base):
    """One of a user's own display settings (nomina.users.PREFERENCES); not a record, not in any digest."""

    __tablename__ = "user_preferences"
    user: Mapped[str] = mapped_column(ForeignKey("users.name"), primary_key=True)
    name: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class LoginSession(Base):
    """A session opened by a login (``nomina login``, the web pages): the SHA-256 of its secret, never the
    secret; ids are never reused, since the audit trail names sessions by id (see nomina.auth)."""

    __tablename__ = "login_sessions"
    __table_args__ = (
        CheckConstraint("kind IN ('cli', 'web')", name="login_session_kind"),
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user: Mapped[str] = mapped_column(String, ForeignKey("users.name"), index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)  # absolute expiry
    idle_minutes: Mapped[int] = mapped_column(Integer)  # ends after this long without a call
    os_user: Mapped[str | None] = mapped_column(String)
    host: Mapped[str | None] = mapped_column(String)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    ended_why: Mapped[str | None] = mapped_column(String)


class ApiToken(Base):
    """An API token a user made for their programs: the SHA-256 of its secret, never the secret."""

    __tablename__ = "api_tokens"
    __table_args__ = ({"sqlite_autoincrement": True},)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user: Mapped[str] = mapped_column(String, ForeignKey("users.name"), index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_by: Mapped[str | None] = mapped_column(String)


class CredentialUse(Base):
    """When a session or token was last used: kept apart from them, since they belong to their user's
    record digest and a use is not a change the audit trail accounts for."""

    __tablename__ = "credential_use"
    secret_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_used_at: Mapped[datetime] = mapped_column(DateTime)


class AuditEvent(Base):
    """One entry of the append-only, hash-chained audit trail (see nomina.audit).

    ``at`` is text (ISO 8601, UTC, microseconds) so that it reads back exactly as it was hashed.
    ``prev_hash`` is unique, so two events can never extend the same link: the chain cannot fork.
    Migration 0003 also adds triggers that refuse UPDATE and DELETE on this table.
    """

    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String)
    actor: Mapped[str] = mapped_column(String)
    action: Mapped[str] = mapped_column(String, index=True)
    case_id: Mapped[str | None] = mapped_column(String, index=True)
    reference_id: Mapped[str | None] = mapped_column(String, index=True)
    search_id: Mapped[int | None] = mapped_column(Integer, index=True)
    details: Mapped[str] = mapped_column(Text)  # canonical JSON of the event's other fields
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64))


class Conclusion(Base):
    """An examiner's conclusion on one candidate of a search; a later one on the same candidate supersedes it."""

    __tablename__ = "conclusions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("searches.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    reference_id: Mapped[str] = mapped_column(String)
    examiner: Mapped[str] = mapped_column(String)
    conclusion: Mapped[str] = mapped_column(String)  # excluded, possible match, insufficient information
    reasons: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime)
    # the feature checklist of the comparison page (nomina.workflow.FEATURES), NULL when none was filled
    checklist: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    search: Mapped[Search] = relationship(back_populates="conclusions")


class Identification(Base):
    """A proposed identification of a case as a reference, and where its verification left it.

    ``status``: proposed (awaiting a verifier), identified (a second person agreed), disputed (the
    verifier did not agree: back to review, both conclusions kept) or withdrawn. Only the workflow in
    nomina.workflow changes it.
    """

    __tablename__ = "identifications"
    # At most one identification of a case is open (not withdrawn): the workflow checks it in the same write
    # transaction, and the database refuses a second one whatever wrote it.
    __table_args__ = (
        Index(
            "ux_identifications_one_open_per_case",
            "case_id",
            unique=True,
            sqlite_where=text("status != 'withdrawn'"),
            postgresql_where=text("status != 'withdrawn'"),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    reference_id: Mapped[str] = mapped_column(String, index=True)  # kept as text: the record may be erased
    search_id: Mapped[int | None] = mapped_column(Integer)
    proposed_by: Mapped[str] = mapped_column(String)
    proposed_at: Mapped[datetime] = mapped_column(DateTime)
    reasons: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_by: Mapped[str | None] = mapped_column(String)
    close_reason: Mapped[str | None] = mapped_column(Text)
    case: Mapped[Case] = relationship(back_populates="identifications")
    verification: Mapped[Verification | None] = relationship(
        back_populates="identification", cascade="all, delete-orphan"
    )


class Verification(Base):
    """The verifier's own conclusion on a proposed identification, recorded before they saw the examiner's."""

    __tablename__ = "verifications"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identification_id: Mapped[int] = mapped_column(ForeignKey("identifications.id", ondelete="CASCADE"), unique=True)
    verifier: Mapped[str] = mapped_column(String)
    conclusion: Mapped[str] = mapped_column(String)  # same person, different people, inconclusive
    reasons: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime)
    identification: Mapped[Identification] = relationship(back_populates="verification")


class PendingErasure(Base):
    """A file step of a committed erasure, not done yet (since schema 0007).

    ``step`` is ``photo``, the photo file named ``photo_sha256`` to overwrite and remove, or ``index``, every
    index file (after a reference: they hold every reference vector). The erasing transaction writes these
    rows; :func:`nomina.erasure.finish` does the steps and deletes them in one later write transaction, and
    opening the workspace or maintaining it finishes any that an interrupted process left.
    """

    __tablename__ = "pending_erasures"
    __table_args__ = (
        CheckConstraint("(step = 'photo') = (photo_sha256 IS NOT NULL)", name="pending_erasure_names_its_file"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    step: Mapped[str] = mapped_column(String)  # "photo" or "index"
    photo_sha256: Mapped[str | None] = mapped_column(String(64))


check_reads(Base)  # a value edited into a column behind Nomina's back is refused where it is read
