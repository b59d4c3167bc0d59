"""The REST API, ``/api/v1``: what the command line does, for programs, with an API token.

Every route takes ``Authorization: Bearer <API token>`` (``nomina token create``, or ``POST /api/v1/tokens``
with a token one already has) and acts as the token's user, with that user's roles: each route names one
action of :data:`nomina.roles.ACTIONS`, checked before anything else (403 otherwise) and again by the library
inside the call's own transaction. The library records every call in the audit trail, reads included.

What every route shares:

- records are the library's results as ``to_dict()`` gives them (the shapes of docs/json.md): never a
  photo's bytes, a password hash or a face's vector;
- a list is paged: ``?page=`` (from 1) and ``?size=`` (1 to 500, 50 by default) give
  ``{"items", "page", "size", "total"}``; the audit trail pages back by event number (``before``);
- an error is ``{"error": {"code", "message", "field"}}`` with the status of :func:`nomina.errors.http_status`
  (see nomina.web.app);
- a JSON body is an object read after the caller is checked, at most :data:`MAX_JSON_BYTES`; photos come as
  ``multipart/form-data`` files named ``photos``, each at most :data:`MAX_PHOTO_BYTES`, written to a private
  temporary folder for the library to read and removed after.

``GET /api/v1/openapi.json`` is the schema of these routes, each with the roles allowed; ``/api-docs`` is the
same as a page for people (FastAPI's own /docs loads its scripts from another site, so it is not served).
"""

from __future__ import annotations

import copy
import json
import math
import re
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import roles as role_table
from ..errors import ImageTooLarge, InvalidField, NominaError, NotFound
from ..faces import parse_eyes
from ..files import UPLOAD_TEMP
from ..records import (
    CASE_KINDS,
    SEXES,
    TEXT_MAX_LENGTH,
    CaseFields,
    PhotoInput,
    Provenance,
    Record,
    ReferenceFields,
    check_eyes,
    record_number,
    shown,
)
from ..workflow import STATUSES
from . import media, uploads
from .access import Guard, Viewer, api, page
from .render import MAX_PAGE_SIZE, PAGE_SIZE, render

__all__ = ["MAX_JSON_BYTES", "MAX_PHOTO_BYTES", "MAX_PHOTOS", "MAX_UPLOAD_BYTES", "api_schema", "docs_router", "router"]

router = APIRouter()
docs_router = APIRouter()

MAX_PHOTO_BYTES, MAX_PHOTOS = uploads.MAX_PHOTO_BYTES, uploads.MAX_PHOTOS
#: The largest multipart request (every photo and field together).
MAX_UPLOAD_BYTES = 250 * 1024 * 1024
#: The largest JSON body.
MAX_JSON_BYTES = 1024 * 1024
_API_PREFIX = "/api/v1"  # as nomina.web.app mounts the router (not imported: app imports this module)
_LARGEST = 2**63 - 1  # the largest record number the database holds

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")

Page = Annotated[int, Query(ge=1, le=2**31, description="Page number, from 1.")]
Size = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"Items per page, 1 to {MAX_PAGE_SIZE}.")]


# -- shared pieces ------------------------------------------------------------------------------------------
def _paged(items: Sequence[Any], page: int, size: int) -> dict[str, Any]:
    """Page ``page`` of ``items`` as the API answers a list; a page past the end is empty."""
    start = (page - 1) * size
    chosen = items[start : start + size] if start < len(items) else []
    return {
        "items": [i.to_dict() if isinstance(i, Record) else i for i in chosen],
        "page": page,
        "size": size,
        "total": len(items),
    }


