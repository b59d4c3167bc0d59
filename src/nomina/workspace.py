"""The workspace: references, cases, photos, faces and searches in one folder.

``Workspace`` is the Python API; the command line is a thin layer over it. Every change is all or
nothing: photos are analysed before anything is written, the database changes in one transaction, and
photo files written for a change that fails are removed again, so a refused command leaves the
workspace exactly as it was.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from . import __version__, audit, casefile, erasure, users, workflow
from .calibration import Calibration
from .errors import (
    Conflict,
    FaceNumberInvalid,
    InvalidField,
    ModelMismatch,
    NoFaceFound,
    NominaError,
    NotAWorkspace,
    NotFound,
    PermissionDenied,
    QualityTooLow,
    WorkspaceError,
)
from .faces import Face, FaceAnalyzer
from .imaging import DecodedImage, decode_image, read_photo, sha256_hex
from .importing import ImportReport, RowFailure, read_manifest, row_inputs
from .index import ExactIndex
from .index import remove_files as remove_index_files
from .models import MODELS, FaceModel, load_model
from .parallel import AnalyzerPool, ordered_map
from .quality import gate, stored
from .records import (
    CaseFields,
    PhotoInput,
    Provenance,
    ReferenceFields,
    parse_date,
    validate_update,
)
from .report import write_report
from .search import CaseFaceRef, SearchResult, age_warnings, calibration_summary, rank, result_from_row
from .settings import WORKSPACE_SETTINGS, Settings, load_settings, os_user, workspace_setting
from .store import DB_NAME, PhotoStore, connect, upgrade
from .store import schema as db
from .store.database import current_revision, head_revision

__all__ = ["EXPORT_NOTICE", "Workspace"]

#: What every export of identifications says about itself.
EXPORT_NOTICE = (
    "Verified identifications from face comparison: each was proposed by an examiner and verified by a different "
    "person. They are leads to be confirmed by other means (DNA, dental records, fingerprints, personal effects) "
    "before a family is informed."
)

T = TypeVar("T")
Progress = Callable[[int, int], None]
# Manifest rows written per transaction; a row refused for its contents (name differs, photo already
# enrolled) is refused before anything of it is written, so it costs only itself.
_IMPORT_BATCH = 32
# What a blind viewer sees in place of conclusions while an identification awaits verification.
_BLIND = "until the proposed identification is verified"
# Workspace settings are kept in workspace_info under this prefix, as JSON.
_CONFIG = "setting."


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


@dataclass
class _Prepared:
    """A photo read, decoded and analysed, ready to be written."""

    name: str
    data: bytes
    image: DecodedImage
    face: Face | None
    photo_date: Any = None
    quality_override: str | None = None  # set when the face failed the quality gate and was overridden

    @property
    def sha256(self) -> str:
        return self.image.sha256


class Workspace:
    """A Nomina workspace folder: ``nomina.db``, ``photos/`` and derived ``index/`` files.

    Open one with :meth:`create` or :meth:`open`; pass ``model`` to share a loaded model between
    workspaces (it must be the model the workspace was built with).
    """

    def __init__(
        self, path: Path, engine: Engine, settings: Settings, model: FaceModel | None, user: str | None = None
    ) -> None:
        self.path = path
        self.settings = settings
        #: The Nomina user every call acts as (checked against the workspace's users and roles).
        self.user = user or settings.user or None
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.photos = PhotoStore(path / "photos")
        self._model = model
        self._analyzers: AnalyzerPool | None = None
        self._index: tuple[str, ExactIndex] | None = None
        self._identity: dict[str, Any] | None = None

    # -- opening ----------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: Path | str,
        settings: Settings | None = None,
        model: FaceModel | None = None,
        config: dict[str, Any] | None = None,
        admin: str | None = None,
    ) -> Workspace:
        """Make a new workspace in ``path`` (created if needed) for the settings' model.

        ``config`` gives workspace settings (``nomina config``) other than their defaults. ``admin``
        names the first user, with the admin and examiner roles; the workspace then acts as that user.
        Without it the workspace has no users until ``add_user`` adds the first, an admin.
        """
        settings = settings or load_settings()
        chosen = {s.name: s.default for s in WORKSPACE_SETTINGS}
        chosen.update({k: workspace_setting(k, v) for k, v in (config or {}).items()})
        path = Path(path)
        if (path / DB_NAME).exists():
            raise Conflict(f"{path}: already a Nomina workspace")
        if path.exists() and not path.is_dir():
            raise WorkspaceError(f"{path}: exists and is not a folder")
        model = model or load_model(settings.model, settings.model_dir)
        created_dir = not path.exists()
        path.mkdir(parents=True, exist_ok=True)
        try:
            engine = connect(path / DB_NAME)
            upgrade(engine)
            with Session(engine) as s, s.begin():
                for key, value in {
                    "model": json.dumps(model.identity, sort_keys=True),
                    "created_at": _now().isoformat(),
                    "created_by": os_user(),
                    "nomina_version": __version__,
                    "gallery_generation": uuid.uuid4().hex,
                    **{_CONFIG + k: json.dumps(v) for k, v in chosen.items()},
                }.items():
                    s.add(db.WorkspaceInfo(key=key, value=value))
                if admin is not None:
                    users.add_user(s, admin, ("admin", "examiner"), None)
            (path / "photos").mkdir(exist_ok=True)
        except BaseException:
            for leftover in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm"):
                (path / leftover).unlink(missing_ok=True)
            if created_dir:
                path.rmdir()
            raise
        return cls(path, engine, settings, model, admin)

    @classmethod
    def open(
        cls,
        path: Path | str,
        settings: Settings | None = None,
        model: FaceModel | None = None,
        user: str | None = None,
    ) -> Workspace:
        """Open an existing workspace, acting as ``user`` (default: the setting NOMINA_USER)."""
        settings = settings or load_settings()
        path = Path(path)
        if not path.is_dir():
            raise NotAWorkspace(f"{path}: no such workspace folder (create one with `nomina init`)")
        if not (path / DB_NAME).is_file():
            raise NotAWorkspace(f"{path}: not a Nomina workspace (no {DB_NAME}; create one with `nomina init`)")
        engine = connect(path / DB_NAME)
        try:
            rev = current_revision(engine)
        except Exception:  # noqa: BLE001 - any failure here means the file is not our database
            raise NotAWorkspace(f"{path / DB_NAME}: not a Nomina database") from None
        if rev is None:
            raise NotAWorkspace(f"{path / DB_NAME}: not a Nomina database (no schema version)")
        if rev != head_revision():
            upgrade(engine)
        return cls(path, engine, settings, model, user)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- model --------------------------------------------------------------------------------------
    def _info(self, s: Session, key: str) -> str:
        row = s.get(db.WorkspaceInfo, key)
        if row is None:
            raise WorkspaceError(f"{self.path / DB_NAME}: workspace record {key!r} is missing")
        return row.value

    @property
    def model_identity(self) -> dict[str, Any]:
        """The model the workspace was built with: name and SHA-256 of each file (never changes)."""
        if self._identity is None:
            with self._sessions() as s:
                self._identity = json.loads(self._info(s, "model"))
        return dict(self._identity)

    @property
    def model(self) -> FaceModel:
        """The face model, loaded on first use and checked against the workspace's record."""
        recorded = self.model_identity
        if self._model is None:
            self._model = load_model(str(recorded["name"]), self.settings.model_dir)
        if self._model.identity != recorded:
            raise ModelMismatch(
                f"{self.path}: workspace built with model {_describe_identity(recorded)}, "
                f"but the model in use is {_describe_identity(self._model.identity)}; "
                "embeddings of different models cannot be compared"
            )
        return self._model

    def analyzer(self) -> FaceAnalyzer:
        """A face analyser for the calling thread (OpenCV networks must not be shared by threads)."""
        model = self.model
        if self._analyzers is None or self._analyzers.model is not model:
            self._analyzers = AnalyzerPool(model, self.settings)
        return self._analyzers.get()

    # -- users --------------------------------------------------------------------------------------------
    def _actor(self, s: Session, role: str | None = None) -> str:
        """The acting user's name once they are known to be active and to hold ``role``."""
        if not users.has_users(s):
            raise PermissionDenied(
                f"{self.path}: no users yet; add the first, an admin: `nomina user add NAME --role admin,examiner`"
            )
        if self.user is None:
            needs = f" (this needs the {role} role)" if role else ""
            raise PermissionDenied(f"no acting user: name one with --as NAME or NOMINA_USER{needs}")
        return users.require_user(s, self.user, role).name

    def _check(self, role: str | None = None) -> str:
        """Check the acting user before slow work (photo analysis); the change checks again."""
        with self._sessions() as s:
            return self._actor(s, role)

    @contextmanager
    def _acting(self, role: str | None = None) -> Iterator[tuple[Session, list[str], str]]:
        """A write transaction (see :meth:`_write`) by the acting user, who must hold ``role``."""
        with self._write() as (s, new_files):
            yield s, new_files, self._actor(s, role)

    def add_user(self, name: str, roles: Iterable[str] | str) -> dict[str, Any]:
        """Add a user (the acting user must be an admin, except for the very first user, an admin)."""
        with self._write() as (s, _):
            return _user_summary(users.add_user(s, name, roles, self.user))

    def disable_user(self, name: str) -> dict[str, Any]:
        """Disable a user (by an admin); users are never deleted, so the audit trail keeps meaning."""
        with self._write() as (s, _):
            return _user_summary(users.disable_user(s, name, self.user))

    def users(self) -> list[dict[str, Any]]:
        """Every user, active or not."""
        with self._sessions() as s:
            self._actor(s)
            return [_user_summary(u) for u in users.list_users(s)]

    # -- audit trail --------------------------------------------------------------------------------------
    def audit_verify(self) -> audit.Verification:
        """Check the whole hash chain; an intact check is itself recorded."""
        with self._write() as (s, _):
            actor = self._actor(s)
            result = audit.verify(s)
            if result.ok:
                audit.record(s, actor, audit.AuditVerified(ok=True, events=result.events, head=result.head))
        return result

    def audit_log(
        self, case_id: str | None = None, reference_id: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """The audit trail (oldest first), of one case or reference when given; the reading is recorded."""
        with self._acting() as (s, _, actor):
            found = audit.events(s, case_id=case_id, reference_id=reference_id, limit=limit)
            blind = {i.case_id for i in workflow.identifications(s, "proposed") if workflow.blind(i.case, actor)}
            for e in found:
                if e["case_id"] in blind and e["action"] in ("conclusion.record", "identification.propose"):
                    e["actor"], e["details"] = "(hidden until verified)", {"hidden": _BLIND}
            audit.record(s, actor, audit.AuditViewed(count=len(found), case_id=case_id, reference_id=reference_id))
        return found

    def audit_head(self) -> str:
        """The hash of the audit trail's newest event: keep it elsewhere to show the trail later unchanged."""
        with self._sessions() as s:
            return audit.head(s).hash

    # -- workspace settings ---------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The workspace settings (``nomina config``): stored values, defaults for any not stored."""
        with self._sessions() as s:
            return _config(s)

    def set_config(self, name: str, value: Any) -> dict[str, Any]:
        """Change one workspace setting (by an admin); returns every setting."""
        checked = workspace_setting(name, value)
        old = self.config()[name]
        with self._acting("admin") as (s, _, actor):
            row = s.get(db.WorkspaceInfo, _CONFIG + name)
            if row is None:
                s.add(db.WorkspaceInfo(key=_CONFIG + name, value=json.dumps(checked)))
            else:
                row.value = json.dumps(checked)
            audit.record(s, actor, audit.SettingChanged(setting=name, old=old, new=checked))
        return self.config()

    # -- writing --------------------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[tuple[Session, list[str]]]:
        """A transaction; photo files it wrote are removed again if it fails."""
        new_files: list[str] = []
        s = self._sessions()
        try:
            with s.begin():
                yield s, new_files
        except BaseException:
            for sha in new_files:
                self.photos.remove(sha)
            raise
        finally:
            s.close()

    def _store_photo(self, s: Session, p: _Prepared, new_files: list[str]) -> None:
        if s.get(db.Photo, p.sha256) is not None:
            return
        sha, written = self.photos.put(p.data)
        if written:
            new_files.append(sha)
        s.add(
            db.Photo(
                sha256=sha,
                format=p.image.format,
                width=p.image.width,
                height=p.image.height,
                size_bytes=p.image.size_bytes,
                stored_at=_now(),
            )
        )
        s.flush()

    def _face_row(self, face: Face) -> db.Face:
        q = face.quality
        return db.Face(
            number_in_photo=None if face.manual else face.number,
            box=[round(float(v), 2) for v in face.box],
            landmarks=np.round(face.landmarks.astype(np.float64), 2).tolist(),
            manual=face.manual,
            detector_score=q.detector_score,
            inter_eye_px=q.inter_eye_px,
            sharpness=q.sharpness,
            brightness=q.brightness,
            roll=q.roll,
            yaw=q.yaw,
            pitch=q.pitch,
            contrast=q.contrast,
            noise=q.noise,
            model=self.model.name,
            embedding=np.asarray(face.embedding, dtype=np.float32).tobytes(),
            added_at=_now(),
        )

    def _bump_gallery(self, s: Session) -> None:
        row = s.get(db.WorkspaceInfo, "gallery_generation")
        assert row is not None
        row.value = uuid.uuid4().hex

    # -- photo analysis -------------------------------------------------------------------------------
    def _prepare(self, photo: PhotoInput, gate_mode: str | None, data: bytes | None = None) -> _Prepared:
        """Read, decode and analyse one photo. ``gate_mode`` is given for a reference photo, which must
        show a face that passes the quality gate (or whose failure ``photo`` overrides); None for a case
        photo, which may show no face."""
        name = str(photo.path)
        if data is None:
            data = read_photo(photo.path)
        image = decode_image(data, name, self.settings.max_pixels)
        analyzer = self.analyzer()
        reference = gate_mode is not None
        face = analyzer.choose(image, photo, name, reference, any_orientation=analyzer.turns(reference_photo=reference))
        override = None
        if face is not None and gate_mode is not None:
            failed = gate(face.quality, gate_mode)
            if failed and photo.quality_override is None:
                raise QualityTooLow(
                    f"{name}: the face fails the {gate_mode} quality gate: {'; '.join(failed)}. A better photo is "
                    "best; to enrol this one anyway give the reason with --accept-quality"
                )
            override = photo.quality_override if failed else None
        return _Prepared(name, data, image, face, photo.photo_date, override)

    def _parallel(self, fn: Callable[[Any], T], items: list[Any]) -> Iterator[T | NominaError]:
        """``fn`` over items on the configured workers, in order (see :func:`nomina.parallel.ordered_map`)."""
        self.analyzer()  # load (and check) the model once, before threads start
        return ordered_map(fn, items, self.settings.workers)

    def _prepare_all(self, photos: list[PhotoInput], reference: bool) -> list[_Prepared]:
        """Analyse every photo; the first error (in the given order) is raised, nothing written."""
        if not photos:
            raise InvalidField("photos: at least one photo is required")
        mode = self.config()["quality_gate"] if reference else None
        results = list(self._parallel(lambda p: self._prepare(p, mode), photos))
        for r in results:
            if isinstance(r, NominaError):
                raise r
        prepared = [r for r in results if isinstance(r, _Prepared)]
        seen: set[str] = set()
        for p in prepared:
            if p.sha256 in seen:
                raise Conflict(f"{p.name}: the same photo is given twice")
            seen.add(p.sha256)
        return prepared

    # -- references -----------------------------------------------------------------------------------
    def _default_retain_until(self) -> date | None:
        """Today plus the workspace's retention_years: the retention date of a reference given none (0: none)."""
        years = int(self.config()["retention_years"])
        if years == 0:
            return None
        today = date.today()
        try:
            return today.replace(year=today.year + years)
        except ValueError:  # 29 February
            return today.replace(year=today.year + years, day=28)

    @staticmethod
    def _reference_row(fields: ReferenceFields, default_retain: date | None) -> db.Reference:
        now = _now()
        retain = fields.retain_until or default_retain
        return db.Reference(**_fields(fields), created_at=now, updated_at=now, retain_until=retain)

    def add_reference(
        self, fields: ReferenceFields, photos: list[PhotoInput], provenance: Provenance
    ) -> dict[str, Any]:
        """Enrol a missing person with one or more photos, all supplied under ``provenance``."""
        self._check("examiner")
        with self._sessions() as s:
            if s.get(db.Reference, fields.id) is not None:
                raise Conflict(f"reference {fields.id}: already exists (use `reference add-photos`)")
            erasure.refuse_erased_reference_id(s, fields.id)
        prepared = self._prepare_all(photos, reference=True)
        retain = self._default_retain_until()
        with self._acting("examiner") as (s, new_files, actor):
            s.add(self._reference_row(fields, retain))
            s.flush()
            for p in prepared:
                self._add_reference_photo(s, fields.id, p, provenance, new_files, actor)
            self._bump_gallery(s)
            audit.record(s, actor, audit.ReferenceCreated(reference_id=fields.id, **_photo_counts(prepared)))
            return self._reference_record(s, fields.id)

    def add_reference_photos(
        self, reference_id: str, photos: list[PhotoInput], provenance: Provenance
    ) -> dict[str, Any]:
        """More photos for an existing reference."""
        self._check("examiner")
        with self._sessions() as s:
            ref = _reference(s, reference_id)
            known = {rp.photo_sha256 for rp in ref.photos}
        prepared = self._prepare_all(photos, reference=True)
        for p in prepared:
            if p.sha256 in known:
                raise Conflict(f"{p.name}: already a photo of reference {reference_id}")
        with self._acting("examiner") as (s, new_files, actor):
            for p in prepared:
                self._add_reference_photo(s, reference_id, p, provenance, new_files, actor)
            self._bump_gallery(s)
            _reference(s, reference_id).updated_at = _now()
            audit.record(s, actor, audit.ReferencePhotosAdded(reference_id=reference_id, **_photo_counts(prepared)))
            return self._reference_record(s, reference_id)

    def _add_reference_photo(
        self, s: Session, reference_id: str, p: _Prepared, prov: Provenance, new_files: list[str], actor: str
    ) -> None:
        assert p.face is not None
        self._store_photo(s, p, new_files)
        link = db.ReferencePhoto(
            reference_id=reference_id,
            photo_sha256=p.sha256,
            file_name=Path(p.name).name,
            source=prov.source,
            supplied_by=prov.supplied_by,
            legal_basis=prov.legal_basis,
            consent=prov.consent,
            photo_date=p.photo_date,
            added_at=_now(),
            added_by=actor,
            quality_override=p.quality_override,
            quality_override_by=None if p.quality_override is None else actor,
        )
        link.faces.append(self._face_row(p.face))
        s.add(link)

    def import_references(self, manifest: Path | str, progress: Progress | None = None) -> ImportReport:
        """Enrol references from a CSV manifest, one row per photo.

        Photo paths are relative to the manifest's folder. Rows already enrolled (same reference and
        same photo bytes) are skipped, so a manifest can be run again after fixing failed rows. Each
        good row is kept; every failed row is reported with its line number.
        """
        manifest = Path(manifest)
        actor = self._check("examiner")
        rows = read_manifest(manifest)
        report = ImportReport(rows=len(rows))
        base = manifest.parent
        enrolled = self._enrolled_photos({row.get("reference_id", "") for _, row in rows})
        mode = self.config()["quality_gate"]
        retain = self._default_retain_until()

        def stage(item: tuple[int, dict[str, str]]) -> tuple[ReferenceFields, Provenance, _Prepared | None]:
            fields, prov, photo = row_inputs(item[1], base)
            data = read_photo(photo.path)
            if (fields.id, sha256_hex(data)) in enrolled:
                return fields, prov, None
            return fields, prov, self._prepare(photo, mode, data=data)

        batch: list[tuple[int, dict[str, str], ReferenceFields, Provenance, _Prepared]] = []
        for done, ((line, row), result) in enumerate(zip(rows, self._parallel(stage, rows), strict=True), 1):
            if isinstance(result, NominaError):
                report.failures.append(RowFailure.of(line, row, result))
            elif result[2] is None:
                report.already_present += 1
            else:
                batch.append((line, row, *result))  # type: ignore[arg-type]
            if len(batch) >= _IMPORT_BATCH or (done == len(rows) and batch):
                self._import_batch(batch, report, actor, retain)
                batch = []
            if progress is not None:
                progress(done, len(rows))
        report.failures.sort(key=lambda f: f.line)
        return report

    def _enrolled_photos(self, reference_ids: set[str]) -> set[tuple[str, str]]:
        """(reference id, photo SHA-256) pairs already enrolled for these references."""
        ids = sorted(reference_ids)
        pairs: set[tuple[str, str]] = set()
        with self._sessions() as s:
            for i in range(0, len(ids), 500):
                q = select(db.ReferencePhoto.reference_id, db.ReferencePhoto.photo_sha256).where(
                    db.ReferencePhoto.reference_id.in_(ids[i : i + 500])
                )
                pairs.update((r, sha) for r, sha in s.execute(q))
        return pairs

    def _import_batch(
        self,
        batch: list[tuple[int, dict[str, str], ReferenceFields, Provenance, _Prepared]],
        report: ImportReport,
        actor: str,
        retain: date | None,
    ) -> None:
        """Write analysed manifest rows in one transaction; refused rows are reported, the others kept."""
        added = report.added
        with self._write() as (s, new_files):
            for line, row, fields, prov, p in batch:
                try:  # _import_row refuses a row before it writes anything for it
                    created = self._import_row(s, fields, prov, p, new_files, actor, retain)
                except NominaError as exc:
                    report.failures.append(RowFailure.of(line, row, exc))
                    continue
                report.added += 1
                report.references_created += int(created)
            if report.added > added:
                self._bump_gallery(s)

    def _import_row(
        self,
        s: Session,
        fields: ReferenceFields,
        prov: Provenance,
        p: _Prepared,
        new_files: list[str],
        actor: str,
        retain: date | None,
    ) -> bool:
        """Add one manifest row; every refusal comes before anything of the row is written."""
        ref = s.get(db.Reference, fields.id)
        created = ref is None
        if ref is None:
            erasure.refuse_erased_reference_id(s, fields.id)
            s.add(self._reference_row(fields, retain))
            s.flush()
        elif ref.name != fields.name:
            raise Conflict(f"name: {fields.name!r} differs from reference {fields.id}'s recorded name {ref.name!r}")
        elif any(rp.photo_sha256 == p.sha256 for rp in ref.photos):
            raise Conflict(f"{p.name}: already a photo of reference {fields.id}")
        self._add_reference_photo(s, fields.id, p, prov, new_files, actor)
        counts = _photo_counts([p])
        event = audit.ReferenceCreated if created else audit.ReferencePhotosAdded
        audit.record(s, actor, event(reference_id=fields.id, **counts))
        return created

    def references(self) -> list[dict[str, Any]]:
        with self._acting() as (s, _, actor):
            counts = dict(
                s.execute(
                    select(db.ReferencePhoto.reference_id, func.count()).group_by(db.ReferencePhoto.reference_id)
                ).all()
            )
            found = [
                {**_reference_summary(r), "photos": counts.get(r.id, 0)}
                for r in s.scalars(select(db.Reference).order_by(db.Reference.id))
            ]
            audit.record(s, actor, audit.ReferencesListed(count=len(found)))
            return found

    def reference(self, reference_id: str) -> dict[str, Any]:
        """A reference with its photos, provenance and faces; the viewing is recorded."""
        with self._acting() as (s, _, actor):
            record = self._reference_record(s, reference_id)
            audit.record(s, actor, audit.ReferenceViewed(reference_id=reference_id))
            return record

    def _reference_record(self, s: Session, reference_id: str) -> dict[str, Any]:
        ref = _reference(s, reference_id)
        out = _reference_summary(ref)
        out["photos"] = [
            {
                "sha256": rp.photo_sha256,
                "file_name": rp.file_name,
                "provenance": {
                    "source": rp.source,
                    "supplied_by": rp.supplied_by,
                    "legal_basis": rp.legal_basis,
                    "consent": rp.consent,
                },
                "photo_date": _iso(rp.photo_date),
                "added_at": _iso(rp.added_at),
                "added_by": rp.added_by,
                "quality_override": None
                if rp.quality_override is None
                else {"reason": rp.quality_override, "by": rp.quality_override_by},
                "faces": [_face_summary(f) for f in rp.faces],
            }
            for rp in ref.photos
        ]
        return out

    def update_reference(self, reference_id: str, **changes: Any) -> dict[str, Any]:
        clean = validate_update(changes)
        with self._acting("examiner") as (s, _, actor):
            ref = _reference(s, reference_id)
            for key, value in clean.items():
                setattr(ref, key, value)
            ref.updated_at = _now()
            audit.record(s, actor, audit.ReferenceUpdated(reference_id=reference_id, fields=tuple(clean)))
            return self._reference_record(s, reference_id)

    def delete_reference(self, reference_id: str, reason: str) -> dict[str, Any]:
        """Erase a reference (by an admin, with a reason) so that no biometric trace of it stays: its photos'
        links, faces and vectors, the photo files no other record uses, every index file (rebuilt by the
        next search), and the database's earlier page images (see :mod:`nomina.erasure`). The audit trail
        keeps a tombstone: the id, counts and the reason. ``warnings`` names any file step that could not
        be completed (``maintain`` completes it)."""
        reason = _reason(reason)
        with self._acting("admin") as (s, _, actor):
            gone = erasure.erase_reference(s, _reference(s, reference_id), reason, actor)
            self._bump_gallery(s)
        return {**gone.summary(), "warnings": self._finish_erasure([gone])}

    def _finish_erasure(self, erased: list[erasure.Erasure]) -> list[str]:
        self._index = None  # let go of the mapped index file, which holds the erased vectors
        return erasure.finish(self.photos, self.path / "index", self._engine, erased)

    # -- cases ----------------------------------------------------------------------------------------
    def add_case(self, fields: CaseFields, photos: list[PhotoInput]) -> dict[str, Any]:
        """Register an unidentified person. Photos with no detected face are kept and flagged."""
        self._check("examiner")
        with self._sessions() as s:
            if s.get(db.Case, fields.id) is not None:
                raise Conflict(f"case {fields.id}: already exists")
        prepared = self._prepare_all(photos, reference=False)
        with self._acting("examiner") as (s, new_files, actor):
            s.add(
                db.Case(
                    id=fields.id,
                    kind=fields.kind,
                    found_on=fields.found_on,
                    found_at=fields.found_at,
                    notes=fields.notes,
                    created_at=_now(),
                )
            )
            s.flush()
            for p in prepared:
                self._store_photo(s, p, new_files)
                link = db.CasePhoto(
                    case_id=fields.id,
                    photo_sha256=p.sha256,
                    file_name=Path(p.name).name,
                    photo_date=p.photo_date,
                    no_face=p.face is None,
                    added_at=_now(),
                    added_by=actor,
                )
                if p.face is not None:
                    link.faces.append(self._face_row(p.face))
                s.add(link)
            faces = sum(p.face is not None for p in prepared)
            audit.record(s, actor, audit.CaseCreated(case_id=fields.id, photos=len(prepared), faces=faces))
            return self._case_record(s, fields.id, actor)

    def mark_eyes(self, case_id: str, photo: int, eyes: np.ndarray) -> dict[str, Any]:
        """Add a face to case photo number ``photo`` (1-based) from eye centres marked by hand."""
        self._check("examiner")
        with self._sessions() as s:
            case = _case(s, case_id)
            if not 1 <= photo <= len(case.photos):
                raise InvalidField(f"--photo: case {case_id} has {len(case.photos)} photo(s); got {photo}")
            link_id = case.photos[photo - 1].id
            sha = case.photos[photo - 1].photo_sha256
            file_name = case.photos[photo - 1].file_name
        data = self.photos.read(sha)
        image = decode_image(data, file_name, self.settings.max_pixels)
        face = self.analyzer().from_eyes(image, eyes, name=f"{file_name}: --eyes")
        with self._acting("examiner") as (s, _, actor):
            link = s.get(db.CasePhoto, link_id)
            assert link is not None
            row = self._face_row(face)
            link.faces.append(row)
            s.flush()
            audit.record(s, actor, audit.EyesMarked(case_id=case_id, photo=photo, face_id=row.id))
            return self._case_record(s, case_id, actor)

    def cases(self) -> list[dict[str, Any]]:
        with self._acting() as (s, _, actor):
            found = [_case_summary(c) for c in s.scalars(select(db.Case).order_by(db.Case.id))]
            audit.record(s, actor, audit.CasesListed(count=len(found)))
            return found

    def case(self, case_id: str) -> dict[str, Any]:
        """A case with its photos, faces and searches; the viewing is recorded."""
        with self._acting() as (s, _, actor):
            record = self._case_record(s, case_id, actor)
            audit.record(s, actor, audit.CaseViewed(case_id=case_id))
            return record

    def _case_record(self, s: Session, case_id: str, viewer: str) -> dict[str, Any]:
        case = _case(s, case_id)
        out = _case_summary(case)
        found = workflow.current(case)
        out["identification"] = None if found is None else workflow.describe(found, viewer)
        numbers = {ref.face_id: ref.number for ref, _ in _case_faces(case)}
        out["photos"] = [
            {
                "number": i + 1,
                "sha256": cp.photo_sha256,
                "file_name": cp.file_name,
                "photo_date": _iso(cp.photo_date),
                "no_face_detected": cp.no_face,
                "added_at": _iso(cp.added_at),
                "added_by": cp.added_by,
                "faces": [{"case_face": numbers[f.id], **_face_summary(f)} for f in cp.faces],
            }
            for i, cp in enumerate(case.photos)
        ]
        out["searches"] = [{"search_id": sr.id, "created_at": _iso(sr.created_at)} for sr in case.searches]
        return out

    def delete_case(self, case_id: str, reason: str) -> dict[str, Any]:
        """Erase a case (by an admin, with a reason) with its photos, faces, searches, conclusions and
        identifications, leaving no biometric trace (see :meth:`delete_reference`); the audit trail keeps
        a tombstone."""
        reason = _reason(reason)
        with self._acting("admin") as (s, _, actor):
            gone = erasure.erase_case(s, _case(s, case_id), reason, actor)
        return {**gone.summary(), "warnings": self._finish_erasure([gone])}

    # -- search ---------------------------------------------------------------------------------------
    def gallery_index(self) -> ExactIndex:
        """The exact index of every reference face, rebuilt only when the gallery has changed."""
        with self._sessions() as s:
            generation = self._info(s, "gallery_generation")
            if self._index is not None and self._index[0] == generation:
                return self._index[1]
            folder = self.path / "index" / "exact"
            index = ExactIndex.load(folder, generation)
            if index is None:
                rows = s.execute(
                    select(db.ReferencePhoto.reference_id, db.Face.id, db.Face.embedding)
                    .join(db.Face, db.Face.reference_photo_id == db.ReferencePhoto.id)
                    .order_by(db.ReferencePhoto.reference_id, db.Face.id)
                ).all()
                dim = MODELS[str(self.model_identity["name"])].embedding_dim
                vectors = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), dim)
                face_ids = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
                index = ExactIndex.from_sorted([r[0] for r in rows], face_ids, vectors)
                index.save(folder, generation)
        self._index = (generation, index)
        return index

    def search(self, case_id: str, face: int | None = None, top: int | None = None) -> SearchResult:
        """Rank every reference against the case's face(s) and record the search.

        Without ``face``, all the case's faces are used and each reference keeps its best score over
        them; ``face`` (1-based, as ``case show`` numbers them) restricts the search to one.
        """
        top = self.settings.top if top is None else top
        if top < 1:
            raise InvalidField(f"--top: {top} must be at least 1")
        with self._sessions() as s:  # everything the search needs to know, read once, before the index
            self._actor(s, "examiner")
            mode = _config(s)["quality_gate"]
            current = _current_calibration(s)
            case = _case(s, case_id)
            faces = _case_faces(case)
            failed = {f.id: gate(stored(f), mode) for cp in case.photos for f in cp.faces}
        if not faces:
            raise NoFaceFound(f"case {case_id}: no face to search; mark the eyes by hand with `nomina case mark-eyes`")
        if face is not None:
            if not 1 <= face <= len(faces):
                raise FaceNumberInvalid(f"--face: case {case_id} has {len(faces)} face(s); got {face}")
            faces = [faces[face - 1]]
        index = self.gallery_index()
        if index.size == 0:
            raise NotFound("gallery: no reference faces to search; add references first")
        refs = [ref for ref, _ in faces]
        probes = np.stack([vec for _, vec in faces])
        warnings = [
            f"case face {ref.number} fails the {mode} quality gate, so its candidates are less reliable: "
            + "; ".join(failed[ref.face_id])
            for ref in refs
            if failed[ref.face_id]
        ]
        ranked = rank(index, probes, refs, top)
        with self._acting("examiner") as (s, _, actor):
            photo_of = dict(
                s.execute(
                    select(db.Face.id, db.ReferencePhoto.photo_sha256)
                    .join(db.ReferencePhoto, db.Face.reference_photo_id == db.ReferencePhoto.id)
                    .where(db.Face.id.in_([r[3] for r in ranked]))
                ).all()
            )
            row = db.Search(
                case_id=case_id,
                case_face_ids=[r.face_id for r in refs],
                model=self.model_identity,
                settings={"top": top, "face": face, "index": index.kind, "quality_gate": mode},
                gallery_references=index.references,
                gallery_faces=index.size,
                created_at=_now(),
                os_user=os_user(),
                nomina_version=__version__,
                calibration_id=None if current is None else current[0],
                warnings=warnings,
                user=actor,
            )
            s.add(row)
            s.flush()
            s.execute(  # one bulk insert: the ORM's per-object bookkeeping cost more than the search
                insert(db.Candidate),
                [
                    {
                        "search_id": row.id,
                        "rank": rk,
                        "reference_id": ref_id,
                        "score": score,
                        "reference_face_id": ref_face,
                        "photo_sha256": photo_of[ref_face],
                        "case_face_id": case_face,
                    }
                    for rk, ref_id, score, ref_face, case_face in ranked
                ],
            )
            audit.record(
                s,
                actor,
                audit.SearchRun(
                    case_id=case_id, search_id=row.id, candidates=len(ranked), gallery_references=index.references
                ),
            )
            return self._search_result(s, row.id, actor)

    def get_search(self, search_id: int) -> SearchResult:
        """A recorded search again; the viewing is recorded."""
        with self._acting() as (s, _, actor):
            result = self._search_result(s, search_id, actor)
            audit.record(s, actor, audit.SearchViewed(case_id=result.case_id, search_id=search_id))
            return result

    def _search_result(self, s: Session, search_id: int, viewer: str) -> SearchResult:
        row = _search(s, search_id)
        ids = [c.reference_id for c in row.candidates]
        names = dict(s.execute(select(db.Reference.id, db.Reference.name).where(db.Reference.id.in_(ids))).all())
        calibration = None
        if row.calibration_id is not None:
            calibration = (row.calibration_id, _calibration(s, row.calibration_id))
        conclusions: dict[int, list[dict[str, Any]]] | None = None
        if not workflow.blind(row.case, viewer):
            conclusions = {}
            for c in row.conclusions:
                conclusions.setdefault(c.rank, []).append(_conclusion_summary(c))
        return result_from_row(
            row, names, [ref for ref, _ in _case_faces(row.case)], calibration, self._age_warnings(s, row), conclusions
        )

    def _age_warnings(self, s: Session, row: db.Search) -> dict[int, list[str]]:
        """Warnings by candidate rank about the years between the photos compared, and children's photos."""
        refs = {
            face_id: (photo_date, birth_year)
            for face_id, photo_date, birth_year in s.execute(
                select(db.Face.id, db.ReferencePhoto.photo_date, db.Reference.birth_year)
                .join(db.ReferencePhoto, db.Face.reference_photo_id == db.ReferencePhoto.id)
                .join(db.Reference, db.ReferencePhoto.reference_id == db.Reference.id)
                .where(db.Face.id.in_([c.reference_face_id for c in row.candidates]))
            )
        }
        cases = {
            face_id: photo_date or found_on
            for face_id, photo_date, found_on in s.execute(
                select(db.Face.id, db.CasePhoto.photo_date, db.Case.found_on)
                .join(db.CasePhoto, db.Face.case_photo_id == db.CasePhoto.id)
                .join(db.Case, db.CasePhoto.case_id == db.Case.id)
                .where(db.Face.id.in_(row.case_face_ids))
            )
        }
        out: dict[int, list[str]] = {}
        for c in row.candidates:
            photo_date, birth_year = refs.get(c.reference_face_id, (None, None))
            found = age_warnings(photo_date, birth_year, cases.get(c.case_face_id), self.settings.age_gap_years)
            if found:
                out[c.rank] = found
        return out

    def searches(self, case_id: str | None = None) -> list[dict[str, Any]]:
        with self._acting() as (s, _, actor):
            q = select(db.Search).order_by(db.Search.id)
            if case_id is not None:
                q = q.where(db.Search.case_id == case_id)
            found = [
                {
                    "search_id": r.id,
                    "case_id": r.case_id,
                    "created_at": _iso(r.created_at),
                    "user": r.user,
                    "os_user": r.os_user,
                    "candidates": len(r.candidates),
                    "top_reference": r.candidates[0].reference_id if r.candidates else None,
                }
                for r in s.scalars(q)
            ]
            audit.record(s, actor, audit.SearchesListed(count=len(found), case_id=case_id))
            return found

    # -- examiner workflow -----------------------------------------------------------------------------
    def conclude(self, search_id: int, rank: int, conclusion: str, reasons: str) -> dict[str, Any]:
        """Record an examiner's conclusion (excluded, possible match, insufficient information) on the
        candidate at ``rank`` of a search."""
        with self._acting("examiner") as (s, _, actor):
            return _conclusion_summary(workflow.conclude(s, actor, _search(s, search_id), rank, conclusion, reasons))

    def propose_identification(self, case_id: str, reference_id: str, reasons: str) -> dict[str, Any]:
        """An examiner proposes that the case is the reference; a verifier must then verify it."""
        with self._acting("examiner") as (s, _, actor):
            found = workflow.propose(s, actor, _case(s, case_id), reference_id, reasons)
            return workflow.describe(found, actor)

    def verify_identification(self, case_id: str, conclusion: str, reasons: str) -> dict[str, Any]:
        """A verifier, not the proposer, records their own conclusion on the proposed identification."""
        with self._acting("verifier") as (s, _, actor):
            found = workflow.verify(s, actor, _case(s, case_id), conclusion, reasons)
            return workflow.describe(found, actor)

    def withdraw_identification(self, case_id: str, reason: str) -> dict[str, Any]:
        """Withdraw the case's open identification (an examiner, with a reason); the case is open again."""
        with self._acting("examiner") as (s, _, actor):
            return workflow.describe(workflow.withdraw(s, actor, _case(s, case_id), reason), actor)

    def identification(self, case_id: str) -> dict[str, Any]:
        """The case's status, its open identification and every earlier one (as this user may see them)."""
        with self._acting() as (s, _, actor):
            case = _case(s, case_id)
            found = workflow.current(case)
            audit.record(s, actor, audit.CaseViewed(case_id=case_id))
            return {
                "case_id": case_id,
                "status": workflow.status(case),
                "current": None if found is None else workflow.describe(found, actor),
                "history": [workflow.describe(i, actor) for i in case.identifications],
            }

    def identifications(self, status: str | None = None) -> list[dict[str, Any]]:
        """Every identification (of one status when given), oldest first."""
        if status is not None and status not in (*workflow.STATUSES, "withdrawn"):
            raise InvalidField(f"--status: {status!r} is not one of {', '.join((*workflow.STATUSES, 'withdrawn'))}")
        with self._acting() as (s, _, actor):
            found = [workflow.describe(i, actor) for i in workflow.identifications(s, status)]
            audit.record(s, actor, audit.CasesListed(count=len(found)))
            return found

    # -- reports and exports ----------------------------------------------------------------------------
    def report(self, case_id: str, out: Path | str) -> dict[str, Any]:
        """Write the case's identification report, HTML or PDF by the suffix of ``out``; the writing is
        recorded with the file's SHA-256. Refused while an identification awaits verification, except to
        its proposer, and for a case never searched."""
        path = Path(out)
        with self._sessions() as s:
            actor = self._actor(s)
            case = _case(s, case_id)
            if not case.searches:
                raise Conflict(f"case {case_id}: not searched yet; a report shows a search's candidates")
            found = workflow.current(case)
            search_id = found.search_id if found is not None and found.search_id is not None else case.searches[-1].id
            crop = casefile.face_crop(self.photos.read, self.settings.max_pixels)
            built = casefile.build_report(
                s, case, self._search_result(s, search_id, actor), actor, crop, self._model_block()
            )
        sha = write_report(built, path)
        fmt = path.suffix.lower().lstrip(".")
        try:
            with self._acting() as (s, _, actor):
                reference = None if found is None else found.reference_id
                audit.record(
                    s, actor, audit.ReportCreated(case_id=case_id, sha256=sha, format=fmt, reference_id=reference)
                )
        except BaseException:
            path.unlink(missing_ok=True)  # a report whose writing is not recorded is not left behind
            raise
        return {"case_id": case_id, "path": str(path), "format": fmt, "sha256": sha}

    def export_identifications(self, out: Path | str, fmt: str = "json") -> dict[str, Any]:
        """Write every verified identification, for transmission to the responsible authority, as JSON or
        CSV; the export is recorded with its SHA-256, and carries the audit trail's head hash."""
        path = Path(out)
        with self._acting() as (s, _, actor):
            records = casefile.identification_records(s)
            meta = {
                "exported_at": _now().isoformat(),
                "exported_by": actor,
                "audit_head": audit.head(s).hash,
                "notice": EXPORT_NOTICE,
            }
            sha = casefile.write_export(casefile.export_bytes(records, fmt, meta), path)
            try:
                audit.record(s, actor, audit.ExportCreated(format=fmt, count=len(records), sha256=sha))
            except BaseException:
                path.unlink(missing_ok=True)
                raise
        return {"path": str(path), "format": fmt, "identifications": len(records), "sha256": sha}

    def _model_block(self) -> dict[str, Any]:
        identity = self.model_identity
        manifest = MODELS.get(str(identity["name"]))
        return {
            "name": identity["name"],
            "description": None if manifest is None else manifest.description,
            "licence": None if manifest is None else manifest.licence,
            "files": dict(identity["files"]),
        }

    # -- calibration ----------------------------------------------------------------------------------
    def add_calibration(self, calibration: Calibration) -> dict[str, Any]:
        """Store a calibration fitted on this workspace's model; searches use the newest one from now on."""
        fitted_with = calibration.data.get("model")
        if fitted_with != self.model_identity:
            raise ModelMismatch(
                f"calibration: fitted on scores of model {_describe_identity(dict(fitted_with or {}))}, "
                f"but workspace {self.path} uses {_describe_identity(self.model_identity)}"
            )
        with self._acting("admin") as (s, _, actor):
            row = db.Calibration(
                model=self.model_identity, mapping=calibration.to_dict(), created_at=_now(), created_by=actor
            )
            s.add(row)
            s.flush()
            calibration_id = row.id
            audit.record(
                s, actor, audit.CalibrationAdded(calibration_id=calibration_id, model=str(self.model_identity["name"]))
            )
        return calibration_summary(calibration_id, calibration)

    def calibration(self) -> tuple[int, Calibration] | None:
        """The calibration in use (the newest stored), with its id; None when scores are uncalibrated."""
        with self._sessions() as s:
            return _current_calibration(s)

    def calibrations(self) -> list[dict[str, Any]]:
        """Every stored calibration, oldest first; the last is the one in use."""
        with self._sessions() as s:
            rows = s.scalars(select(db.Calibration).order_by(db.Calibration.id)).all()
            return [
                {
                    **calibration_summary(r.id, _calibration(s, r.id)),
                    "created_at": _iso(r.created_at),
                    "created_by": r.created_by,
                    "calibration": r.mapping,
                }
                for r in rows
            ]

    # -- retention and maintenance ---------------------------------------------------------------------
    def apply_retention(self, today: date | None = None, dry_run: bool = False) -> dict[str, Any]:
        """Erase every reference whose retention date is before ``today`` (by an admin).

        Each is erased as :meth:`delete_reference` does, with the reason ``retention date YYYY-MM-DD
        passed``, all in one transaction with one ``retention.apply`` summary event; cases carry no
        retention date. A reference named by an open identification (proposed, disputed or verified) is
        held, not erased, and listed under ``held``. ``dry_run`` does the same in a transaction that is
        rolled back: it reports exactly what would be erased and changes nothing, not even the audit trail.
        """
        today = parse_date(today, "today") or date.today()
        s = self._sessions()
        try:
            s.begin()
            actor = self._actor(s, "admin")
            erased, held = erasure.erase_due(s, today, actor)
            if not dry_run:
                if erased:
                    self._bump_gallery(s)
                audit.record(
                    s, actor, audit.RetentionApplied(due_before=today.isoformat(), references=len(erased), cases=0)
                )
                s.commit()
        finally:
            s.rollback()
            s.close()
        warnings = [] if dry_run or not erased else self._finish_erasure(erased)
        return {
            "due_before": today.isoformat(),
            "dry_run": dry_run,
            "references": [e.summary() for e in erased],
            "held": held,
            "warnings": warnings,
        }

    def maintain(self) -> dict[str, Any]:
        """The workspace's normal maintenance (by an admin); it completes any erasure whose file steps were
        interrupted. Removes photo files no record names (once :data:`nomina.erasure.STRAY_GRACE_SECONDS`
        old), rebuilds the index files from the database, rebuilds the database file from its live rows
        (VACUUM) and truncates its WAL."""
        with self._sessions() as s:
            self._actor(s, "admin")
            known = set(s.scalars(select(db.Photo.sha256)))
        before = _db_bytes(self.path)
        removed, warnings = erasure.sweep(self.photos, known)
        self._index = None
        remove_index_files(self.path / "index")
        faces = self.gallery_index().size
        with self._acting("admin") as (s, _, actor):
            audit.record(s, actor, audit.WorkspaceMaintained(photo_files_removed=removed, index_faces=faces))
        warnings += erasure.compact(self._engine)
        return {
            "photo_files_removed": removed,
            "index_faces": faces,
            "database_bytes_before": before,
            "database_bytes_after": _db_bytes(self.path),
            "warnings": warnings,
        }

    # -- overview -------------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        with self._sessions() as s:

            def count(model: type[db.Base]) -> int:
                return int(s.scalar(select(func.count()).select_from(model)) or 0)

            return {
                "path": str(self.path),
                "model": json.loads(self._info(s, "model")),
                "created_at": self._info(s, "created_at"),
                "references": count(db.Reference),
                "reference_photos": count(db.ReferencePhoto),
                "cases": count(db.Case),
                "faces": count(db.Face),
                "photos_stored": count(db.Photo),
                "searches": count(db.Search),
            }


