"""Pages: references (missing people), their photos and faces, adding and editing them, and bulk imports.

Uploaded photos are saved, under a safe name, in a private temporary folder that is removed when the
request ends, and handed to the library like files named on the command line; messages name a photo as
the user sent it, never by the server's temporary path. Photos are served re-encoded from the decoded
pixels, never as the bytes uploaded. Bulk imports run in the background: see :mod:`nomina.web.jobs`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from ..errors import InvalidField, NominaError, NotFound, PermissionDenied, QualityTooLow
from ..records import SEXES, SOURCES, PhotoInput, Provenance, ReferenceFields, shown
from ..references import ReferenceRecord
from . import jobs, media, uploads
from .access import Viewer, page
from .render import PAGE_SIZE, field_errors, paged, render, segment

__all__ = ["router"]

router = APIRouter()

REFERENCE_FIELDS = (
    "reference_id",
    "name",
    "sex",
    "birth_year",
    "last_seen_on",
    "last_seen_at",
    "notes",
    "retain_until",
)
EDITABLE = REFERENCE_FIELDS[1:]
PROVENANCE_FIELDS = ("source", "supplied_by", "legal_basis", "consent")
PHOTO_FIELDS = ("photo_date", "face", "quality_override")
_CHOICES = {"sexes": SEXES, "sources": SOURCES}


# -- uploads -------------------------------------------------------------------------------------------
def _files(form: FormData, name: str) -> list[UploadFile]:
    """The files sent in the form field ``name`` (an empty file input sends a part with no file name)."""
    return [f for f in form.getlist(name) if isinstance(f, UploadFile) and f.filename]


def _values(form: FormData, names: tuple[str, ...]) -> dict[str, str]:
    """The text fields among ``names`` that the form sent (a field it did not send is left out)."""
    return {n: v for n in names if isinstance(v := form.get(n), str)}


@dataclass
class _Refusal:
    """A refused form: the errors by field, and by photo name those about one photo."""

    status: int
    errors: dict[str, str]
    photos: dict[str, str]


def _refusal(exc: NominaError, names: list[str]) -> _Refusal:
    """How the page shows ``exc``: next to its field, and next to the photo it is about (named as sent)."""
    message = exc.message
    about = next((name for name in names if uploads.mentions(message, name)), None)
    errors: dict[str, str] = {}
    photos: dict[str, str] = {}
    if about is not None:
        photos[about] = message
        errors["photos"] = f"{about} was refused (see below); attach the photos again to send the form again"
        if isinstance(exc, QualityTooLow):
            errors["quality_override"] = (
                "to enrol it anyway, give here the reason you accept its quality (it is recorded with the photo), "
                "and attach the photos again"
            )
        elif exc.field and exc.field != "photos":
            errors[exc.field] = message
    else:
        errors[exc.field or ""] = message
    return _Refusal(exc.http_status, errors, photos)


def _collect(*checks: Any) -> dict[str, str]:
    """Run each validation; the errors of all of them by field (not just the first)."""
    errors: dict[str, str] = {}
    for check in checks:
        try:
            check()
        except NominaError as exc:
            errors.setdefault(exc.field or "", exc.message)
    return errors


def _photo_inputs(values: dict[str, str], paths: list[Path]) -> list[PhotoInput]:
    face = values.get("face", "").strip()
    if face and not re.fullmatch(r"[0-9]{1,6}", face):
        raise InvalidField(f"face: {shown(face)} is not a face number")
    return [
        PhotoInput(
            path=path,
            face=int(face) if face else None,
            photo_date=values.get("photo_date") or None,  # type: ignore[arg-type]
            quality_override=values.get("quality_override") or None,
        )
        for path in paths
    ]


def _fields(values: dict[str, str]) -> ReferenceFields:
    return ReferenceFields(
        id=values.get("reference_id", ""),
        name=values.get("name", ""),
        sex=values.get("sex") or None,
        birth_year=values.get("birth_year") or None,  # type: ignore[arg-type]
        last_seen_on=values.get("last_seen_on") or None,  # type: ignore[arg-type]
        last_seen_at=values.get("last_seen_at") or None,
        notes=values.get("notes") or None,
        retain_until=values.get("retain_until") or None,  # type: ignore[arg-type]
    )


def _provenance(values: dict[str, str]) -> Provenance:
    return Provenance(
        values.get("source", ""), values.get("supplied_by", ""), values.get("legal_basis", ""), values.get("consent")
    )


def _enrol(
    viewer: Viewer, values: dict[str, str], files: list[UploadFile], reference_id: str | None
) -> ReferenceRecord | _Refusal:
    """Add a reference (``reference_id`` None) or photos to one, from a form; the record, or why not."""
    if not files:
        errors = {"photos": "photos: at least one photo is required"}
    else:
        errors = {}
    checks: list[Any] = [lambda: _provenance(values), lambda: _photo_inputs(values, [])]
    if reference_id is None:
        checks.insert(0, lambda: _fields(values))
    errors.update(_collect(*checks))
    if errors:
        return _Refusal(422, errors, {})
    try:
        with uploads.saved(files) as paths:
            photos = _photo_inputs(values, paths)
            if reference_id is None:
                return viewer.ws.add_reference(_fields(values), photos, _provenance(values))
            return viewer.ws.add_reference_photos(reference_id, photos, _provenance(values))
    except PermissionDenied:
        raise
    except NominaError as exc:
        return _refusal(exc, [uploads.safe_name(f.filename, n) for n, f in enumerate(files, 1)])


# -- the list ------------------------------------------------------------------------------------------
def _year(value: str, name: str) -> int | None:
    if not value.strip():
        return None
    if not re.fullmatch(r"[0-9]{1,4}", value.strip()):
        raise InvalidField(f"{name}: {shown(value)} is not a year")
    return int(value.strip())


@router.get("/references", response_class=HTMLResponse)
def reference_list(
    request: Request,
    q: str = "",
    sex: str = "",
    born_from: str = "",
    born_to: str = "",
    photos: str = "",
    page_number: int = Query(1, alias="page"),
    size: int = PAGE_SIZE,
    viewer: Viewer = page("reference.read"),
) -> Response:
    """Every reference, searched by id or name and filtered by sex, year of birth and whether it has photos."""
    form = {"q": q, "sex": sex, "born_from": born_from, "born_to": born_to, "photos": photos}
    errors: dict[str, str] = {}
    low = high = None
    try:
        low = _year(born_from, "born_from")
    except NominaError as exc:
        errors.update(field_errors(exc))
    try:
        high = _year(born_to, "born_to")
    except NominaError as exc:
        errors.update(field_errors(exc))
    found = viewer.ws.references()
    needle = q.strip().casefold()
    if needle:
        found = [r for r in found if needle in r.reference_id.casefold() or needle in r.name.casefold()]
    if sex in SEXES:
        found = [r for r in found if r.sex == sex]
    if low is not None:
        found = [r for r in found if r.birth_year is not None and r.birth_year >= low]
    if high is not None:
        found = [r for r in found if r.birth_year is not None and r.birth_year <= high]
    if photos == "yes":
        found = [r for r in found if r.photos]
    elif photos == "no":
        found = [r for r in found if not r.photos]
    return render(
        request,
        "references.html",
        viewer,
        422 if errors else 200,
        form=form,
        errors=errors,
        paged=paged(found, page_number, size),
        sexes=SEXES,
    )


# -- adding --------------------------------------------------------------------------------------------
def _form_page(
    request: Request,
    viewer: Viewer,
    status: int = 200,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    photo_errors: dict[str, str] | None = None,
    reference: ReferenceRecord | None = None,
) -> HTMLResponse:
    return render(
        request,
        "reference_form.html",
        viewer,
        status,
        form=form or {},
        errors=errors or {},
        photo_errors=photo_errors or {},
        reference=reference,
        **_CHOICES,
    )


@router.get("/references/new", response_class=HTMLResponse)
def reference_new(request: Request, viewer: Viewer = page("reference.write")) -> Response:
    """The form to add a reference with its photos."""
    return _form_page(request, viewer, form={"source": "family"})


@router.post("/references/new", response_class=HTMLResponse)
async def reference_add(request: Request, viewer: Viewer = page("reference.write")) -> Response:
    """Add a reference; its page on success, else the form again with what was refused and where."""
    async with request.form() as form:
        return await _reference_add(request, viewer, form)


async def _reference_add(request: Request, viewer: Viewer, form: FormData) -> Response:
    values = _values(form, REFERENCE_FIELDS + PROVENANCE_FIELDS + PHOTO_FIELDS)
    result = await run_in_threadpool(_enrol, viewer, values, _files(form, "photos"), None)
    if isinstance(result, _Refusal):
        return _form_page(request, viewer, result.status, values, result.errors, result.photos)
    warnings = list(getattr(result, "warnings", []))
    if warnings:  # shown at once: the id looks like one in use (the enrolment found it; nothing to recompute)
        return await run_in_threadpool(
            _reference_page, request, viewer, result.reference_id, 201, "Reference added.", warnings
        )
    return RedirectResponse(f"/references/{segment(result.reference_id)}?added=1", status_code=303)


# -- one reference -------------------------------------------------------------------------------------
def _reference_page(
    request: Request,
    viewer: Viewer,
    reference_id: str,
    status: int = 200,
    notice: str | None = None,
    warnings: list[str] | None = None,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    photo_errors: dict[str, str] | None = None,
) -> HTMLResponse:
    ref = viewer.ws.reference(reference_id)
    shown_photos = []
    for n, photo in enumerate(ref.photos, 1):
        width, height = media.photo_size(viewer.ws.photos.read(photo.sha256))
        shown_photos.append({"n": n, "photo": photo, "width": width, "height": height})
    trail = viewer.ws.audit_log(reference_id=reference_id, limit=20) if viewer.may("audit.read") else None
    return render(
        request,
        "reference.html",
        viewer,
        status,
        ref=ref,
        photos=shown_photos,
        trail=trail,
        warnings=warnings or [],
        notice=notice,
        form=form or {"source": "family"},
        errors=errors or {},
        photo_errors=photo_errors or {},
        sources=SOURCES,
        quoted=segment(reference_id),
    )


@router.get("/references/{reference_id}", response_class=HTMLResponse)
def reference_show(
    request: Request, reference_id: str, added: int = 0, viewer: Viewer = page("reference.read")
) -> Response:
    """A reference: its facts, its photos with their provenance, faces and quality, and its audit trail."""
    notice = "Reference added." if added == 1 else "Photos added." if added == 2 else None
    return _reference_page(request, viewer, reference_id, notice=notice)


@router.get("/references/{reference_id}/photos/{n}")
def reference_photo(reference_id: str, n: int, viewer: Viewer = page("reference.read")) -> Response:
    """Photo ``n`` (from 1) of a reference, re-encoded as PNG from its decoded pixels."""
    ref = viewer.ws.reference(reference_id)
    if not 1 <= n <= len(ref.photos):
        raise NotFound(f"reference {reference_id}: no photo {n}", record=f"reference {reference_id}")
    photo = ref.photos[n - 1]
    return media.photo_png(viewer.ws, photo.sha256, photo.file_name)


@router.post("/references/{reference_id}/photos", response_class=HTMLResponse)
async def reference_add_photos(
    request: Request, reference_id: str, viewer: Viewer = page("reference.write")
) -> Response:
    """Add photos to a reference; its page, with what was refused next to the form when refused."""
    async with request.form() as form:
        return await _reference_add_photos(request, reference_id, viewer, form)


async def _reference_add_photos(request: Request, reference_id: str, viewer: Viewer, form: FormData) -> Response:
    values = _values(form, PROVENANCE_FIELDS + PHOTO_FIELDS)
    result = await run_in_threadpool(_enrol, viewer, values, _files(form, "photos"), reference_id)
    if isinstance(result, _Refusal):
        return await run_in_threadpool(
            _reference_page,
            request,
            viewer,
            reference_id,
            result.status,
            None,
            None,
            values,
            result.errors,
            result.photos,
        )
    return RedirectResponse(f"/references/{segment(reference_id)}?added=2", status_code=303)


# -- editing -------------------------------------------------------------------------------------------
def _current(ref: ReferenceRecord) -> dict[str, str]:
    values = {
        "reference_id": ref.reference_id,
        "name": ref.name,
        "sex": ref.sex,
        "birth_year": ref.birth_year,
        "last_seen_on": ref.last_seen_on,
        "last_seen_at": ref.last_seen_at,
        "notes": ref.notes,
        "retain_until": ref.retain_until,
    }
    return {k: "" if v is None else (v.isoformat() if hasattr(v, "isoformat") else str(v)) for k, v in values.items()}


def _same_text(value: str) -> str:
    """A field's text as compared for a change (a browser sends a textarea's line breaks as CR LF)."""
    return value.replace("\r\n", "\n").strip()


@router.get("/references/{reference_id}/edit", response_class=HTMLResponse)
def reference_edit(request: Request, reference_id: str, viewer: Viewer = page("reference.write")) -> Response:
    """The form to change a reference's facts (its id never changes)."""
    ref = viewer.ws.reference(reference_id)
    return _form_page(request, viewer, form=_current(ref), reference=ref)