async def _call(function: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """Run a library call (blocking I/O) from an ``async`` route."""
    return await run_in_threadpool(function, *args, **kwargs)


async def _read_limited(request: Request, limit: int, what: str) -> bytes:
    declared = uploads.declared_length(request.headers)
    if declared is not None and declared > limit:
        raise ImageTooLarge(f"body: {what} is over {limit:,} bytes", field="body")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ImageTooLarge(f"body: {what} is over {limit:,} bytes", field="body")
    return bytes(body)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


class _GivenTwice(Exception):
    """A JSON object naming a field twice: which one counts would be the parser's choice, not the sender's."""


def _once_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _GivenTwice(key)
        found[key] = value
    return found


async def _json(request: Request, model: type[T]) -> T:
    """The request's JSON body as ``model`` (an empty body is ``{}``), read after the caller was checked."""
    data = await _json_object(request)
    try:
        return model.model_validate_json(json.dumps(data), strict=True)
    except ValidationError as exc:
        raise _invalid(exc) from None


async def _json_object(request: Request) -> dict[str, Any]:
    body = await _read_limited(request, MAX_JSON_BYTES, "the JSON body")
    if not body.strip():
        return {}
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise InvalidField("body: send a JSON object with Content-Type: application/json", field="body")
    try:
        data = json.loads(body, parse_constant=_refuse_constant, object_pairs_hook=_once_each)
    except _GivenTwice as exc:
        raise InvalidField(f"body: {shown(exc.args[0])} is given twice; give each field once", field="body") from None
    except (ValueError, RecursionError):
        raise InvalidField("body: not valid JSON", field="body") from None
    if not isinstance(data, dict):
        raise InvalidField(f"body: must be a JSON object, not {type(data).__name__}", field="body")
    return data


def _invalid(exc: ValidationError) -> InvalidField:
    """A body that does not fit its model, as the one error about its first wrong field."""
    first = exc.errors(include_url=False)[0]
    where = [str(p) for p in first.get("loc", ())]
    name = where[0] if where else "body"
    path = ".".join(where) or "body"
    kind = first.get("type", "")
    if kind == "extra_forbidden":
        message = f"{path}: not a field of this request"
    elif kind == "missing":
        message = f"{path}: required"
    else:
        message = f"{path}: {str(first.get('msg', 'invalid')).lower()}"
    return InvalidField(message, field=name)


def _json_doc(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI description of a JSON body read with :func:`_json`."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


def _multipart_doc(fields: dict[str, str], required: tuple[str, ...]) -> dict[str, Any]:
    """The OpenAPI description of a multipart upload: text fields and the ``photos`` files."""
    properties: dict[str, Any] = {name: {"type": "string", "description": text} for name, text in fields.items()}
    properties["photos"] = {
        "type": "array",
        "items": {"type": "string", "format": "binary"},
        "description": f"One or more photo files (JPEG, PNG, WebP, BMP, TIFF), each at most "
        f"{MAX_PHOTO_BYTES // 2**20} MB, at most {MAX_PHOTOS} in one request.",
    }
    schema = {"type": "object", "properties": properties, "required": [*required, "photos"]}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


# -- uploads ------------------------------------------------------------------------------------------------
@contextmanager
def _fields_named(names: dict[str, str]) -> Iterator[None]:
    """Errors of the block name the body's keys (``names``: the library's field -> the key)."""
    try:
        yield
    except InvalidField as exc:
        key = names.get(exc.field or "")
        if key is not None:
            if exc.message.startswith(f"{exc.field}:"):  # the message names the key too
                exc.message = key + exc.message[len(exc.field or "") :]
                exc.args = (exc.message,)
            exc.field = key
        raise


# A text field of a multipart upload, in bytes: the longest text accepted, in UTF-8's longest characters (the
# field's own check then counts its characters and names it).
_MAX_TEXT_PART = 4 * TEXT_MAX_LENGTH + 1024


@asynccontextmanager
async def _upload(request: Request) -> AsyncIterator[tuple[dict[str, str], list[UploadFile]]]:
    """The text fields and the ``photos`` files of a multipart request, refused when too large."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raise InvalidField("photos: send the fields and photo files as multipart/form-data", field="photos")

    def too_big() -> NominaError:
        return ImageTooLarge(f"photos: the upload is over {MAX_UPLOAD_BYTES:,} bytes", field="photos")

    declared = uploads.declared_length(request.headers)
    if declared is not None and declared > MAX_UPLOAD_BYTES:
        raise too_big()
    reader = Request(request.scope, uploads.counted(request.receive, MAX_UPLOAD_BYTES, too_big))
    try:
        form: FormData = await reader.form(max_files=MAX_PHOTOS, max_fields=100, max_part_size=_MAX_TEXT_PART)
    except StarletteHTTPException as exc:  # a malformed body, or too many files or fields
        if "Part exceeded maximum size" in str(exc.detail):  # Starlette does not say which part
            raise InvalidField(
                f"a text field of the upload is over {_MAX_TEXT_PART:,} bytes: text fields hold at most "
                f"{TEXT_MAX_LENGTH:,} characters"
            ) from None
        raise InvalidField(f"photos: the upload cannot be read: {exc.detail}", field="photos") from None
    try:
        fields: dict[str, str] = {}
        files: list[UploadFile] = []
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if name != "photos":
                    raise InvalidField(f"{name}: not a file field (photo files go in 'photos')", field=name)
                if value.size is not None and value.size > MAX_PHOTO_BYTES:
                    raise ImageTooLarge(
                        f"photos: {uploads.safe_name(value.filename, 0)} is over {MAX_PHOTO_BYTES:,} bytes",
                        field="photos",
                    )
                files.append(value)
            elif name == "photos":  # text, or a file input sent with no file chosen (an empty file name)
                why = "at least one photo file is required" if not value else "send each photo as a file, not as text"
                raise InvalidField(f"photos: {why}", field="photos")
            elif name in fields:
                raise InvalidField(f"{name}: given more than once", field=name)
            else:
                fields[name] = value
        yield fields, files
    finally:
        await form.close()


@asynccontextmanager
async def _saved(files: list[UploadFile]) -> AsyncIterator[list[Path]]:
    """:func:`nomina.web.uploads.saved`, writing the files outside the event loop."""
    if not files:
        raise InvalidField("photos: at least one photo file is required", field="photos")
    with tempfile.TemporaryDirectory(prefix=UPLOAD_TEMP) as folder:
        paths = await _call(uploads.write, files, Path(folder))
        try:
            yield paths
        except NominaError as exc:
            uploads.relabel(exc, folder, len(paths))
            raise


def _take(fields: dict[str, str], allowed: Sequence[str]) -> dict[str, str | None]:
    """The form's fields, each of ``allowed`` (absent or empty: None); any other field is refused."""
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise InvalidField(f"{unknown[0]}: not a field of this request", field=unknown[0])
    return {name: (fields.get(name) or None) for name in allowed}


def _face_number(text: str | None) -> int | None:
    if text is None:
        return None
    if not (text.strip().isascii() and text.strip().isdigit()) or not 1 <= int(text.strip()) <= 10_000:
        raise InvalidField(f"face: {text[:20]!r} is not a face number (faces are numbered from 1)", field="face")
    return int(text.strip())


def _photo_inputs(paths: list[Path], given: dict[str, str | None]) -> list[PhotoInput]:
    """The photos to enrol, with the options that go with them (as ``nomina ... add`` takes them)."""
    face = _face_number(given.get("face"))
    marked = given.get("eyes")
    eyes = parse_eyes(marked) if marked else None
    if (face is not None or eyes is not None) and len(paths) > 1:
        which = "face" if face is not None else "eyes"
        raise InvalidField(f"{which}: applies to one photo; add photos with several faces one at a time", field=which)
    return [
        PhotoInput(
            path=p,
            face=face,
            eyes=eyes,
            photo_date=given.get("photo_date"),  # type: ignore[arg-type]  # PhotoInput parses the text
            quality_override=given.get("quality_override"),
        )
        for p in paths
    ]


def _provenance(given: dict[str, str | None]) -> Provenance:
    return Provenance(
        source=given["source"] or "",
        supplied_by=given["supplied_by"] or "",
        legal_basis=given["legal_basis"] or "",
        consent=given["consent"],
    )


_PHOTO_FIELDS = {
    "photo_date": "Date the photos were taken, YYYY-MM-DD.",
    "face": "Face number to take from a photo showing several (one photo only).",
}
_REFERENCE_PHOTO_FIELDS = {
    **_PHOTO_FIELDS,
    "quality_override": "Reason for enrolling a photo whose face fails the quality gate.",
    "source": "Where the photos come from: family, official-record or other.",
    "supplied_by": "Who supplied the photos.",
    "legal_basis": "The legal basis for holding them.",
    "consent": "Consent given, if any.",
}
_REFERENCE_FIELDS = {
    "reference_id": "The reference's id (a short id without spaces).",
    "name": "The missing person's name.",
    "sex": "female, male, other or unknown.",
    "birth_year": "Year of birth.",
    "last_seen_on": "Date last seen, YYYY-MM-DD.",
    "last_seen_at": "Place last seen.",
    "notes": "Free notes.",
    "retain_until": "Keep the record until this date, YYYY-MM-DD (default: the workspace's retention).",
    **_REFERENCE_PHOTO_FIELDS,
}
_CASE_FIELDS = {
    "case_id": "The case's id (a short id without spaces).",
    "kind": "deceased (post-mortem photos) or living.",
    "found_on": "Date found, YYYY-MM-DD.",
    "found_at": "Place found.",
    "notes": "Free notes.",
    **_PHOTO_FIELDS,
    "eyes": "Eye centres X1,Y1,X2,Y2 in photo pixels, for a photo where no face is found (one photo only).",
}


# -- request bodies -------------------------------------------------------------------------------------------
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TokenRequest(_Body):
    label: str = Field(description="What will use the token (a script's or program's name).")
    expires_days: int | None = Field(None, ge=1, le=3660, description="Days until it expires (default: never).")


class SearchRequest(_Body):
    face: int | None = Field(None, ge=1, le=10_000, description="Search with this case face only (default: all).")
    top: int | None = Field(None, ge=1, le=100_000, description="Candidates to keep (default: the workspace's).")
    exhaustive: bool = Field(
        False,
        description="Compare every reference face even when the gallery uses its approximate index (slower; "
        "finds weak matches of hard photos that index can miss). Recorded with the search.",
    )


class ConclusionRequest(_Body):
    rank: int = Field(ge=1, le=_LARGEST, description="The candidate's rank in the search.")
    conclusion: str = Field(description="excluded, possible match or insufficient information.")
    reasons: str = Field(description="What the conclusion rests on.")
    checklist: dict[str, Any] | None = Field(
        None, description='Feature checklist: {"<feature>": {"finding": "similar|different|not visible", "note": ""}}.'
    )


class ProposalRequest(_Body):
    reference_id: str = Field(description="The reference the case is proposed to be (one of its candidates).")
    reasons: str = Field(description="What the proposal rests on.")


class VerificationRequest(_Body):
    conclusion: str = Field(description="same person, different people or inconclusive.")
    reasons: str = Field(description="What the verifier's conclusion rests on.")
    reference_id: str = Field(
        description="The reference the verifier compared the case with: refused with 409 if the proposal was "
        "withdrawn and another reference proposed meanwhile.",
    )


class WithdrawalRequest(_Body):
    reason: str = Field(description="Why the identification is withdrawn.")


class ErasureRequest(_Body):
    reason: str = Field(description="Why the record is erased (kept in the audit trail).")


class EyesRequest(_Body):
    left: tuple[float, float] = Field(description="One eye centre [x, y] in photo pixels.")
    right: tuple[float, float] = Field(description="The other eye centre [x, y] in photo pixels.")


class UserRequest(_Body):
    name: str = Field(description="The new user's name.")
    roles: list[str] | str = Field(description="Roles: examiner, verifier, admin, intake, auditor.")
    password: str | None = Field(None, description="A password to log in with (without one they cannot log in).")


class RolesRequest(_Body):
    roles: list[str] | str = Field(description="The user's roles from now on (exactly these).")


class PasswordRequest(_Body):
    password: str = Field(description="The new password; the user's sessions end.")


# -- account ----------------------------------------------------------------------------------------------
@router.get("/me", summary="Who the token acts as", tags=["account"])
def whoami(viewer: Viewer = api("account")) -> Any:
    """The token's user, their roles, and the token itself (never its secret)."""
    return viewer.ws.whoami().to_dict()


@router.get("/tokens", summary="List API tokens", tags=["account"])
def list_tokens(
    page: Page = 1,
    size: Size = PAGE_SIZE,
    everyone: Annotated[bool, Query(alias="all", description="Every user's tokens (admin only).")] = False,
    viewer: Viewer = api("account"),
) -> Any:
    """The caller's API tokens, oldest first (never their secrets); an admin may ask for everyone's."""
    return _paged(viewer.ws.tokens(everyone=everyone), page, size)


@router.post(
    "/tokens", summary="Make an API token", tags=["account"], status_code=201, openapi_extra=_json_doc(TokenRequest)
)
async def create_token(request: Request, viewer: Viewer = api("account")) -> Any:
    """A new API token for the caller, with the caller's roles. The `secret` is in this answer and nowhere
    else: store it now."""
    body = await _json(request, TokenRequest)
    return (await _call(viewer.ws.create_token, body.label, body.expires_days)).to_dict()


@router.delete("/tokens/{token_id}", summary="Revoke an API token", tags=["account"])
def revoke_token(token_id: int, viewer: Viewer = api("account")) -> Any:
    """Revoke one of the caller's tokens (an admin: anyone's); programs using it are refused at once."""
    return viewer.ws.revoke_token(record_number(token_id, "token_id")).to_dict()


# -- references -----------------------------------------------------------------------------------------------
@router.get("/references", summary="List references", tags=["references"])
def list_references(
    page: Page = 1,
    size: Size = PAGE_SIZE,
    q: Annotated[str | None, Query(max_length=200, description="Part of the id or name (any case).")] = None,
    sex: Annotated[str | None, Query(description="Only references of this sex.")] = None,
    viewer: Viewer = api("reference.read"),
) -> Any:
    """Every reference (missing person), by id, with its number of photos."""
    found = viewer.ws.references()
    if q and q.strip():
        needle = q.strip().casefold()
        found = [r for r in found if needle in r.reference_id.casefold() or needle in r.name.casefold()]
    if sex:
        if sex not in SEXES:
            raise InvalidField(f"sex: {sex[:20]!r} is not one of {', '.join(SEXES)}", field="sex")
        found = [r for r in found if r.sex == sex]
    return _paged(found, page, size)


@router.get("/references/{reference_id}", summary="Show a reference", tags=["references"])
def show_reference(reference_id: str, viewer: Viewer = api("reference.read")) -> Any:
    """A reference with its photos (their SHA-256, provenance and faces; not their bytes)."""
    return viewer.ws.reference(reference_id).to_dict()


@router.post(
    "/references",
    summary="Add a reference",
    tags=["references"],
    status_code=201,
    openapi_extra=_multipart_doc(_REFERENCE_FIELDS, ("reference_id", "name", "source", "supplied_by", "legal_basis")),
)
async def add_reference(request: Request, viewer: Viewer = api("reference.write")) -> Any:
    """Enrol a missing person with one or more photos, all supplied under the provenance given."""
    async with _upload(request) as (form, files):
        given = _take(form, tuple(_REFERENCE_FIELDS))
        fields = ReferenceFields(
            id=given["reference_id"] or "",
            name=given["name"] or "",
            sex=given["sex"],
            birth_year=given["birth_year"],  # type: ignore[arg-type]  # ReferenceFields parses the text
            last_seen_on=given["last_seen_on"],  # type: ignore[arg-type]
            last_seen_at=given["last_seen_at"],
            notes=given["notes"],
            retain_until=given["retain_until"],  # type: ignore[arg-type]
        )
        provenance = _provenance(given)
        async with _saved(files) as paths:
            added = await _call(viewer.ws.add_reference, fields, _photo_inputs(paths, given), provenance)
    return added.to_dict()


@router.patch(
    "/references/{reference_id}",
    summary="Change a reference",
    tags=["references"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "description": "The fields to change (null clears one): name, sex, birth_year, last_seen_on, "
                        "last_seen_at, notes, retain_until.",
                        "additionalProperties": {"type": ["string", "integer", "null"]},
                    }
                }
            },
        }
    },
)
async def update_reference(reference_id: str, request: Request, viewer: Viewer = api("reference.write")) -> Any:
    """Change a reference's fields (its id never changes); the change is recorded."""
    changes = await _json_object(request)
    if not changes:
        raise InvalidField("body: give at least one field to change", field="body")
    for name, value in changes.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, str | int)):
            raise InvalidField(f"{name}: must be text, a whole number or null", field=name)
    return (await _call(viewer.ws.update_reference, reference_id, **changes)).to_dict()


