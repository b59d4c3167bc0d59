"""The identification report: one case, its candidates, the people's conclusions, for the responsible authority.

The renderer needs no database: the caller builds an :class:`IdentificationReport` from plain frozen
dataclasses and gets back one self-contained HTML page (:func:`render_html`: faces embedded as PNG data URIs,
CSS inline, nothing fetched) or writes it as HTML or PDF (:func:`write_report`, the PDF drawn from the same
HTML by WeasyPrint). Every value is shown as given: the identification status is printed as the caller states
it, never inferred from who signed what, and a score is never turned into a percentage. Every piece of text
is escaped, since names, notes and reasons come from users.

Dictionaries (case, identification, search, model, calibration, reference details, audit events) are shown
key by key in the caller's order, so a field the data side adds later still appears; the keys the report
names in its sentences are listed in docs/report.md.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined

from . import files
from .calibration import lr_text, significant
from .errors import InvalidField

__all__ = [
    "ROLES",
    "EvidenceLike",
    "IdentificationReport",
    "ReportCandidate",
    "ReportConclusion",
    "ReportFace",
    "render_html",
    "render_pdf",
    "write_report",
    "write_whole",
]

ROLES = ("examiner", "verifier")

_PDF_MISSING = "out: PDF reports need WeasyPrint: pip install 'nomina[pdf]'"

# How the keys of the dictionaries read in the report, when plain words are not enough; any other key is
# shown with its underscores turned into spaces.
_LABELS = {
    "id": "id",
    "reference_id": "reference id",
    "found_on": "found on",
    "found_at": "found at",
    "birth_year": "birth year",
    "last_seen_on": "last seen on",
    "last_seen_at": "last seen at",
    "supplied_by": "supplied by",
    "legal_basis": "legal basis",
    "proposed_by": "proposed by",
    "proposed_at": "proposed at",
    "verified_by": "verified by",
    "verified_at": "verified at",
    "search_id": "search",
    "gallery_size": "gallery (references searched)",
    "genuine": "same-person comparisons",
    "impostor": "different-person comparisons",
    "cllr": "Cllr (bits, held-out folds)",
    "cllr_min": "Cllr-min (bits)",
    "bounds": "log10 LR limited to",
}


class EvidenceLike(Protocol):
    """What a candidate's evidence provides, as attributes (a Mapping with these keys is accepted too)."""

    @property
    def lr(self) -> float: ...

    @property
    def log10_lr(self) -> float: ...

    @property
    def verbal(self) -> str: ...

    @property
    def calibration(self) -> str: ...


@dataclass(frozen=True, eq=False)
class ReportFace:
    """A face as the report shows it: normally the 112 x 112 aligned crop, never a whole photo.

    ``crop`` is a uint8 BGR image (height x width x 3), embedded losslessly as PNG at its own pixel size;
    ``caption`` says where it comes from (photo file name, date, quality).
    """

    label: str
    crop: np.ndarray
    caption: str = ""

    def __post_init__(self) -> None:
        crop = self.crop
        if not isinstance(crop, np.ndarray) or crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3:
            raise ValueError(f"ReportFace {self.label!r}: crop must be a height x width x 3 uint8 BGR image")
        if crop.shape[0] == 0 or crop.shape[1] == 0:
            raise ValueError(f"ReportFace {self.label!r}: crop is empty")


@dataclass(frozen=True)
class ReportConclusion:
    """One person's conclusion on a candidate: ``role`` is "examiner" or "verifier"; ``at`` is in UTC.

    ``checklist`` is the feature-by-feature comparison recorded with an examiner's conclusion, if one was:
    ``{feature: {"finding": ..., "note": ...}}`` in the order the features were examined."""

    person: str
    role: str
    conclusion: str
    reasons: str
    at: datetime
    checklist: Mapping[str, Mapping[str, str]] | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"ReportConclusion.role: expected one of {', '.join(ROLES)}, got {self.role!r}")


