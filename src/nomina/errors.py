"""Every error Nomina raises on purpose.

Each carries a one-line message that names the file, field or record at fault, so that the command
line can show it as it is. The tree::

    NominaError
    ├── InputError                 something the user supplied is unusable
    │   ├── FileMissing            a path that does not exist or is not a file
    │   ├── NotAnImage             empty, unreadable or truncated image data
    │   ├── UnsupportedFormat      an image format Nomina does not accept
    │   ├── ImageTooLarge          over the pixel limit (also catches decompression bombs)
    │   ├── NoFaceFound            no face detected where one is required
    │   ├── SeveralFaces           several faces and no choice of one
    │   ├── FaceNumberInvalid      --face N outside the faces found
    │   ├── QualityTooLow          a reference face below the workspace's quality gate, not overridden
    │   ├── InvalidField           a field value that is missing or malformed (dates, enums, eyes)
    │   └── ManifestError          a manifest file that cannot be read as a whole
    ├── WorkspaceError             the workspace folder itself is unusable
    │   ├── NotAWorkspace          a folder without a Nomina database
    │   └── ModelMismatch          a workspace built with another face model
    ├── ModelError                 the face model cannot be used
    │   ├── ModelMissing           model files not installed
    │   └── ChecksumMismatch       model file bytes differ from the manifest
    ├── NotFound                   an id that names no record
    ├── Conflict                   an id or photo that already exists, or a change the state forbids
    ├── PermissionDenied           no acting user named, or the user is disabled or lacks the role
    └── AuditError                 the audit trail refused an event or cannot be extended
        ├── UnknownEvent           an event type that is not in the registry
        ├── DetailRefused          an event detail that is not plain data or could carry biometric content
        └── AuditBroken            the chain's head no longer matches its newest event: nothing is appended
"""

from __future__ import annotations

__all__ = [
    "AuditBroken",
    "AuditError",
    "ChecksumMismatch",
    "Conflict",
    "DetailRefused",
    "FaceNumberInvalid",
    "FileMissing",
    "ImageTooLarge",
    "InputError",
    "InvalidField",
    "ManifestError",
    "ModelError",
    "ModelMismatch",
    "ModelMissing",
    "NoFaceFound",
    "NominaError",
    "NotAWorkspace",
    "NotAnImage",
    "NotFound",
    "QualityTooLow",
    "PermissionDenied",
    "SeveralFaces",
    "UnknownEvent",
    "UnsupportedFormat",
    "WorkspaceError",
]


class NominaError(Exception):
    """Base of every error Nomina raises on purpose; str(error) is a one-line message."""


class InputError(NominaError):
    pass


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
    pass


class ModelMismatch(WorkspaceError):
    pass


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


class AuditError(NominaError):
    pass


class UnknownEvent(AuditError):
    pass


class DetailRefused(AuditError):
    pass


class AuditBroken(AuditError):
    pass
