"""SFace embedding, run with OpenCV's DNN module (YuNet detection is in :mod:`nomina.models.yunet`).

Pitfalls handled here: on OpenCV 5 the int8 SFace file crashes ``FaceRecognizerSF.feature()``, so the
network is loaded with ``readNetFromONNX`` and fed an RGB blob (``swapRB=True``: feeding BGR nearly
doubles missed matches in 1:N search).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["SFaceEmbedder", "unit_rows"]


@contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's notices while a network loads (OpenCV 5 warns about unused targets).

    The log level is the process's: threads loading networks at once (the workers of an import) share one
    quiet spell, counted, so that none restores the level while another is still loading."""
    with _QUIET:
        if _quiet[0] == 0:
            _quiet[1] = cv2.utils.logging.getLogLevel()
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        _quiet[0] += 1
    try:
        yield
    finally:
        with _QUIET:
            _quiet[0] -= 1
            if _quiet[0] == 0:
                cv2.utils.logging.setLogLevel(_quiet[1])


_QUIET = threading.Lock()
_quiet = [0, 0]  # networks loading now, and the log level before the first of them


class SFaceEmbedder:
    dim = 128
    norm_field = "sface_norm"  # the quality measure embed_faces' lengths are (nomina.quality.Quality)

    def __init__(self, path: str) -> None:
        with _quiet_opencv():
            self._net = cv2.dnn.readNetFromONNX(path)
        # One blank face checks that the file is SFace (it takes 'data' and gives 128 numbers), at load rather
        # than in the middle of an import.
        got = self.outputs([np.zeros((112, 112, 3), np.uint8)]).shape[1]
        if got != self.dim:
            raise ValueError(f"the network gives {got}-d vectors, not {self.dim}-d")

    def outputs(self, aligned: list[np.ndarray]) -> np.ndarray:
        """The network's output for each crop, before L2 normalisation (its length is a quality signal)."""
        if not aligned:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        for crop in aligned:  # the int8 network takes one face per forward pass
            blob = cv2.dnn.blobFromImage(crop, 1.0, (112, 112), (0, 0, 0), swapRB=True)
            self._net.setInput(blob, "data")
            out.append(np.asarray(self._net.forward(), dtype=np.float32).reshape(-1))
        return np.stack(out)

    def embed(self, aligned: list[np.ndarray]) -> np.ndarray:
        return unit_rows(self.outputs(aligned))

    def embed_faces(
        self, bgr: np.ndarray, landmarks: list[np.ndarray], crops: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Unit vectors of prepared 112 x 112 crops, and the length of each output before normalisation
        (a quality measure: see :mod:`nomina.quality`). The photo and landmarks are not needed here."""
        raw = self.outputs(crops)
        return unit_rows(raw), np.linalg.norm(raw, axis=1)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (float32)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: np.ndarray = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit
