"""Nomina: face search that helps put names back on the missing and the unidentified.

Nomina ranks candidates for a trained examiner to review; it never states that two faces are one person.

    >>> from nomina import Workspace, ReferenceFields, Provenance, PhotoInput  # doctest: +SKIP
    >>> ws = Workspace.create("nomina-data")                                   # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import NominaError
from .faces import Face, FaceAnalyzer
from .importing import ImportReport
from .models import FaceModel, load_model
from .records import CaseFields, PhotoInput, Provenance, ReferenceFields
from .search import NOTICE, SearchResult
from .settings import Settings, load_settings
from .workspace import Workspace

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