@dataclass(frozen=True, kw_only=True)
class ReportCandidate:
    """One reference in the search's ranked list, shown beside the case face that gave its score.

    ``score`` is the cosine similarity; ``evidence`` is None or the calibrated likelihood ratio (attributes or
    keys ``lr``, ``log10_lr``, ``verbal``, ``calibration``). ``case_face`` is the number (1-based) of the face
    in ``IdentificationReport.case_faces`` that gave the score. ``face`` is None and ``name`` None only when
    the reference has been deleted since the search.
    """

    rank: int
    reference_id: str
    name: str | None
    score: float
    evidence: EvidenceLike | Mapping[str, Any] | None = None
    face: ReportFace | None
    details: Mapping[str, Any] = field(default_factory=dict)
    warnings: Sequence[str] = ()
    conclusions: Sequence[ReportConclusion] = ()
    case_face: int = 1


@dataclass(frozen=True, kw_only=True)
class IdentificationReport:
    """Everything one report shows; see docs/report.md for the keys each dictionary is expected to hold."""

    case: Mapping[str, Any]
    case_faces: Sequence[ReportFace]
    identification: Mapping[str, Any] | None
    candidates: Sequence[ReportCandidate]
    search: Mapping[str, Any]
    model: Mapping[str, Any]
    calibration: Mapping[str, Any] | None
    audit: Sequence[Mapping[str, Any]]
    audit_head: str
    generated_at: datetime
    generated_by: str
    nomina_version: str

    def __post_init__(self) -> None:
        if "id" not in self.case:
            raise ValueError("IdentificationReport.case: needs an 'id'")
        for c in self.candidates:
            if not 1 <= c.case_face <= len(self.case_faces):
                raise ValueError(
                    f"candidate {c.reference_id}: case_face {c.case_face} is not one of the "
                    f"{len(self.case_faces)} case face(s)"
                )


# -- HTML -----------------------------------------------------------------------------------------------


def render_html(report: IdentificationReport) -> str:
    """The report as one self-contained HTML page (faces as PNG data URIs, CSS inline, no external resource)."""
    env = Environment(
        loader=PackageLoader("nomina", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["value"] = _value
    env.filters["label"] = _label
    case_uris = [_png_uri(f.crop) for f in report.case_faces]
    candidates = [_candidate_view(c, report.case_faces, case_uris) for c in report.candidates]
    return env.get_template("identification.html").render(
        r=report,
        case_uris=case_uris,
        candidates=candidates,
        with_warnings=[c["rank"] for c in candidates if c["warnings"]],
        identification=dict(report.identification) if report.identification is not None else None,
        audit_span=_audit_span(report.audit),
    )


def _candidate_view(c: ReportCandidate, case_faces: Sequence[ReportFace], case_uris: list[str]) -> dict[str, Any]:
    evidence = None if c.evidence is None else _evidence_view(c.evidence)
    return {
        "rank": c.rank,
        "reference_id": c.reference_id,
        "name": c.name,
        "score": f"{c.score:.3f}",
        "evidence": evidence,
        "case_face": case_faces[c.case_face - 1],
        "case_uri": case_uris[c.case_face - 1],
        "face": c.face,
        "face_uri": None if c.face is None else _png_uri(c.face.crop),
        "details": dict(c.details),
        "warnings": list(c.warnings),
        "conclusions": list(c.conclusions),
        "checklist": _checklist_view(c.conclusions),
    }


def _checklist_view(conclusions: Sequence[ReportConclusion]) -> dict[str, Any] | None:
    """The feature checklist of the newest conclusion that has one, with who recorded it and when."""
    latest = next((k for k in reversed(conclusions) if k.checklist), None)
    if latest is None or latest.checklist is None:
        return None
    rows = [
        {"feature": str(feature), "finding": str(item.get("finding") or ""), "note": str(item.get("note") or "")}
        for feature, item in latest.checklist.items()
    ]
    return {"person": latest.person, "conclusion": latest.conclusion, "at": latest.at, "rows": rows}


def _evidence_view(evidence: EvidenceLike | Mapping[str, Any]) -> dict[str, Any]:
    def get(key: str) -> Any:
        return evidence[key] if isinstance(evidence, Mapping) else getattr(evidence, key)

    lr, log10_lr = float(get("lr")), float(get("log10_lr"))
    if not (math.isfinite(lr) and lr > 0 and math.isfinite(log10_lr)):
        raise ValueError(f"evidence: lr must be a positive number and log10_lr finite, got {lr!r}, {log10_lr!r}")
    return {
        "lr": lr_text(lr),
        "log10_lr": f"{log10_lr:+.2f}",
        "verbal": str(get("verbal")),
        "calibration": str(get("calibration")),
        "favours_same": log10_lr >= 0,
        "times": significant(lr if lr >= 1 else 1 / lr),
    }


def _png_uri(crop: np.ndarray) -> str:
    ok, png = cv2.imencode(".png", np.ascontiguousarray(crop))
    if not ok:  # pragma: no cover - a checked uint8 BGR array always encodes
        raise ValueError("could not encode a face crop as PNG")
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii")


def _when(value: datetime) -> str:
    """A time in UTC to the second; a time without a zone is taken to be UTC already (as the database stores it)."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.strftime("%Y-%m-%d %H:%M:%S UTC")


def _value(value: Any) -> str:
    """Any field value as text: times in UTC, dates in ISO form, nothing as a dash."""
    if value is None or value == "":
        return "—"
    if isinstance(value, datetime):
        return _when(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        return f"{float(value):.4g}"
    if isinstance(value, Mapping):
        return "; ".join(f"{_label(k)}: {_value(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_value(v) for v in value)
    return str(value)


def _label(key: Any) -> str:
    return _LABELS.get(str(key), str(key).replace("_", " "))


def _audit_span(audit: Sequence[Mapping[str, Any]]) -> str | None:
    seqs = [e["seq"] for e in audit if isinstance(e.get("seq"), int)]
    return f"{min(seqs)} to {max(seqs)}" if seqs else None


# -- PDF and files --------------------------------------------------------------------------------------


def render_pdf(report: IdentificationReport) -> bytes:
    """The same HTML drawn as an A4 PDF by WeasyPrint, which is refused every URL but the embedded data: ones.

    Raises InvalidField (about the field ``out``) when WeasyPrint is not installed.
    """
    from PIL import ImageFile

    # WeasyPrint sets Pillow's global LOAD_TRUNCATED_IMAGES when imported, which would make every later
    # decode in this process accept damaged photos; the report's own images are whole, so it goes back.
    truncated = ImageFile.LOAD_TRUNCATED_IMAGES
    try:
        import weasyprint
        from weasyprint.urls import URLFetcher
    except ImportError as exc:
        raise InvalidField(_PDF_MISSING) from exc
    except OSError as exc:  # WeasyPrint is installed but cannot load Pango, which it needs from the system
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InvalidField(f"out: PDF reports need the Pango library, which WeasyPrint cannot load: {reason}") from exc
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = truncated

    class DataOnly(URLFetcher):  # type: ignore[misc]
        """Fetches nothing: every resource of the report is inside it."""

        def fetch(self, url: str, headers: Any = None) -> Any:
            if not url.lower().startswith("data:"):
                raise ValueError(f"the report may not fetch {url}")
            return super().fetch(url, headers)

    html = weasyprint.HTML(string=render_html(report), base_url=None, url_fetcher=DataOnly())
    return bytes(html.write_pdf())


def write_report(report: IdentificationReport, path: str | os.PathLike[str]) -> str:
    """Write the report as HTML or PDF, chosen by the suffix of ``path``; return the SHA-256 of the bytes written.

    The file is written whole or not at all (a temporary file in the same folder, then renamed over
    ``path``); an existing file at ``path`` is replaced. Raises InvalidField for a suffix other than .html or
    .pdf, a folder that cannot be written, or a PDF without WeasyPrint.
    """
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in (".html", ".pdf"):
        raise InvalidField(f"out: {out} must end in .html or .pdf")
    if not out.parent.is_dir():
        raise InvalidField(f"out: {out.parent} is not a folder")
    files.check_output(out, "out")
    data = render_pdf(report) if suffix == ".pdf" else render_html(report).encode("utf-8")
    write_whole(out, data)
    return hashlib.sha256(data).hexdigest()


def write_whole(out: Path, data: bytes) -> None:
    """Write ``data`` to ``out`` whole or not at all (nomina.files); InvalidField about the field ``out`` when
    it cannot be written."""
    try:
        files.write_whole(out, data, f".{out.name}.")
    except OSError as exc:
        raise InvalidField(f"out: cannot write {out}: {exc.strerror or exc}") from exc
