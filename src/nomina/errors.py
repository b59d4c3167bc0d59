"""Every error Nomina raises on purpose.

Each carries a one-line message that speaks of the file, field or record at fault (never of a
command-line flag: the command line adds its own flag names when it prints), a stable machine
``code``, the ``field`` at fault where there is one (a form field, a manifest column, a keyword of the
Python API) and the ``record`` concerned where there is one. :func:`http_status` is the one mapping from
error kinds to HTTP status codes; the web layer uses it and invents none. The tree, with each kind's
code and HTTP status::

    NominaError                    error                 500
    ├── InputError                 input                 422  something the user supplied is unusable
    │   ├── FileMissing            file_missing          400  a path that does not exist or is not a file
    │   ├── NotAnImage             not_an_image          422  empty, unreadable or truncated image data
    │   ├── UnsupportedFormat      unsupported_format    422  an image format Nomina does not accept
    │   ├── ImageTooLarge          image_too_large       413  over the pixel limit (also decompression bombs)
    │   ├── NoFaceFound            no_face_found         422  no face detected where one is required
    │   ├── SeveralFaces           several_faces         422  several faces and no choice of one
    │   ├── FaceNumberInvalid      face_number_invalid   422  a face number outside the faces found
    │   ├── QualityTooLow          quality_too_low       422  a reference face below the quality gate, not overridden
    │   ├── InvalidField           invalid_field         422  a field value that is missing or malformed
    │   └── ManifestError          manifest_error        400  a manifest file that cannot be read as a whole
    ├── WorkspaceError             workspace_error       500  the workspace folder itself is unusable
    │   ├── NotAWorkspace          not_a_workspace       500  a folder without a Nomina database
    │   ├── ModelMismatch          model_mismatch        500  a workspace built with another face model
    │   └── Busy                   busy                  503  another writer held the workspace too long; try again
    ├── ModelError                 model_error           500  the face model cannot be used
    │   ├── ModelMissing           model_missing         500  model files not installed
    │   └── ChecksumMismatch       checksum_mismatch     500  model file bytes differ from the manifest
    ├── NotFound                   not_found             404  an id that names no record
    ├── Conflict                   conflict              409  an id or photo that already exists, a lost race, or a
    │                                                         change the record's state forbids
    ├── PermissionDenied           permission_denied     403  no acting user, or the user is disabled or lacks the role
    │   ├── NotLoggedIn            not_logged_in         401  no session or token, or one ended, expired, revoked
    │   └── LoginFailed            login_failed          401  a wrong user name or password
    │       └── LockedOut          locked_out            429  too many failed logins in a row; wait, or an admin resets
    └── AuditError                 audit_error           500  the audit trail refused an event or cannot be extended
        ├── UnknownEvent           unknown_event         500  an event type that is not in the registry
        ├── DetailRefused          detail_refused        500  an event detail that could carry biometric content
        ├── AuditBroken            audit_broken          500  the chain's head no longer matches its newest event
        └── RecordTampered         record_tampered       500  a record disagrees with the trail, the gallery index
                                                              with the database, or a value with its column:
                                                              changed behind Nomina's back
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

__all__ = [
    "HTTP_STATUS",
    "AuditBroken",
    "AuditError",
    "Busy",
    "ChecksumMismatch",
    "Conflict",
    "DetailRefused",
    "FaceNumberInvalid",
    "FileMissing",
    "ImageTooLarge",
    "InputError",
    "InvalidField",
    "LockedOut",
    "LoginFailed",
    "ManifestError",
    "ModelError",
    "ModelMismatch",
    "ModelMissing",
    "NoFaceFound",
    "NominaError",
    "NotAWorkspace",
    "NotAnImage",
    "NotFound",
    "NotLoggedIn",
    "PermissionDenied",
    "QualityTooLow",
    "RecordTampered",
    "SeveralFaces",
    "UnknownEvent",
    "UnsupportedFormat",
    "WorkspaceError",
    "http_status",
    "one_line",
    "reason",
]


class NominaError(Exception):
    """Base of every error Nomina raises on purpose; ``str(error)`` is its one-line message.

    ``code`` is stable: scripts and the web layer may test it. ``field`` names the input at fault (e.g.
    ``reasons``, ``top``, ``birth_year``) and ``record`` the record concerned (e.g. ``case C1``); either is
    None when the error is about neither. A message about a field starts with ``"<field>: "``; for the
    :class:`InputError` kinds that prefix is taken as the field unless ``field`` is given (``""``: none).
    """

    code: ClassVar[str] = "error"

    def __init__(self, message: str, *, field: str | None = None, record: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        derived = _leading_field(message) if isinstance(self, InputError) else None
        self.field = (field if field is not None else derived) or None  # field="": about no field
        self.record = record

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__:
            cls.code = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()

    @property
    def http_status(self) -> int:
        return http_status(self)

    def to_dict(self) -> dict[str, Any]:
        """The error as data: ``{"code", "message", "field", "record"}`` (the REST API's error body holds the
        first three, under ``"error"``)."""
        return {"code": self.code, "message": self.message, "field": self.field, "record": self.record}


# A message that starts with a bare identifier and a colon ("reasons: required ...") is about that field.
_FIELD_PREFIX = re.compile(r"^([a-z][a-z0-9_]*): ")


def _leading_field(message: str) -> str | None:
    found = _FIELD_PREFIX.match(message)
    return None if found is None else found.group(1)


class InputError(NominaError):
    code = "input"


class FileMissing(InputError):
    pass


class NotAnImage(InputError):
    pass


class UnsupportedFormat(InputError):
    pass


class ImageTooLarge(InputError):
    pass


class NoFaceFound(InputError):
    pass


class SeveralFaces(InputError):
    pass


class FaceNumberInvalid(InputError):
    pass


class QualityTooLow(InputError):
    pass


class InvalidField(InputError):
    pass


class ManifestError(InputError):
    pass


class WorkspaceError(NominaError):
    pass


class NotAWorkspace(WorkspaceError):
    code = "not_a_workspace"


class ModelMismatch(WorkspaceError):
    pass


class Busy(WorkspaceError):
    """Another writer (another process on the same workspace) held the database past the wait limit."""


class ModelError(NominaError):
    pass


class ModelMissing(ModelError):
    pass


class ChecksumMismatch(ModelError):
    pass


class NotFound(NominaError):
    pass


class Conflict(NominaError):
    pass


class PermissionDenied(NominaError):
    pass


class NotLoggedIn(PermissionDenied):
    """No credentials were given, or the session or token given has ended, expired or been revoked."""


class LoginFailed(PermissionDenied):
    """A login refused: the message never says whether the user name or the password was wrong."""


class LockedOut(LoginFailed):
    """A login refused without checking the password: the user failed too many times in a row."""


class AuditError(NominaError):
    pass


class UnknownEvent(AuditError):
    pass


class DetailRefused(AuditError):
    pass


class AuditBroken(AuditError):
    pass


class RecordTampered(AuditError):
    """A record a report or export would include is not as the audit trail last left it (see nomina.digests),
    a search's candidate is not borne out by the database (the gallery index's files changed), or the
    database holds a value its column never holds (nomina.store.checked; ``field`` is ``table.column``)."""


#: HTTP status of each error kind; a kind not listed takes its nearest listed ancestor's.
HTTP_STATUS: dict[type[NominaError], int] = {
    NominaError: 500,
    InputError: 422,
    FileMissing: 400,
    ManifestError: 400,
    ImageTooLarge: 413,
    Busy: 503,
    NotFound: 404,
    Conflict: 409,
    PermissionDenied: 403,
    NotLoggedIn: 401,
    LoginFailed: 401,
    LockedOut: 429,
}


def http_status(error: NominaError | type[NominaError]) -> int:
    """The HTTP status code for an error (or error kind), from :data:`HTTP_STATUS`."""
    kind = error if isinstance(error, type) else type(error)
    for cls in kind.__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500


def one_line(text: str, limit: int = 200) -> str:
    """Text as part of a one-line message: its whitespace runs (line breaks too) made single spaces, cut to
    ``limit`` characters."""
    return " ".join(text.split())[:limit]


def reason(exc: BaseException, limit: int = 200) -> str:
    """Why a library failed, as a short phrase for a one-line message: its exception's text (OpenCV's and
    onnxruntime's run over several lines), else the exception's kind."""
    return one_line(str(exc), limit) or type(exc).__name__
