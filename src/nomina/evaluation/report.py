"""What ``nomina evaluate --out DIR`` writes: metrics.json, the plots as PNG files and report.html.

The HTML report is one self-contained file (plots and thumbnails embedded), for a person to read: what
was measured, on what, the numbers, the plots, and the photos that failed.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape

from ..errors import InvalidField, NominaError
from ..files import check_output, write_whole
from ..imaging import decode_image, read_photo
from . import plots
from .runner import Evaluation

__all__ = ["check_out_dir", "metrics_json", "render_html", "write_outputs"]

_THUMB = 112


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def metrics_json(evaluation: Evaluation) -> str:
    return json.dumps(evaluation.metrics, indent=2, default=_plain)


#: Every file ``evaluate --out`` may write.
OUTPUT_FILES = ("metrics.json", "report.html", "det.png", "scores.png", "tippett.png", "cmc.png")


def check_out_dir(out: Path) -> None:
    """Refuse an output folder that cannot be used, before any photo is analysed."""
    if out.exists() and not out.is_dir():
        raise InvalidField(f"out: {out} exists and is not a folder")
    parent = out if out.exists() else out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InvalidField(f"out: {parent} is not a folder")
    for name in OUTPUT_FILES:
        check_output(out / name, "out")


def _thumbnail(path: Path, max_pixels: int) -> str | None:
    """A small JPEG of a photo as a data URI, or None when it cannot be decoded."""
    try:
        pixels = decode_image(read_photo(path), str(path), max_pixels).pixels
    except NominaError:
        return None
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(pixels[:, :, ::-1]))
    img.thumbnail((_THUMB, _THUMB))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def make_plots(evaluation: Evaluation) -> dict[str, bytes]:
    m = evaluation.metrics
    out: dict[str, bytes] = {}
    gen, imp = evaluation.genuine, evaluation.impostor
    if len(gen) and len(imp):
        out["det.png"] = plots.det_plot([("all photos (failures scored worst)", gen, imp)], "Verification: DET")
        points = m["verification"].get("operating_points", {})
        lines = {f"FAR {k}": p["threshold"] for k, p in points.items() if p.get("threshold") is not None}
        out["scores.png"] = plots.score_plot(gen, imp, lines, "Similarity scores")
    if evaluation.log10_lrs is not None:
        out["tippett.png"] = plots.tippett_plot(*evaluation.log10_lrs, "Calibrated evidence: Tippett plot")
    if evaluation.ranks is not None and len(evaluation.ranks):
        out["cmc.png"] = plots.cmc_plot(evaluation.ranks, m["identification"]["gallery"], "Identification: CMC")
    return out


def render_html(evaluation: Evaluation, images: dict[str, bytes], max_pixels: int) -> str:
    env = Environment(loader=PackageLoader("nomina", "templates"), autoescape=select_autoescape(["html"]))
    env.filters["pct"] = lambda v: "—" if v is None else f"{100 * v:.2f}%"
    env.filters["num"] = lambda v, d=3: "—" if v is None else f"{v:.{d}f}"
    uris = {name: "data:image/png;base64," + base64.b64encode(data).decode() for name, data in images.items()}
    failures = [
        {"photo": f.photo, "kind": f.kind, "reason": f.reason, "thumbnail": _thumbnail(f.path, max_pixels)}
        for f in evaluation.failures
    ]
    return env.get_template("evaluation.html").render(m=evaluation.metrics, plots=uris, failures=failures)


def write_outputs(evaluation: Evaluation, out: Path, max_pixels: int) -> list[Path]:
    """Write metrics.json, the PNG plots and report.html into ``out`` (created if needed)."""
    out.mkdir(parents=True, exist_ok=True)
    images = make_plots(evaluation)
    files = {
        "metrics.json": (metrics_json(evaluation) + "\n").encode(),
        **images,
        "report.html": render_html(evaluation, images, max_pixels).encode(),
    }
    for name, data in files.items():  # each whole, renamed into place: never written through a link or a pipe
        write_whole(out / name, data, ".nomina-evaluation-")
    return [out / name for name in files]