@router.post(
    "/references/{reference_id}/photos",
    summary="Add photos to a reference",
    tags=["references"],
    status_code=201,
    openapi_extra=_multipart_doc(_REFERENCE_PHOTO_FIELDS, ("source", "supplied_by", "legal_basis")),
)
async def add_reference_photos(reference_id: str, request: Request, viewer: Viewer = api("reference.write")) -> Any:
    """More photos of an existing reference, all supplied under the provenance given."""
    async with _upload(request) as (form, files):
        given = _take(form, tuple(_REFERENCE_PHOTO_FIELDS))
        provenance = _provenance(given)
        async with _saved(files) as paths:
            done = await _call(viewer.ws.add_reference_photos, reference_id, _photo_inputs(paths, given), provenance)
    return done.to_dict()


@router.delete(
    "/references/{reference_id}",
    summary="Erase a reference",
    tags=["references"],
    openapi_extra=_json_doc(ErasureRequest),
)
async def erase_reference(reference_id: str, request: Request, viewer: Viewer = api("record.erase")) -> Any:
    """Erase a reference with a reason, leaving no biometric trace of it (its photos, faces and vectors);
    the audit trail keeps a tombstone: the id, counts and the reason."""
    body = await _json(request, ErasureRequest)
    return (await _call(viewer.ws.delete_reference, reference_id, body.reason)).to_dict()