# -- helpers ------------------------------------------------------------------------------------------
R = TypeVar("R", bound=db.Base)


def _get(s: Session, model: type[R], key: object, what: str) -> R:
    """The row of ``model`` with primary key ``key``; NotFound naming ``what`` otherwise."""
    row = s.get(model, key)
    if row is None:
        raise NotFound(f"{what} {key}: no such {what}")
    return row


def _reference(s: Session, reference_id: str) -> db.Reference:
    return _get(s, db.Reference, reference_id, "reference")


def _case(s: Session, case_id: str) -> db.Case:
    return _get(s, db.Case, case_id, "case")


def _search(s: Session, search_id: int) -> db.Search:
    return _get(s, db.Search, search_id, "search")


def _config(s: Session) -> dict[str, Any]:
    """The workspace settings: stored values, defaults for any not stored."""
    kept = {
        row.key.removeprefix(_CONFIG): json.loads(row.value)
        for row in s.scalars(select(db.WorkspaceInfo).where(db.WorkspaceInfo.key.startswith(_CONFIG)))
    }
    return {st.name: kept.get(st.name, st.default) for st in WORKSPACE_SETTINGS}


def _current_calibration(s: Session) -> tuple[int, Calibration] | None:
    newest = s.scalar(select(func.max(db.Calibration.id)))
    return None if newest is None else (int(newest), _calibration(s, int(newest)))


