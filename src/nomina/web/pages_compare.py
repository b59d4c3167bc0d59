"""Pages: the aligned face crops, and the comparison of a case face with one candidate's face.

- ``GET /crops/case/{case_id}/{face_no}`` and ``GET /crops/reference/{reference_id}/{face_id}``: the aligned
  112 x 112 crop of a stored face as PNG (``?size=`` up to 448 scales it up for the comparison page). A crop
  is made from the stored photo and landmarks on each request, from one narrow query (nothing is cached on
  disk, and the whole case or reference is not loaded); post-mortem crops are blurred unless the viewer
  chose to see them (``?reveal=1``) or their setting says so.
- ``GET /searches/{search_id}/candidates/{rank}/compare``: the case face and the candidate's face at the same
  scale, side by side (the page without JavaScript), overlaid, wiped or flickered, zoomed and panned together;
  the score, the likelihood ratio when calibrated, the quality warnings and the candidate's recorded facts;
  then the feature checklist (:data:`nomina.workflow.FEATURES`) and the conclusion, for examiners.
- ``POST`` to the same address records the conclusion with its checklist and goes back to the search.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import cv2
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from .. import casefile, workflow
from ..calibration import lr_text
from ..casefile import StoredFace
from ..errors import InvalidField, NominaError, NotFound
from ..faces import ALIGNED_SIZE
from ..search import CandidateResult, SearchResult
from . import media
from .access import Viewer, page
from .render import field_errors, render

__all__ = ["COMPARE_SIZE", "MAX_CROP_SIZE", "router"]

router = APIRouter()

#: The largest crop served (``?size=``): four times the aligned size.
MAX_CROP_SIZE = 448
#: The size both faces are shown at on the comparison page.
COMPARE_SIZE = 336


# -- crops ----------------------------------------------------------------------------------------------
def _crop_size(size: int) -> int:
    if not ALIGNED_SIZE <= size <= MAX_CROP_SIZE:
        raise InvalidField(f"size: {size} must be from {ALIGNED_SIZE} to {MAX_CROP_SIZE} pixels", field="size")
    return size


def _crop(viewer: Viewer, face: StoredFace, size: int, blur: bool) -> Response:
    ws = viewer.ws
    pixels = casefile.face_crop(ws.photos.read, ws.settings)(face.photo_sha256, face.landmarks)
    if size != ALIGNED_SIZE:
        pixels = cv2.resize(pixels, (size, size), interpolation=cv2.INTER_CUBIC)
    return media.png_response(pixels, blur=blur)


@router.get("/crops/case/{case_id:path}/{face_no}")  # ":path": an id may hold a slash
def case_crop(
    case_id: str, face_no: int, size: int = ALIGNED_SIZE, reveal: bool = False, viewer: Viewer = page("case.read")
) -> Response:
    """The aligned crop of the case's face number ``face_no`` (1-based, as the case lists its faces)."""
    size = _crop_size(size)
    face = viewer.ws.face_source("case", case_id, face_no)
    blur = not media.show_unblurred(face.case_kind or "", viewer.preferences, reveal)
    return _crop(viewer, face, size, blur)


@router.get("/crops/reference/{reference_id:path}/{face_id}")
def reference_crop(
    reference_id: str, face_id: int, size: int = ALIGNED_SIZE, viewer: Viewer = page("reference.read")
) -> Response:
    """The aligned crop of face ``face_id`` of the reference (404 for a face of another reference)."""
    size = _crop_size(size)
    face = viewer.ws.face_source("reference", reference_id, face_id)
    return _crop(viewer, face, size, blur=False)


# -- the comparison page ----------------------------------------------------------------------------------
def _candidate(result: SearchResult, rank: int) -> CandidateResult:
    found = next((c for c in result.candidates if c.rank == rank), None)
    if found is None:
        raise NotFound(
            f"rank: search {result.search_id} has no candidate at rank {rank} (1-{len(result.candidates)})",
            record=f"search {result.search_id}",
        )
    return found


def _evidence(candidate: CandidateResult) -> dict[str, str] | None:
    e = candidate.evidence
    if e is None:
        return None
    return {"lr": lr_text(float(e["lr"])), "log10_lr": f"{float(e['log10_lr']):+.2f}", "verbal": str(e["verbal"])}


def _form_from(conclusion: workflow.ConclusionRecord | None) -> dict[str, str]:
    """The form filled from an earlier conclusion (the viewer's own newest on this candidate)."""
    if conclusion is None:
        return {}
    form = {"conclusion": conclusion.conclusion, "reasons": conclusion.reasons}
    for i, feature in enumerate(workflow.FEATURES):
        item = (conclusion.checklist or {}).get(feature)
        if item is not None:
            form[f"finding-{i}"] = item.get("finding", "")
            form[f"note-{i}"] = item.get("note", "")
    return form