_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"BM", "image/bmp", "bmp"),
    (b"II*\x00", "image/tiff", "tif"),
    (b"MM\x00*", "image/tiff", "tif"),
)


def _media_type(data: bytes) -> tuple[str, str]:
    """The media type and usual suffix of photo bytes, from their first bytes."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    for magic, media_type, suffix in _MAGIC:
        if data.startswith(magic):
            return media_type, suffix
    return "application/octet-stream", "bin"


@router.get(
    "/references/{reference_id}/photos/{number}",
    summary="Download a reference photo",
    tags=["references"],
    responses={200: {"content": {"image/*": {}}, "description": "The photo's bytes, exactly as enrolled."}},
)
def reference_photo(reference_id: str, number: int, viewer: Viewer = api("reference.read")) -> Response:
    """Photo `number` (from 1, in the order the reference lists them), its bytes exactly as enrolled."""
    found = viewer.ws.reference(reference_id)
    if not 1 <= number <= len(found.photos):
        raise NotFound(
            f"photo: reference {reference_id} has {len(found.photos)} photo(s); got {number}",
            field="number",
            record=f"reference {reference_id}",
        )
    photo = found.photos[number - 1]
    data = viewer.ws.photos.read(photo.sha256)
    media_type, suffix = _media_type(data)
    name = photo.file_name if "." in photo.file_name else f"{photo.file_name}.{suffix}"
    return media.attachment(data, media_type, name)


# -- cases --------------------------------------------------------------------------------------------------
@router.get("/cases", summary="List cases", tags=["cases"])
def list_cases(
    page: Page = 1,
    size: Size = PAGE_SIZE,
    status: Annotated[str | None, Query(description=f"Only cases of this status: {', '.join(STATUSES)}.")] = None,
    kind: Annotated[str | None, Query(description="Only cases of this kind: deceased or living.")] = None,
    viewer: Viewer = api("case.read"),
) -> Any:
    """Every case (unidentified person), by id, with its status and counts."""
    if status is not None and status not in STATUSES:
        raise InvalidField(f"status: {status[:40]!r} is not one of {', '.join(STATUSES)}", field="status")
    if kind and kind not in CASE_KINDS:
        raise InvalidField(f"kind: {kind[:20]!r} is not one of {', '.join(CASE_KINDS)}", field="kind")
    found = viewer.ws.cases()
    if status is not None:
        found = [c for c in found if c.status == status]
    if kind:
        found = [c for c in found if c.kind == kind]
    return _paged(found, page, size)


@router.get("/cases/{case_id}", summary="Show a case", tags=["cases"])
def show_case(case_id: str, viewer: Viewer = api("case.read")) -> Any:
    """A case with its photos, faces, searches and open identification (as the caller may see it)."""
    return viewer.ws.case(case_id).to_dict()


@router.post(
    "/cases",
    summary="Add a case",
    tags=["cases"],
    status_code=201,
    openapi_extra=_multipart_doc(_CASE_FIELDS, ("case_id",)),
)
async def add_case(request: Request, viewer: Viewer = api("case.write")) -> Any:
    """Register an unidentified person with one or more photos; a photo with no face found is kept and
    flagged (mark its eyes by hand)."""
    async with _upload(request) as (form, files):
        given = _take(form, tuple(_CASE_FIELDS))
        fields = CaseFields(
            id=given["case_id"] or "",
            kind=given["kind"] or "deceased",
            found_on=given["found_on"],  # type: ignore[arg-type]  # CaseFields parses the text
            found_at=given["found_at"],
            notes=given["notes"],
        )
        async with _saved(files) as paths:
            added = await _call(viewer.ws.add_case, fields, _photo_inputs(paths, given))
    return added.to_dict()


@router.delete("/cases/{case_id}", summary="Erase a case", tags=["cases"], openapi_extra=_json_doc(ErasureRequest))
async def erase_case(case_id: str, request: Request, viewer: Viewer = api("record.erase")) -> Any:
    """Erase a case with a reason, with its photos, faces, searches, conclusions and identifications; the
    audit trail keeps a tombstone."""
    body = await _json(request, ErasureRequest)
    return (await _call(viewer.ws.delete_case, case_id, body.reason)).to_dict()


@router.post(
    "/cases/{case_id}/photos/{number}/eyes",
    summary="Mark the eyes on a case photo",
    tags=["cases"],
    status_code=201,
    openapi_extra=_json_doc(EyesRequest),
)
async def mark_eyes(case_id: str, number: int, request: Request, viewer: Viewer = api("case.write")) -> Any:
    """Add a face to case photo `number` (from 1) from its two eye centres, marked by hand in photo pixels
    (the upright photo); the case as it is then."""
    body = await _json(request, EyesRequest)
    if not 1 <= number <= 100_000:
        raise InvalidField(f"photo: {number} is not a photo number", field="number")
    for key, point in (("left", body.left), ("right", body.right)):  # 1e999 reads as infinity
        if not all(math.isfinite(v) for v in point):
            raise InvalidField(f"{key}: {shown(list(point))} is not a point [x, y] of finite numbers", field=key)
    eyes = check_eyes([list(body.left), list(body.right)])
    return (await _call(viewer.ws.mark_eyes, case_id, number, eyes)).to_dict()


# -- searches and conclusions ---------------------------------------------------------------------------------
@router.post(
    "/cases/{case_id}/searches",
    summary="Search a case",
    tags=["searches"],
    status_code=201,
    openapi_extra={"requestBody": {**_json_doc(SearchRequest)["requestBody"], "required": False}},
)
async def run_search(case_id: str, request: Request, viewer: Viewer = api("search.run")) -> Any:
    """Rank every reference against the case's faces and record the search: candidates for review by a
    trained examiner, never an identification."""
    body = await _json(request, SearchRequest)
    return (await _call(viewer.ws.search, case_id, face=body.face, top=body.top, exhaustive=body.exhaustive)).to_dict()


@router.get("/searches", summary="List searches", tags=["searches"])
def list_searches(
    page: Page = 1,
    size: Size = PAGE_SIZE,
    case_id: Annotated[str | None, Query(description="Only the searches of this case.")] = None,
    viewer: Viewer = api("case.read"),
) -> Any:
    """Every recorded search (of one case when given), oldest first."""
    return _paged(viewer.ws.searches(case_id or None), page, size)


@router.get("/searches/{search_id}", summary="Show a search", tags=["searches"])
def show_search(search_id: int, viewer: Viewer = api("case.read")) -> Any:
    """A recorded search with its candidates and the examiners' conclusions (hidden while an identification
    of the case awaits the caller's blind verification)."""
    return viewer.ws.get_search(record_number(search_id, "search_id")).to_dict()


