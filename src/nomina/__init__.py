"""Nomina: face search that helps put names back on the missing and the unidentified.

Nomina ranks candidates for a trained examiner to review; it never states that two faces are one person.

    >>> from nomina import Workspace, ReferenceFields, Provenance, PhotoInput  # doctest: +SKIP
    >>> ws = Workspace.create("nomina-data")                                   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import offline
from ._version import __version__

offline.quiet_runtimes()  # before onnxruntime or OpenVINO can load: Nomina reports nothing to anyone

if TYPE_CHECKING:
    from .errors import NominaError
    from .faces import Face, FaceAnalyzer
    from .importing import ImportReport
    from .models import FaceModel, load_model
    from .records import CaseFields, PhotoInput, Provenance, ReferenceFields
    from .search import NOTICE, SearchResult
    from .settings import Settings, load_settings
    from .workspace import Workspace

# The public names load on first use, so that `import nomina.errors` or `nomina --help` does not import
# OpenCV, numpy and SQLAlchemy (PEP 562). Each name is found in the module that defines it.
_LAZY: dict[str, str] = {
    "NominaError": "errors",
    "Face": "faces",
    "FaceAnalyzer": "faces",
    "ImportReport": "importing",
    "FaceModel": "models",
    "load_model": "models",
    "CaseFields": "records",
    "PhotoInput": "records",
    "Provenance": "records",
    "ReferenceFields": "records",
    "NOTICE": "search",
    "SearchResult": "search",
    "Settings": "settings",
    "load_settings": "settings",
    "Workspace": "workspace",
}

__all__ = [
    "NOTICE",
    "CaseFields",
    "Face",
    "FaceAnalyzer",
    "FaceModel",
    "ImportReport",
    "NominaError",
    "PhotoInput",
    "Provenance",
    "ReferenceFields",
    "SearchResult",
    "Settings",
    "Workspace",
    "__version__",
    "load_model",
    "load_settings",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