@router.post("/references/{reference_id}/edit", response_class=HTMLResponse)
async def reference_update(request: Request, reference_id: str, viewer: Viewer = page("reference.write")) -> Response:
    """Change the facts that differ from those recorded; the reference's page, or the form with the refusal."""
    async with request.form() as form:
        values = _values(form, EDITABLE)
    ref = await run_in_threadpool(viewer.ws.reference, reference_id)
    before = _current(ref)
    changes = {k: v for k, v in values.items() if _same_text(v) != _same_text(before[k])}
    if changes:
        try:
            await run_in_threadpool(lambda: viewer.ws.update_reference(reference_id, **changes))
        except PermissionDenied:
            raise
        except NominaError as exc:
            shown_form = {**before, **values}
            return _form_page(request, viewer, exc.http_status, shown_form, field_errors(exc), reference=ref)
    return RedirectResponse(f"/references/{segment(reference_id)}", status_code=303)


# -- bulk imports --------------------------------------------------------------------------------------
def _visible(viewer: Viewer, status: jobs.JobStatus) -> bool:
    return status.user == viewer.user or viewer.may("user.manage")


def _job(viewer: Viewer, job: str) -> jobs.JobStatus:
    """Job ``job`` if this viewer may see it (their own, or any for an admin); NotFound otherwise."""
    status = jobs.read_status(viewer.ws.path, job)
    if not _visible(viewer, status):
        raise NotFound(f"import {job}: no such import", record=f"import {job}")
    return status