@router.post(
    "/searches/{search_id}/conclusions",
    summary="Record a conclusion on a candidate",
    tags=["searches"],
    status_code=201,
    openapi_extra=_json_doc(ConclusionRequest),
)
async def conclude(search_id: int, request: Request, viewer: Viewer = api("conclusion.write")) -> Any:
    """An examiner's conclusion on the candidate at `rank`, with its reasons and, when the comparison went
    through it, the feature checklist (a later conclusion on the same candidate supersedes it)."""
    body = await _json(request, ConclusionRequest)
    number = record_number(search_id, "search_id")
    done = await _call(viewer.ws.conclude, number, body.rank, body.conclusion, body.reasons, body.checklist)
    return done.to_dict()


# -- identifications ----------------------------------------------------------------------------------------
@router.get("/identifications", summary="List identifications", tags=["identifications"])
def list_identifications(
    page: Page = 1,
    size: Size = PAGE_SIZE,
    status: Annotated[str | None, Query(description="proposed, identified, disputed or withdrawn.")] = None,
    viewer: Viewer = api("case.read"),
) -> Any:
    """Every identification (of one status when given), oldest first, as the caller may see it: a verifier
    who has not verified a proposed one sees neither its proposer nor its reasons."""
    return _paged(viewer.ws.identifications(status or None), page, size)


