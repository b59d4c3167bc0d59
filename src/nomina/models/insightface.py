"""SCRFD detection and ArcFace-family embedding (InsightFace), run with OpenCV's DNN module.

The InsightFace weights are licensed for non-commercial research use only (see docs/models.md); the
files are read from a package folder and never imported.

SCRFD is fed the image as given, padded on the bottom and right to a multiple of 32: OpenCV accepts any
input size, and upscaling a small photo to SCRFD's usual 640 px makes it miss faces it finds at the
photo's own size. Its scores are lower than YuNet's and swing with the face's size against its anchors
(clear faces in the 400 px sample portraits score 0.67-0.88).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache

import cv2
import numpy as np

from .base import Detection
from .sface import unit_rows

__all__ = ["ArcFaceEmbedder", "ScrfdDetector"]

# Lowest score kept (as for YuNet); Nomina applies its own threshold afterwards.
_SCRFD_FLOOR = 0.3
_SCRFD_NMS = 0.4
_STRIDES = (8, 16, 32)
_ANCHORS_PER_POINT = 2
_PAD_MULTIPLE = 32
# Grey padding is 0 after SCRFD's normalisation.
_PAD_VALUE = (127, 127, 127)
# Faces per forward pass of the embedder (bounds memory on a photo of a crowd).
_BATCH = 32
_CROP = 112


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


@lru_cache(maxsize=64)
def _anchor_centres(rows: int, cols: int, stride: int) -> np.ndarray:
    """(x, y) of every anchor on a stride's grid, row by row, each point repeated once per anchor."""
    ys, xs = np.mgrid[:rows, :cols]
    centres = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32) * stride
    repeated: np.ndarray = np.repeat(centres, _ANCHORS_PER_POINT, axis=0)
    repeated.setflags(write=False)
    return repeated


class ScrfdDetector:
    """SCRFD with five landmarks (the ``_bnkps`` exports): boxes and landmarks as distances from anchors."""

    _OUTPUTS = tuple(f"{kind}_{stride}" for kind in ("score", "bbox", "kps") for stride in _STRIDES)

    def __init__(self, path: str) -> None:
        with _quiet_opencv():
            self._net = cv2.dnn.readNetFromONNX(path)
        missing = set(self._OUTPUTS) - set(self._net.getUnconnectedOutLayersNames())
        if missing:
            raise ValueError(f"not an SCRFD network with five landmarks (no output {', '.join(sorted(missing))})")

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        h, w = bgr.shape[:2]
        if h == 0 or w == 0:
            return []
        height = -(-h // _PAD_MULTIPLE) * _PAD_MULTIPLE
        width = -(-w // _PAD_MULTIPLE) * _PAD_MULTIPLE
        padded = cv2.copyMakeBorder(bgr, 0, height - h, 0, width - w, cv2.BORDER_CONSTANT, value=_PAD_VALUE)
        blob = cv2.dnn.blobFromImage(padded, 1 / 128.0, (width, height), (127.5, 127.5, 127.5), swapRB=True)
        self._net.setInput(blob)
        outputs = dict(zip(self._OUTPUTS, self._net.forward(list(self._OUTPUTS)), strict=True))
        boxes, scores, landmarks = [], [], []
        for stride in _STRIDES:
            score = outputs[f"score_{stride}"].reshape(-1)
            centres = _anchor_centres(height // stride, width // stride, stride)
            if len(centres) != len(score):
                raise ValueError(f"SCRFD stride {stride}: {len(score)} scores for {len(centres)} anchors")
            keep = score >= _SCRFD_FLOOR
            if not keep.any():
                continue
            at = centres[keep]
            dist = outputs[f"bbox_{stride}"].reshape(-1, 4)[keep] * stride
            boxes.append(np.concatenate([at - dist[:, :2], at + dist[:, 2:]], axis=1))
            kps = outputs[f"kps_{stride}"].reshape(-1, 5, 2)[keep] * stride
            landmarks.append(kps + at[:, None, :])
            scores.append(score[keep])
        if not scores:
            return []
        corners = np.concatenate(boxes).astype(np.float64)
        points = np.concatenate(landmarks).astype(np.float32)
        score_all = np.concatenate(scores).astype(np.float64)
        rects = [(x0, y0, x1 - x0, y1 - y0) for x0, y0, x1, y1 in corners.tolist()]
        keep_idx = np.asarray(cv2.dnn.NMSBoxes(rects, score_all.tolist(), _SCRFD_FLOOR, _SCRFD_NMS)).reshape(-1)
        return [
            Detection(
                box=(float(rects[i][0]), float(rects[i][1]), float(rects[i][2]), float(rects[i][3])),
                landmarks=points[i].copy(),
                score=float(score_all[i]),
            )
            for i in keep_idx.tolist()
        ]


class ArcFaceEmbedder:
    """An ArcFace-family network: 112 x 112 RGB crop scaled to [-1, 1], one vector per face."""

    norm_field = "arcface_norm"  # the quality measure embed_faces' lengths are (nomina.quality.Quality)

    def __init__(self, path: str, dim: int = 512) -> None:
        self.dim = dim
        with _quiet_opencv():
            self._net = cv2.dnn.readNetFromONNX(path)
        # One blank face checks that the file is an embedder of the stated size.
        got = self._forward([np.zeros((_CROP, _CROP, 3), np.uint8)]).shape[1]
        if got != dim:
            raise ValueError(f"the network gives {got}-d vectors, not {dim}-d")

    def _forward(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        blob = cv2.dnn.blobFromImages(list(crops), 1 / 127.5, (_CROP, _CROP), (127.5, 127.5, 127.5), swapRB=True)
        self._net.setInput(blob)
        out: np.ndarray = np.asarray(self._net.forward(), dtype=np.float32).reshape(len(crops), -1)
        return out

    def features(self, aligned: list[np.ndarray]) -> np.ndarray:
        """The network's raw vectors (not unit length; their length grows with how clear the face is)."""
        if not aligned:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate([self._forward(aligned[i : i + _BATCH]) for i in range(0, len(aligned), _BATCH)])

    def embed(self, aligned: list[np.ndarray]) -> np.ndarray:
        return unit_rows(self.features(aligned))

    def embed_faces(
        self, bgr: np.ndarray, landmarks: list[np.ndarray], crops: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Unit vectors of prepared 112 x 112 crops, and the length of each raw vector (a quality measure: see
        :mod:`nomina.quality`). The photo and landmarks are not needed here."""
        raw = self.features(crops)
        return unit_rows(raw), np.linalg.norm(raw, axis=1)
