"""Pages: the work queue, cases, eye marking, search results, conclusions, the proposal of an identification,
its blind verification, reports and the export.

Every route calls the library (:class:`nomina.workspace.Workspace`) as the viewer, which checks the same
rule again and records what was seen or changed. Post-mortem photos are served blurred unless the viewer
chose to see them (``?reveal=1``) or set their account to show them (see :mod:`nomina.web.media`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from .. import workflow
from ..cases import CaseRecord, CaseSummary
from ..errors import FileMissing, ImageTooLarge, InvalidField, NominaError, NotAnImage, NotFound, UnsupportedFormat
from ..faces import parse_eyes
from ..records import CASE_KINDS, SEXES, CaseFields, PhotoInput
from ..search import CaseFacts, RefFacts, SearchResult
from ..workspace import Workspace
from . import media, uploads
from .access import Viewer, page
from .render import field_errors, local_path, paged, render, segment

__all__ = ["QUEUE", "router"]

router = APIRouter()

#: The work queue's tabs: (key, title), in the order a case moves through them.
QUEUE = (
    ("unsearched", "No search yet"),
    ("review", "Candidates to review"),
    ("proposed", "Proposed, awaiting verification"),
    ("disputed", "Disputed"),
    ("identified", "Identified"),
)


# -- small helpers --------------------------------------------------------------------------------------
def _flag(value: str | None) -> bool:
    return value not in (None, "", "0", "false", "off", "no")


def _page_no(value: str | None) -> int:
    try:
        return max(1, int(value or 1))
    except ValueError:
        return 1


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


# -- the work queue -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QueueRow:
    """A case in the work queue: where it stands and what to do next."""

    case: CaseSummary
    bucket: str
    searches: int
    last_search: int | None
    reference_id: str | None  # of the open identification


def _bucket(case: CaseSummary, searched: bool) -> str:
    if case.status != "open":
        return case.status
    return "review" if searched else "unsearched"


def _queue_rows(ws: Workspace) -> list[QueueRow]:
    summaries = ws.cases()
    last: dict[str, int] = {}
    counts: dict[str, int] = {}
    for sr in ws.searches():
        last[sr.case_id] = max(last.get(sr.case_id, 0), sr.search_id)
        counts[sr.case_id] = counts.get(sr.case_id, 0) + 1
    open_ids = {i.case_id: i.reference_id for i in ws.identifications() if i.status != "withdrawn"}
    return [
        QueueRow(
            c, _bucket(c, c.case_id in last), counts.get(c.case_id, 0), last.get(c.case_id), open_ids.get(c.case_id)
        )
        for c in summaries
    ]


@router.get("/queue", response_class=HTMLResponse)
def queue(
    request: Request, status: str = "", q: str = "", kind: str = "", viewer: Viewer = page("case.read")
) -> Response:
    rows = _queue_rows(viewer.ws)
    text = q.strip().lower()
    rows = [r for r in rows if (not text or text in r.case.case_id.lower()) and (not kind or r.case.kind == kind)]
    counts = {key: sum(1 for r in rows if r.bucket == key) for key, _ in QUEUE}
    status = status if status in counts else ""
    shown = [r for r in rows if not status or r.bucket == status]
    return render(
        request,
        "queue.html",
        viewer,
        tabs=QUEUE,
        titles=dict(QUEUE),
        counts=counts,
        status=status,
        form={"q": q, "kind": kind},
        kinds=CASE_KINDS,
        paged=paged(shown, _page_no(request.query_params.get("page"))),
        total=len(rows),
        tab_link=lambda key: "/queue?" + urlencode({k: v for k, v in (("status", key), ("q", q), ("kind", kind)) if v}),
        q=segment,
    )


@router.get("/verifications", response_class=HTMLResponse)
def verifications(request: Request, viewer: Viewer = page("identification.verify")) -> Response:
    # A blind record is one this viewer did not propose: the ones they may verify.
    waiting = [i for i in viewer.ws.identifications("proposed") if i.blind]
    page_arg = request.query_params.get("page")
    return render(request, "verifications.html", viewer, paged=paged(waiting, _page_no(page_arg)))


# -- cases ----------------------------------------------------------------------------------------------
@router.get("/cases", response_class=HTMLResponse)
def case_list(
    request: Request, q: str = "", kind: str = "", status: str = "", viewer: Viewer = page("case.read")
) -> Response:
    text = q.strip().lower()
    found = [
        c
        for c in viewer.ws.cases()
        if (not text or text in c.case_id.lower() or text in (c.found_at or "").lower())
        and (not kind or c.kind == kind)
        and (not status or c.status == status)
    ]
    return render(
        request,
        "cases.html",
        viewer,
        paged=paged(found, _page_no(request.query_params.get("page"))),
        form={"q": q, "kind": kind, "status": status},
        kinds=CASE_KINDS,
        statuses=workflow.STATUSES,
    )


_CASE_FORM_FIELDS = ("case_id", "kind", "found_on", "found_at", "notes", "photos")


def _new_case_page(
    request: Request, viewer: Viewer, status: int = 200, form: dict[str, str] | None = None, **errors: str
) -> Response:
    return render(
        request,
        "case_form.html",
        viewer,
        status,
        form=form or {"kind": "deceased"},
        errors=errors,
        kinds=CASE_KINDS,
        max_mb=uploads.MAX_PHOTO_BYTES // 2**20,
        max_files=uploads.MAX_PHOTOS,
    )


@router.get("/cases/new", response_class=HTMLResponse)
def new_case(request: Request, viewer: Viewer = page("case.write")) -> Response:
    return _new_case_page(request, viewer)


def _save_and_add(viewer: Viewer, fields: CaseFields, files: list[UploadFile]) -> CaseRecord:
    with uploads.saved(files) as paths:
        return viewer.ws.add_case(fields, [PhotoInput(path=p) for p in paths])


@router.post("/cases/new", response_class=HTMLResponse)
async def add_case(
    request: Request,
    case_id: str = Form(""),
    kind: str = Form(""),
    found_on: str = Form(""),
    found_at: str = Form(""),
    notes: str = Form(""),
    viewer: Viewer = page("case.write"),
) -> Response:
    # The fields are declared so that FastAPI reads the form before the guard runs and closes its uploaded
    # files after the response, whatever happens; the photos are read from the same parsed form.
    form = {"case_id": case_id, "kind": kind, "found_on": found_on, "found_at": found_at, "notes": notes}
    return await _add_case(request, viewer, form, await request.form())


async def _add_case(request: Request, viewer: Viewer, form: dict[str, str], data: FormData) -> Response:
    files = [f for f in data.getlist("photos") if isinstance(f, UploadFile) and (f.filename or f.size)]
    if not files:
        return _new_case_page(request, viewer, 422, form, photos="add at least one photo of the person")
    if len(files) > uploads.MAX_PHOTOS:
        return _new_case_page(request, viewer, 422, form, photos=f"at most {uploads.MAX_PHOTOS} photos at a time")
    try:
        fields = CaseFields(
            form["case_id"].strip(),
            kind=form["kind"],
            found_on=form["found_on"].strip() or None,  # type: ignore[arg-type]  # checked and parsed by CaseFields
            found_at=form["found_at"] or None,
            notes=form["notes"] or None,
        )
        added = await run_in_threadpool(_save_and_add, viewer, fields, files)
    except NominaError as exc:
        where = exc.field if exc.field in _CASE_FORM_FIELDS else ""
        if not where and isinstance(exc, NotAnImage | UnsupportedFormat | ImageTooLarge | FileMissing):
            where = "photos"
        return _new_case_page(request, viewer, exc.http_status, form, **{where or "": exc.message})
    warnings = list(getattr(added, "warnings", []))
    if warnings:
        return await run_in_threadpool(
            _case_page, request, viewer, added.case_id, 201, notice="Case added. " + " ".join(warnings)
        )
    return RedirectResponse(f"/cases/{segment(added.case_id)}?added=1", status_code=303)


@dataclass(frozen=True)
class PhotoView:
    """A case photo as the case page shows it."""

    number: int
    file_name: str
    width: int
    height: int
    blurred: bool
    no_face: bool
    faces: list[Any]


def _photo_views(ws: Workspace, case: CaseRecord, shown: bool) -> list[PhotoView]:
    views = []
    for p in case.photos:
        width, height = media.photo_size(ws.photos.read(p.sha256))
        views.append(PhotoView(p.number, p.file_name, width, height, not shown, not p.faces, list(p.faces)))
    return views


def _case_page(
    request: Request,
    viewer: Viewer,
    case_id: str,
    status: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    notice: str | None = None,
) -> Response:
    ws = viewer.ws
    case = ws.case(case_id)
    reveal = _flag(request.query_params.get("reveal"))
    shown = media.show_unblurred(case.kind, viewer.preferences, reveal)
    history = ws.identification(case_id)
    if notice is None and request.query_params.get("added"):
        notice = "Case added."
        if case.photos_without_face:
            notice += f" {case.photos_without_face} photo(s) with no face found: mark the eyes to search them."
    return render(
        request,
        "case.html",
        viewer,
        status,
        case=case,
        photos=_photo_views(ws, case, shown),
        reveal=reveal,
        shown=shown,
        blur_note=media.BLUR_NOTE,
        history=history,
        errors=errors or {},
        form=form or {},
        notice=notice,
        q=segment,
    )


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, case_id: str, viewer: Viewer = page("case.read")) -> Response:
    return _case_page(request, viewer, case_id)


@router.get("/cases/{case_id}/photos/{number}")
def case_photo(request: Request, case_id: str, number: int, viewer: Viewer = page("case.read")) -> Response:
    case = viewer.ws.case(case_id)
    if not 1 <= number <= len(case.photos):
        raise NotFound(f"case {case_id}: no photo {number}", record=f"case {case_id}")
    p = case.photos[number - 1]
    reveal = _flag(request.query_params.get("reveal"))
    blur = not media.show_unblurred(case.kind, viewer.preferences, reveal)
    return media.photo_png(viewer.ws, p.sha256, p.file_name, blur=blur)


# -- eye marking -------------------------------------------------------------------------------------------
_EYE_FIELDS = ("left_x", "left_y", "right_x", "right_y")


def _eyes_page(
    request: Request,
    viewer: Viewer,
    case_id: str,
    number: int,
    status: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    ws = viewer.ws
    case = ws.case(case_id)
    if not 1 <= number <= len(case.photos):
        raise NotFound(f"case {case_id}: no photo {number}", record=f"case {case_id}")
    photo = case.photos[number - 1]
    reveal = _flag(request.query_params.get("reveal")) or bool(form)
    shown = media.show_unblurred(case.kind, viewer.preferences, reveal)
    width, height = media.photo_size(ws.photos.read(photo.sha256))
    return render(
        request,
        "eyes.html",
        viewer,
        status,
        case=case,
        photo=photo,
        width=width,
        height=height,
        shown=shown,
        reveal=reveal,
        blur_note=media.BLUR_NOTE,
        errors=errors or {},
        form=form or {},
        q=segment,
    )


@router.get("/cases/{case_id}/photos/{number}/eyes", response_class=HTMLResponse)
def eyes_form(request: Request, case_id: str, number: int, viewer: Viewer = page("case.write")) -> Response:
    return _eyes_page(request, viewer, case_id, number)


@router.post("/cases/{case_id}/photos/{number}/eyes", response_class=HTMLResponse)
def mark_eyes(
    request: Request,
    case_id: str,
    number: int,
    left_x: str = Form(""),
    left_y: str = Form(""),
    right_x: str = Form(""),
    right_y: str = Form(""),
    viewer: Viewer = page("case.write"),
) -> Response:
    form = {"left_x": left_x, "left_y": left_y, "right_x": right_x, "right_y": right_y}
    errors = {name: "required: a number of pixels" for name, value in form.items() if not value.strip()}
    for name, value in form.items():
        if name not in errors:
            try:
                float(value)
            except ValueError:
                errors[name] = f"{value!r} is not a number"
    if errors:
        return _eyes_page(request, viewer, case_id, number, 422, errors, form)
    try:
        eyes = parse_eyes(",".join(form[name].strip() for name in _EYE_FIELDS))  # image-left eye first
        viewer.ws.mark_eyes(case_id, number, eyes)
    except InvalidField as exc:
        return _eyes_page(request, viewer, case_id, number, exc.http_status, {"eyes": exc.message}, form)
    except NominaError as exc:
        return _eyes_page(request, viewer, case_id, number, exc.http_status, field_errors(exc), form)
    return RedirectResponse(f"/cases/{segment(case_id)}", status_code=303)


# -- searches ------------------------------------------------------------------------------------------
@router.post("/cases/{case_id}/search", response_class=HTMLResponse)
def run_search(
    request: Request, case_id: str, exhaustive: str = Form(""), viewer: Viewer = page("search.run")
) -> Response:
    try:
        result = viewer.ws.search(case_id, exhaustive=exhaustive == "on")
    except NominaError as exc:
        return _case_page(request, viewer, case_id, exc.http_status, errors={"search": exc.message})
    return RedirectResponse(f"/searches/{result.search_id}", status_code=303)


@dataclass(frozen=True)
class CandidateView:
    """A candidate as the search page shows it: the result, the reference's facts and the flags."""

    c: Any  # nomina.search.CandidateResult
    facts: RefFacts | None
    flags: list[str]