@router.get("/cases/{case_id}/identification", summary="Show a case's identification", tags=["identifications"])
def show_identification(case_id: str, viewer: Viewer = api("case.read")) -> Any:
    """The case's status, its open identification and every earlier one, as the caller may see them."""
    return viewer.ws.identification(case_id).to_dict()


@router.post(
    "/cases/{case_id}/identification",
    summary="Propose an identification",
    tags=["identifications"],
    status_code=201,
    openapi_extra=_json_doc(ProposalRequest),
)
async def propose(case_id: str, request: Request, viewer: Viewer = api("conclusion.write")) -> Any:
    """Propose that the case is one of its candidates; another person must then verify it, blind."""
    body = await _json(request, ProposalRequest)
    return (await _call(viewer.ws.propose_identification, case_id, body.reference_id, body.reasons)).to_dict()


@router.post(
    "/cases/{case_id}/identification/verification",
    summary="Verify a proposed identification",
    tags=["identifications"],
    status_code=201,
    openapi_extra=_json_doc(VerificationRequest),
)
async def verify(case_id: str, request: Request, viewer: Viewer = api("identification.verify")) -> Any:
    """The verifier's own conclusion on the identification someone else proposed: "same person" makes it
    identified, anything else disputed."""
    body = await _json(request, VerificationRequest)
    found = await _call(viewer.ws.verify_identification, case_id, body.conclusion, body.reasons, body.reference_id)
    return found.to_dict()