def _context(viewer: Viewer, search_id: int, rank: int, reveal: bool) -> dict[str, Any]:
    """Everything the comparison page shows (three library calls, each recorded as a viewing)."""
    ws = viewer.ws
    result = ws.get_search(search_id)
    candidate = _candidate(result, rank)
    case = ws.case(result.case_id)
    reference = None
    try:
        reference = ws.reference(candidate.reference_id)
    except NotFound:
        pass  # erased since the search: the page says so
    case_face = next((f for p in case.photos for f in p.faces if f.case_face == candidate.case_face), None)
    case_photo = next((p for p in case.photos for f in p.faces if f.case_face == candidate.case_face), None)
    ref_photo = None
    ref_face = None
    if reference is not None:
        for p in reference.photos:
            for f in p.faces:
                if f.face_id == candidate.reference_face_id:
                    ref_photo, ref_face = p, f
    unblurred = media.show_unblurred(case.kind, viewer.preferences, reveal)
    size = f"size={COMPARE_SIZE}"
    case_path, ref_path = quote(case.case_id, safe=""), quote(candidate.reference_id, safe="")
    case_url = None
    if case_face is not None:
        case_url = f"/crops/case/{case_path}/{candidate.case_face}?{size}" + ("&reveal=1" if reveal else "")
    ref_url = None
    if ref_face is not None:
        ref_url = f"/crops/reference/{ref_path}/{candidate.reference_face_id}?{size}"
    own = [k for k in candidate.conclusions if k.examiner == viewer.user]
    base = f"/searches/{search_id}/candidates"
    ranks = [c.rank for c in result.candidates]
    position = ranks.index(rank)
    return {
        "result": result,
        "candidate": candidate,
        "case": case,
        "reference": reference,
        "case_face": case_face,
        "case_photo": case_photo,
        "ref_face": ref_face,
        "ref_photo": ref_photo,
        "case_url": case_url,
        "ref_url": ref_url,
        "blurred": not unblurred,
        "blur_note": media.BLUR_NOTE,
        "reveal_url": f"{base}/{rank}/compare?reveal=1",
        "evidence": _evidence(candidate),
        "compare_size": COMPARE_SIZE,
        "features": list(enumerate(workflow.FEATURES)),
        "findings": workflow.FINDINGS,
        "conclusions": workflow.CONCLUSIONS,
        "action": f"{base}/{rank}/compare",
        "case_path": case_path,
        "ref_path": ref_path,
        "previous_url": f"{base}/{ranks[position - 1]}/compare" if position > 0 else None,
        "next_url": f"{base}/{ranks[position + 1]}/compare" if position + 1 < len(ranks) else None,
        "own_form": {} if result.conclusions_hidden else _form_from(own[-1] if own else None),
    }


def _page(
    request: Request,
    viewer: Viewer,
    search_id: int,
    rank: int,
    reveal: bool,
    status: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    context = _context(viewer, search_id, rank, reveal)
    filled = context.pop("own_form") if form is None else form
    return render(request, "compare.html", viewer, status, errors=errors or {}, form=filled, **context)


@router.get("/searches/{search_id}/candidates/{rank}/compare", response_class=HTMLResponse)
def compare(
    request: Request, search_id: int, rank: int, reveal: bool = False, viewer: Viewer = page("case.read")
) -> Response:
    """The comparison page of the candidate at ``rank`` of a search."""
    return _page(request, viewer, search_id, rank, reveal)


def _finding(value: str) -> str | None:
    """A finding as the library accepts it (hyphens or underscores for spaces, any case), or None."""
    text = " ".join(value.replace("-", " ").replace("_", " ").lower().split())
    return text if text in workflow.FINDINGS else None


@router.post("/searches/{search_id}/candidates/{rank}/compare", response_class=HTMLResponse)
async def save_conclusion(
    request: Request, search_id: int, rank: int, viewer: Viewer = page("conclusion.write")
) -> Response:
    """Record the conclusion on the candidate with the feature checklist; back to the search."""
    sent = await request.form()
    form = {k: v for k, v in sent.items() if isinstance(v, str) and k != "csrf"}
    reveal = form.get("reveal") == "1"
    errors: dict[str, str] = {}
    checklist: dict[str, dict[str, str]] = {}
    for i, feature in enumerate(workflow.FEATURES):
        finding, note = form.get(f"finding-{i}", "").strip(), form.get(f"note-{i}", "")
        if finding and _finding(finding) is None:
            options = ", ".join(workflow.FINDINGS)
            errors[f"finding-{i}"] = f"{feature}: {finding!r} is not one of {options}"
        if finding or note.strip():
            checklist[feature] = {"finding": finding, "note": note}
    if errors:
        errors["checklist"] = "a finding is not one of the choices; see the feature marked below"
        return await run_in_threadpool(_page, request, viewer, search_id, rank, reveal, 422, errors, form)
    try:
        await run_in_threadpool(
            viewer.ws.conclude,
            search_id,
            rank,
            form.get("conclusion", ""),
            form.get("reasons", ""),
            checklist or None,
        )
    except NominaError as exc:
        if exc.field not in ("conclusion", "reasons", "checklist") and exc.code in ("not_found", "permission_denied"):
            raise  # not a mistake in the form: the page shows the error on its own
        shown = field_errors(exc)
        if exc.field not in ("conclusion", "reasons", "checklist"):
            shown = {"": exc.message}
        return await run_in_threadpool(_page, request, viewer, search_id, rank, reveal, exc.http_status, shown, form)
    return RedirectResponse(f"/searches/{search_id}", status_code=303)