def _filters(request: Request) -> dict[str, str]:
    keys = ("sex", "born_from", "born_to", "seen_from", "seen_to")
    return {k: request.query_params.get(k, "").strip()[:40] for k in keys}


def _date_or_none(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _candidate_views(
    result: SearchResult, case: CaseFacts, refs: dict[str, RefFacts], filters: dict[str, str]
) -> list[CandidateView]:
    sex = filters["sex"]
    born_from, born_to = _int_or_none(filters["born_from"]), _int_or_none(filters["born_to"])
    seen_from, seen_to = _date_or_none(filters["seen_from"]), _date_or_none(filters["seen_to"])
    out = []
    for c in result.candidates:
        facts = refs.get(c.reference_id)
        if facts is not None:  # a candidate with no recorded value stays: the filter cannot rule it out
            if sex and facts.sex and facts.sex != sex:
                continue
            if born_from is not None and facts.birth_year is not None and facts.birth_year < born_from:
                continue
            if born_to is not None and facts.birth_year is not None and facts.birth_year > born_to:
                continue
            seen = facts.last_seen_on
            if seen is not None and ((seen_from and seen < seen_from) or (seen_to and seen > seen_to)):
                continue
        flags = []
        if facts and facts.last_seen_on and case.found_on and facts.last_seen_on > case.found_on:
            flags.append(
                f"last seen on {facts.last_seen_on.isoformat()}, after this person was found "
                f"({case.found_on.isoformat()})"
            )
        if facts is None:
            flags.append("this reference has been erased since the search")
        out.append(CandidateView(c, facts, flags))
    return out


def _search_page(
    request: Request,
    viewer: Viewer,
    search_id: int,
    status: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    notice: str | None = None,
) -> Response:
    result = viewer.ws.get_search(search_id)
    case, refs = viewer.ws.search_facts(result.case_id, (c.reference_id for c in result.candidates))
    filters = _filters(request)
    shown = _candidate_views(result, case, refs, filters)
    reveal = _flag(request.query_params.get("reveal"))
    return render(
        request,
        "search.html",
        viewer,
        status,
        result=result,
        case=case,
        candidates=shown,
        filters=filters,
        sexes=SEXES,
        conclusions=workflow.CONCLUSIONS,
        reveal=reveal,
        reveal_query="?reveal=1" if reveal else "",
        shown=media.show_unblurred(case.kind, viewer.preferences, reveal),
        filter_query=urlencode({k: v for k, v in filters.items() if v}),
        errors=errors or {},
        form=form or {},
        notice=notice,
        q=segment,
    )


@router.get("/searches/{search_id}", response_class=HTMLResponse)
def search_page(request: Request, search_id: int, viewer: Viewer = page("case.read")) -> Response:
    return _search_page(request, viewer, search_id)


def _back_to_search(search_id: int, rank: int, query: str = "") -> str:
    return f"/searches/{search_id}{'?' + query if query else ''}#c{rank}"


@router.post("/searches/{search_id}/conclusions", response_class=HTMLResponse)
def conclude(
    request: Request,
    search_id: int,
    rank: int = Form(...),
    conclusion: str = Form(""),
    reasons: str = Form(""),
    filters: str = Form(""),
    viewer: Viewer = page("conclusion.write"),
) -> Response:
    try:
        viewer.ws.conclude(search_id, rank, conclusion, reasons)
    except NominaError as exc:
        form = {f"conclusion-{rank}": conclusion, f"reasons-{rank}": reasons}
        where = "" if exc.field == "rank" else f"cand-{rank}"  # no such candidate: said at the top
        return _search_page(request, viewer, search_id, exc.http_status, {where: exc.message}, form)
    return RedirectResponse(_back_to_search(search_id, rank, _safe_query(filters)), status_code=303)


def _safe_query(text: str) -> str:
    """Filter parameters sent back by a form, kept to the ones the search page takes."""
    allowed = {"sex", "born_from", "born_to", "reveal"}
    pairs = [p.split("=", 1) for p in text.split("&") if "=" in p]
    return urlencode([(k, v) for k, v in pairs if k in allowed])


# -- identification --------------------------------------------------------------------------------------
@router.post("/cases/{case_id}/identification", response_class=HTMLResponse)
def propose(
    request: Request,
    case_id: str,
    reference_id: str = Form(""),
    reasons: str = Form(""),
    search_id: str = Form(""),
    rank: str = Form(""),
    back: str = Form(""),
    viewer: Viewer = page("conclusion.write"),
) -> Response:
    try:
        if not reference_id.strip():
            raise InvalidField("reference_id: required: the candidate proposed")
        viewer.ws.propose_identification(case_id, reference_id.strip(), reasons)
    except NominaError as exc:
        sid, rk = _int_or_none(search_id), _int_or_none(rank)
        if sid is not None and rk is not None:
            form = {f"propose-{rk}": reasons}
            return _search_page(request, viewer, sid, exc.http_status, {f"propose-{rk}": exc.message}, form)
        errors = {"propose" if exc.field in ("reasons", "reference_id") else "": exc.message}
        return _case_page(request, viewer, case_id, exc.http_status, errors, {"reasons": reasons})
    return RedirectResponse(local_path(back, f"/cases/{segment(case_id)}#identification"), status_code=303)


@router.post("/cases/{case_id}/identification/withdraw", response_class=HTMLResponse)
def withdraw(
    request: Request, case_id: str, reason: str = Form(""), viewer: Viewer = page("conclusion.write")
) -> Response:
    try:
        viewer.ws.withdraw_identification(case_id, reason)
    except NominaError as exc:
        errors = {"reason" if exc.field == "reason" else "": exc.message}
        return _case_page(request, viewer, case_id, exc.http_status, errors, {"reason": reason})
    return RedirectResponse(f"/cases/{segment(case_id)}", status_code=303)


def _verify_page(
    request: Request,
    viewer: Viewer,
    case_id: str,
    status: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    notice: str | None = None,
) -> Response:
    """The verifier's page: the case and the proposed reference, as the library lets this viewer see them
    (to a blind viewer it gives neither the proposer nor the reasons; the examiners' conclusions are not
    shown here at all)."""
    ws = viewer.ws
    case = ws.case(case_id)
    current = case.identification
    candidate = None
    reference = None
    if current is not None:
        reference = ws.reference(current.reference_id)
        if current.search_id is not None:
            result = ws.get_search(current.search_id)
            candidate = next((c for c in result.candidates if c.reference_id == current.reference_id), None)
    reveal = _flag(request.query_params.get("reveal"))
    return render(
        request,
        "verify.html",
        viewer,
        status,
        case=case,
        current=current,
        candidate=candidate,
        reference=reference,
        reveal=reveal,
        reveal_query="?reveal=1" if reveal else "",
        shown=media.show_unblurred(case.kind, viewer.preferences, reveal),
        verifications=workflow.VERIFICATIONS,
        errors=errors or {},
        form=form or {},
        notice=notice,
        q=segment,
    )


@router.get("/cases/{case_id}/verify", response_class=HTMLResponse)
def verify_form(request: Request, case_id: str, viewer: Viewer = page("identification.verify")) -> Response:
    return _verify_page(request, viewer, case_id)


@router.post("/cases/{case_id}/verify", response_class=HTMLResponse)
def verify(
    request: Request,
    case_id: str,
    conclusion: str = Form(""),
    reasons: str = Form(""),
    reference_id: str = Form(""),
    viewer: Viewer = page("identification.verify"),
) -> Response:
    try:
        if not conclusion:
            raise InvalidField("conclusion: required: choose your own conclusion")
        if not reference_id:
            raise InvalidField("reference_id: required: the reference the page showed; look at the case again")
        # the reference the page showed: refused if the proposal changed to another since
        viewer.ws.verify_identification(case_id, conclusion, reasons, reference_id)
    except NominaError as exc:
        # a proposal that changed meanwhile is compared afresh: nothing of the answer about the other is kept
        form = {} if exc.field == "reference_id" else {"conclusion": conclusion, "reasons": reasons}
        return _verify_page(request, viewer, case_id, exc.http_status, field_errors(exc), form)
    return RedirectResponse(f"/cases/{segment(case_id)}", status_code=303)


# -- reports and export ----------------------------------------------------------------------------------
@router.get("/cases/{case_id}/report.html")
def report_html(case_id: str, viewer: Viewer = page("report.read")) -> Response:
    return media.report_download(viewer.ws, case_id, "html")


@router.get("/cases/{case_id}/report.pdf")
def report_pdf(case_id: str, viewer: Viewer = page("report.read")) -> Response:
    return media.report_download(viewer.ws, case_id, "pdf")


@router.get("/export.json")
def export_json(viewer: Viewer = page("export.read")) -> Response:
    return media.export_download(viewer.ws, "json")


@router.get("/export.csv")
def export_csv(viewer: Viewer = page("export.read")) -> Response:
    return media.export_download(viewer.ws, "csv")