@router.post(
    "/cases/{case_id}/identification/withdrawal",
    summary="Withdraw an identification",
    tags=["identifications"],
    status_code=201,
    openapi_extra=_json_doc(WithdrawalRequest),
)
async def withdraw(case_id: str, request: Request, viewer: Viewer = api("conclusion.write")) -> Any:
    """Withdraw the case's open identification, with a reason; the case is open again."""
    body = await _json(request, WithdrawalRequest)
    return (await _call(viewer.ws.withdraw_identification, case_id, body.reason)).to_dict()


# -- reports and exports --------------------------------------------------------------------------------------


@router.get(
    "/cases/{case_id}/report",
    summary="Download a case's identification report",
    tags=["reports"],
    responses={200: {"content": {"text/html": {}, "application/pdf": {}}, "description": "The report file."}},
)
def report(
    case_id: str,
    fmt: Annotated[str, Query(alias="format", description="html or pdf.")] = "html",
    viewer: Viewer = api("report.read"),
) -> Response:
    """The case's identification report, HTML or PDF, as a file; its writing is recorded with its SHA-256."""
    return media.report_download(viewer.ws, case_id, fmt)


@router.get(
    "/export",
    summary="Export verified identifications",
    tags=["reports"],
    responses={200: {"content": {"application/json": {}, "text/csv": {}}, "description": "The export file."}},
)
def export(
    fmt: Annotated[str, Query(alias="format", description="json or csv.")] = "json",
    viewer: Viewer = api("export.read"),
) -> Response:
    """Every verified identification, for the responsible authority, as JSON or CSV; the export is recorded
    with its SHA-256 and carries the audit trail's head hash."""
    return media.export_download(viewer.ws, fmt)


