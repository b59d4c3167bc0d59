"""Photos, face crops and files as the server sends them: encoded here, never cached (see nomina.web.app),
and post-mortem images blurred on the server until the viewer chooses to see them, so the unblurred bytes do
not reach a browser that did not ask for them. Reports and exports are written by the library (which
records them with their SHA-256) to a private temporary file and sent as a download."""

from __future__ import annotations

import io
import re
import tempfile
from datetime import date
from pathlib import Path

import cv2
import numpy as np
from fastapi.responses import Response
from PIL import Image

from ..errors import InvalidField
from ..files import EXPORT_TEMP, REPORT_TEMP
from ..imaging import decoded
from ..workspace import Workspace

__all__ = [
    "BLUR_NOTE",
    "EXPORT_TYPES",
    "REPORT_TYPES",
    "attachment",
    "blurred",
    "export_download",
    "photo_png",
    "photo_size",
    "png_response",
    "report_download",
    "show_unblurred",
]

REPORT_TYPES = {"html": "text/html; charset=utf-8", "pdf": "application/pdf"}
EXPORT_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8"}

BLUR_NOTE = "post-mortem photo, blurred: choose to see it, or change the setting on your account page"


def blurred(pixels: np.ndarray) -> np.ndarray:
    """A strong blur that leaves shapes but no recognisable face (scaled to the image's size)."""
    h, w = pixels.shape[:2]
    small = cv2.resize(pixels, (max(1, w // 24), max(1, h // 24)), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), (0, 0), 3)


def png_response(pixels: np.ndarray, blur: bool = False) -> Response:
    """``pixels`` (BGR, as OpenCV and nomina.imaging hold them) as a PNG response, blurred if ``blur``."""
    ok, encoded = cv2.imencode(".png", blurred(pixels) if blur else pixels)
    if not ok:  # pragma: no cover - OpenCV encodes any 8-bit BGR image as PNG
        raise RuntimeError("could not encode the image as PNG")
    return Response(content=encoded.tobytes(), media_type="image/png")


def photo_png(ws: Workspace, sha256: str, file_name: str, blur: bool = False) -> Response:
    """A stored photo as a PNG response, re-encoded from its decoded pixels (blurred if ``blur``), in one of
    the process's decoding slots (:data:`nomina.imaging.decoding_slot`): a 50-megapixel photo holds
    150 MB while it is decoded and encoded."""
    with decoded(ws.photos.read(sha256), file_name, ws.settings.max_pixels, ws.settings.workers) as image:
        return png_response(image.pixels, blur=blur)


def show_unblurred(kind: str, preferences: dict[str, bool], reveal: bool) -> bool:
    """Whether a photo or crop of a case of ``kind`` is shown as it is: photos of the living always are;
    post-mortem ones when the viewer's setting says so or they chose to see this one (``reveal``)."""
    return kind != "deceased" or reveal or bool(preferences.get("show_post_mortem"))


def photo_size(data: bytes) -> tuple[int, int]:
    """Width and height of a photo as Nomina shows it (turned upright by its EXIF orientation), from the
    header alone."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            orientation = img.getexif().get(0x0112, 1)
    except Exception:  # an unreadable header: the page shows the photo without face boxes
        return 0, 0
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def attachment(data: bytes, media_type: str, filename: str) -> Response:
    """``data`` as a file to save, named ``filename`` (ASCII; the name's other characters become ``_``)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", filename)[:150] or "download"
    return Response(
        content=data, media_type=media_type, headers={"content-disposition": f'attachment; filename="{safe}"'}
    )


def report_download(ws: Workspace, case_id: str, fmt: str) -> Response:
    """The case's identification report (html or pdf) as a download (:meth:`Workspace.report`)."""
    if fmt not in REPORT_TYPES:
        raise InvalidField(f"format: {fmt[:20]!r} is not one of html, pdf", field="format")
    with tempfile.TemporaryDirectory(prefix=REPORT_TEMP) as folder:
        path = Path(folder) / f"report.{fmt}"
        ws.report(case_id, path)
        data = path.read_bytes()
    return attachment(data, REPORT_TYPES[fmt], f"nomina-report-{case_id}.{fmt}")


def export_download(ws: Workspace, fmt: str) -> Response:
    """Every verified identification (json or csv) as a download (:meth:`Workspace.export_identifications`)."""
    if fmt not in EXPORT_TYPES:
        raise InvalidField(f"format: {fmt[:20]!r} is not one of json, csv", field="format")
    with tempfile.TemporaryDirectory(prefix=EXPORT_TEMP) as folder:
        path = Path(folder) / f"identifications.{fmt}"
        ws.export_identifications(path, fmt)
        data = path.read_bytes()
    return attachment(data, EXPORT_TYPES[fmt], f"nomina-identifications-{date.today().isoformat()}.{fmt}")
