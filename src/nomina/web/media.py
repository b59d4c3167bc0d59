"""Photos and face crops as the pages serve them: encoded here, never cached (see nomina.web.app), and
post-mortem images blurred on the server until the viewer chooses to see them, so the unblurred bytes do
not reach a browser that did not ask for them."""

from __future__ import annotations

import cv2
import numpy as np
from fastapi.responses import Response

__all__ = ["BLUR_NOTE", "blurred", "png_response", "show_unblurred"]

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


def show_unblurred(kind: str, preferences: dict[str, bool], reveal: bool) -> bool:
    """Whether a photo or crop of a case of ``kind`` is shown as it is: photos of the living always are;
    post-mortem ones when the viewer's setting says so or they chose to see this one (``reveal``)."""
    return kind != "deceased" or reveal or bool(preferences.get("show_post_mortem"))