# -- audit trail --------------------------------------------------------------------------------------------
@router.get("/audit", summary="Read the audit trail", tags=["audit"])
def audit_log(
    case_id: Annotated[str | None, Query(description="Only events about this case.")] = None,
    reference_id: Annotated[str | None, Query(description="Only events about this reference.")] = None,
    user: Annotated[str | None, Query(description="Only events by this user.")] = None,
    before: Annotated[int | None, Query(ge=1, le=_LARGEST, description="Only events before this number.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="The newest this many events.")] = PAGE_SIZE,
    viewer: Viewer = api("audit.read"),
) -> Any:
    """Who did what and when, oldest first: the newest `limit` events (before event `before` when
    given). `next_before` pages back to older events (null at the first). The reading is recorded."""
    found = viewer.ws.audit_log(
        case_id=case_id or None, reference_id=reference_id or None, limit=limit, user=user or None, before=before
    )
    return {
        "items": [e.to_dict() for e in found],
        "limit": limit,
        "before": before,
        "next_before": found[0].seq if len(found) == limit and found[0].seq > 1 else None,
    }


@router.get("/audit/verify", summary="Verify the audit trail", tags=["audit"])
def audit_verify(viewer: Viewer = api("audit.read")) -> Any:
    """Check the trail's hash chain and every record against it: `ok`, the events checked and the head
    hash (keep it elsewhere: a later trail that does not lead to it has been rewritten)."""
    return viewer.ws.audit_verify().to_dict()


# -- users ----------------------------------------------------------------------------------------------------
@router.get("/users", summary="List users", tags=["users"])
def list_users(page: Page = 1, size: Size = PAGE_SIZE, viewer: Viewer = api("user.read")) -> Any:
    """Every user, active or not, with their roles (never a password hash)."""
    return _paged(viewer.ws.users(), page, size)


@router.post("/users", summary="Add a user", tags=["users"], status_code=201, openapi_extra=_json_doc(UserRequest))
async def add_user(request: Request, viewer: Viewer = api("user.manage")) -> Any:
    """Add a user with their roles and, optionally, a password to log in with."""
    body = await _json(request, UserRequest)
    with _fields_named({"user": "name", "role": "roles"}):
        return (await _call(viewer.ws.add_user, body.name, body.roles, body.password)).to_dict()


@router.post("/users/{name}/disable", summary="Disable a user", tags=["users"])
def disable_user(name: str, viewer: Viewer = api("user.manage")) -> Any:
    """Disable a user (users are never deleted); their sessions and tokens stop working at once."""
    return viewer.ws.disable_user(name).to_dict()


@router.put("/users/{name}/roles", summary="Set a user's roles", tags=["users"], openapi_extra=_json_doc(RolesRequest))
async def set_roles(name: str, request: Request, viewer: Viewer = api("user.manage")) -> Any:
    """Give a user exactly these roles; the last active admin keeps the admin role."""
    body = await _json(request, RolesRequest)
    with _fields_named({"role": "roles"}):
        return (await _call(viewer.ws.set_roles, name, body.roles)).to_dict()


@router.post(
    "/users/{name}/password",
    summary="Reset a user's password",
    tags=["users"],
    openapi_extra=_json_doc(PasswordRequest),
)
async def reset_password(name: str, request: Request, viewer: Viewer = api("user.manage")) -> Any:
    """Set a user's password (an admin's reset); the user's sessions end and their API tokens are revoked."""
    body = await _json(request, PasswordRequest)
    return (await _call(viewer.ws.set_password, name, body.password)).to_dict()


# -- the schema and its page ------------------------------------------------------------------------------------
def _guard(route: APIRoute) -> Guard | None:
    for dependency in route.dependant.dependencies:
        if isinstance(dependency.call, Guard):
            return dependency.call
    return None


def api_schema(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI schema of the API's routes alone, each operation naming its action and the roles allowed
    (``x-nomina-action``, ``x-nomina-roles``, and a line of its description)."""
    schema = copy.deepcopy(app.openapi())
    guards: dict[tuple[str, str], Guard] = {}
    for route in router.routes:  # this module's routes, as nomina.web.app mounts them under the prefix
        if isinstance(route, APIRoute) and (guard := _guard(route)) is not None:
            for method in route.methods or ():
                guards[(method.lower(), _API_PREFIX + route.path)] = guard
    paths = {path: ops for path, ops in schema.get("paths", {}).items() if path.startswith(_API_PREFIX + "/")}
    for path, operations in paths.items():
        for method, operation in operations.items():
            found = guards.get((method, path))
            if found is None:
                continue
            allowed, covers = role_table.ACTIONS[found.action]
            operation["x-nomina-action"] = found.action
            operation["x-nomina-roles"] = list(allowed)
            line = f"Roles: {', '.join(allowed)} (action {found.action}: {covers})."
            operation["description"] = f"{operation.get('description', '').strip()}\n\n{line}".strip()
            operation["security"] = [{"bearer": []}]
    schema["paths"] = paths
    schema.setdefault("components", {})["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token: `nomina token create`, or POST /api/v1/tokens.",
        }
    }
    return schema


@router.get("/openapi.json", summary="The API's OpenAPI schema", tags=["schema"])
def openapi(request: Request, viewer: Viewer = api("account")) -> JSONResponse:
    """This API described in OpenAPI 3: every route, its parameters, its body and the roles allowed."""
    return JSONResponse(api_schema(request.app))


def _type(schema: dict[str, Any]) -> str:
    """A parameter's or field's type in a few words."""
    if "anyOf" in schema:
        return " or ".join(_type(s) for s in schema["anyOf"])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    if kind == "array":
        if "prefixItems" in schema:
            return f"[{', '.join(_type(s) for s in schema['prefixItems'])}]"
        return f"list of {_type(schema.get('items', {}))}"
    if schema.get("format") == "binary":
        return "file"
    return str(kind)


def _operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Each operation of ``schema`` as the page lists it, in the order of the routes."""
    found = []
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            parameters = [
                {
                    "name": p["name"],
                    "where": p["in"],
                    "required": bool(p.get("required")),
                    "type": _type(p.get("schema", {})),
                    "description": p.get("description") or p.get("schema", {}).get("description", ""),
                }
                for p in op.get("parameters", [])
            ]
            bodies = []
            for media_type, content in op.get("requestBody", {}).get("content", {}).items():
                body = content.get("schema", {})
                required = set(body.get("required", []))
                fields = [
                    {"name": n, "type": _type(s), "required": n in required, "description": s.get("description", "")}
                    for n, s in body.get("properties", {}).items()
                ]
                bodies.append({"media_type": media_type, "fields": fields, "description": body.get("description", "")})
            description = op.get("description", "")
            text, _, roles_line = description.rpartition("\n\nRoles: ")
            found.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "tag": (op.get("tags") or ["other"])[0],
                    "summary": op.get("summary", ""),
                    "description": text if roles_line else description,
                    "roles": op.get("x-nomina-roles", []),
                    "action": op.get("x-nomina-action", ""),
                    "parameters": parameters,
                    "bodies": bodies,
                    "id": re.sub(r"[^a-z0-9]+", "-", f"{method} {path}".lower()).strip("-"),
                }
            )
    return found


@docs_router.get("/api-docs", response_class=HTMLResponse)
def api_docs(request: Request, viewer: Viewer = page("account")) -> Response:
    """The REST API's documentation: every route with its parameters, body and the roles allowed."""
    schema = api_schema(request.app)
    operations = _operations(schema)
    groups: dict[str, list[dict[str, Any]]] = {}
    for op in operations:
        groups.setdefault(op["tag"], []).append(op)
    return render(
        request,
        "api_docs.html",
        viewer,
        groups=groups,
        prefix=_API_PREFIX,
        max_photo_mb=MAX_PHOTO_BYTES // 2**20,
        max_photos=MAX_PHOTOS,
        page_size=PAGE_SIZE,
        max_page_size=MAX_PAGE_SIZE,
    )