def _imports_page(
    request: Request, viewer: Viewer, page_number: int = 1, status: int = 200, errors: dict[str, str] | None = None
) -> HTMLResponse:
    visible = [s for s in jobs.list_jobs(viewer.ws.path) if _visible(viewer, s)]
    return render(
        request,
        "import.html",
        viewer,
        status,
        errors=errors or {},
        paged=paged(visible, page_number, PAGE_SIZE),
        max_archive=jobs.MAX_ARCHIVE // 1024**3,
    )


@router.get("/imports", response_class=HTMLResponse)
def import_list(
    request: Request, page_number: int = Query(1, alias="page"), viewer: Viewer = page("reference.write")
) -> Response:
    """The form to start a bulk import, and this user's imports (every user's, for an admin)."""
    return _imports_page(request, viewer, page_number)


@router.post("/imports", response_class=HTMLResponse)
async def import_start(request: Request, viewer: Viewer = page("reference.write")) -> Response:
    """Start an import of a manifest and a zip of its photos; its progress page."""
    async with request.form() as form:
        return await _import_start(request, viewer, form)


async def _import_start(request: Request, viewer: Viewer, form: FormData) -> Response:
    manifest = next(iter(_files(form, "manifest")), None)
    archive = next(iter(_files(form, "photos")), None)
    errors: dict[str, str] = {}
    if manifest is None:
        errors["manifest"] = "manifest: required (a CSV file, one row per photo)"
    if archive is None:
        errors["photos"] = "photos: required (a zip of the photos the manifest names)"
    if manifest is None or archive is None:
        return await run_in_threadpool(_imports_page, request, viewer, 1, 422, errors)
    try:
        status = await run_in_threadpool(
            jobs.create,
            viewer.ws.path,
            viewer.user,
            manifest.file,
            manifest.filename or "manifest.csv",
            archive.file,
            archive.filename or "photos.zip",
        )
    except NominaError as exc:
        return await run_in_threadpool(_imports_page, request, viewer, 1, exc.http_status, field_errors(exc))
    jobs.start(viewer.ws, status)
    return RedirectResponse(f"/imports/{status.job}", status_code=303)


@router.get("/imports/{job}", response_class=HTMLResponse)
def import_show(request: Request, job: str, viewer: Viewer = page("reference.write")) -> Response:
    """An import's progress (updated by static/import.js, or by reloading without scripts) and its outcome."""
    status = _job(viewer, job)
    has_failures = jobs.failures_file(viewer.ws.path, job) is not None
    return render(request, "import_job.html", viewer, status=status, has_failures=has_failures)


@router.get("/imports/{job}/status")
def import_status(job: str, viewer: Viewer = page("reference.write")) -> Response:
    """An import's progress as JSON: ``{state, done, total, added, failed, message, ...}``."""
    return JSONResponse(_job(viewer, job).public())


@router.get("/imports/{job}/failures.csv")
def import_failures(job: str, viewer: Viewer = page("reference.write")) -> Response:
    """The manifest rows an import could not enrol, with their line and error (CSV)."""
    _job(viewer, job)
    path = jobs.failures_file(viewer.ws.path, job)
    if path is None:
        raise NotFound(f"import {job}: no failed rows", record=f"import {job}")
    return Response(
        content=path.read_bytes(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="import-{job[:8]}-failures.csv"'},
    )