def _calibration(s: Session, calibration_id: int) -> Calibration:
    row = _get(s, db.Calibration, calibration_id, "calibration")
    try:
        return Calibration.from_dict(dict(row.mapping))
    except ValueError as exc:
        raise WorkspaceError(f"calibration {calibration_id}: stored mapping is damaged: {exc}") from None


def _describe_identity(identity: dict[str, Any]) -> str:
    files = ", ".join(f"{name} {sha[:12]}" for name, sha in dict(identity.get("files", {})).items())
    return f"{identity.get('name')} ({files})"


def _fields(fields: ReferenceFields) -> dict[str, Any]:
    return {
        "id": fields.id,
        "name": fields.name,
        "sex": fields.sex,
        "birth_year": fields.birth_year,
        "last_seen_on": fields.last_seen_on,
        "last_seen_at": fields.last_seen_at,
        "notes": fields.notes,
    }


def _db_bytes(path: Path) -> int:
    """Size of the database with its WAL."""
    return sum(f.stat().st_size for f in (path / DB_NAME, path / (DB_NAME + "-wal")) if f.is_file())


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


def _reference_summary(r: db.Reference) -> dict[str, Any]:
    return {
        "reference_id": r.id,
        "name": r.name,
        "sex": r.sex,
        "birth_year": r.birth_year,
        "last_seen_on": _iso(r.last_seen_on),
        "last_seen_at": r.last_seen_at,
        "notes": r.notes,
        "created_at": _iso(r.created_at),
        "updated_at": _iso(r.updated_at),
        "retain_until": _iso(r.retain_until),
    }


def _conclusion_summary(c: db.Conclusion) -> dict[str, Any]:
    return {
        "search_id": c.search_id,
        "rank": c.rank,
        "reference_id": c.reference_id,
        "examiner": c.examiner,
        "conclusion": c.conclusion,
        "reasons": c.reasons,
        "at": _iso(c.at),
    }


def _case_summary(c: db.Case) -> dict[str, Any]:
    return {
        "case_id": c.id,
        "status": workflow.status(c),
        "kind": c.kind,
        "found_on": _iso(c.found_on),
        "found_at": c.found_at,
        "notes": c.notes,
        "created_at": _iso(c.created_at),
        "photos": len(c.photos),
        "photos_without_face": sum(1 for p in c.photos if p.no_face and not p.faces),
        "faces": sum(len(p.faces) for p in c.photos),
    }


def _face_summary(f: db.Face) -> dict[str, Any]:
    return {
        "face_id": f.id,
        "number_in_photo": f.number_in_photo,
        "manual": f.manual,
        "box": f.box,
        "quality": stored(f).as_dict(),
    }


def _case_faces(case: db.Case) -> list[tuple[CaseFaceRef, np.ndarray]]:
    """The case's faces numbered 1.. in the order their photos and faces were added."""
    out: list[tuple[CaseFaceRef, np.ndarray]] = []
    for cp in case.photos:
        for f in cp.faces:
            ref = CaseFaceRef(number=len(out) + 1, face_id=f.id, photo_sha256=cp.photo_sha256, manual=f.manual)
            out.append((ref, np.frombuffer(f.embedding, dtype=np.float32)))
    return out


def _reason(text: str | None) -> str:
    reason = (text or "").strip()
    if not reason:
        raise InvalidField("--reason: required: say why the record is erased (it is kept in the audit trail)")
    return reason


def _photo_counts(prepared: list[_Prepared]) -> dict[str, int]:
    return {"photos": len(prepared), "quality_overrides": sum(p.quality_override is not None for p in prepared)}


def _user_summary(u: users.User) -> dict[str, Any]:
    return {
        "name": u.name,
        "roles": list(u.roles),
        "active": u.active,
        "created_at": _iso(u.created_at),
        "created_by": u.created_by,
        "disabled_at": _iso(u.disabled_at),
        "disabled_by": u.disabled_by,
    }
