"""YuNet face detection (OpenCV model zoo, 2023mar), run with onnxruntime.

The network is the shipped file, unchanged on disk; what runs is the same graph with its quantised weights
made float once at load (as OpenCV does when it loads the file) and its input size left open. Boxes,
landmarks and scores are decoded exactly as OpenCV's ``FaceDetectorYN`` decodes them (the image padded to a
multiple of 32 on the bottom and right with black, a score that is the geometric mean of the class and
object outputs, non-maximum suppression on whole-pixel boxes), so the detections are OpenCV's: on the
sample photos and every derived set, the same faces with landmarks within 0.001 px (``tests/test_models.py``).
onnxruntime runs this network in about half OpenCV's time (docs/benchmarks.md, enrolment).

onnxruntime refuses the file's block quantisation, hence the float copy, made in memory at every load from the
verified file: nothing derived is written to disk.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from ..errors import ModelError
from . import onnx_graph
from .base import Detection

__all__ = ["YuNetDetector"]

# Lowest score YuNet itself reports; Nomina applies its own threshold afterwards.
_FLOOR = 0.3
_NMS = 0.3
_TOP_K = 5000
_STRIDES = (8, 16, 32)
_PAD_MULTIPLE = 32
_OUTPUTS = tuple(f"{kind}_{stride}" for kind in ("cls", "obj", "bbox", "kps") for stride in _STRIDES)


@lru_cache(maxsize=4)
def _runnable(data: bytes) -> bytes:
    """A YuNet file's graph as onnxruntime runs it, made once for the detectors of every thread (keyed by the
    file's bytes, so a file changed since is made again)."""
    return bytes(onnx_graph.open_input_size(onnx_graph.float_weights(onnx_graph.read(data))).SerializeToString())


class YuNetDetector:
    """YuNet on one thread of the caller's (build one per thread, as for every network here)."""

    def __init__(self, path: str) -> None:
        # onnxruntime's Windows builds record usage events for the operating system's telemetry unless told not to
        # (elsewhere it is off for the whole process, before onnxruntime loads: nomina.offline)
        ort.disable_telemetry_events()
        graph = _runnable(Path(path).read_bytes())
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # the caller runs one detector per worker thread
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # nothing on the terminal: a file that fails to load or run raises, and Nomina says so in one line (the
        # environment's logger, which speaks before a session has its own, is onnxruntime's only: set here too)
        ort.set_default_logger_severity(4)
        options.log_severity_level = 4
        # no fallback: onnxruntime would print a banner on the terminal and retry the same provider
        self._session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"], enable_fallback=0)
        self._session.disable_fallback()
        self._input = self._session.get_inputs()[0].name
        has = {o.name for o in self._session.get_outputs()}
        missing = [name for name in _OUTPUTS if name not in has]
        if missing:
            raise ValueError(f"the detector's network has no output {missing[0]} (not a YuNet network)")
        self.detect(np.zeros((64, 64, 3), np.uint8))  # a network that loads but cannot run fails here, not mid-import

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        h, w = bgr.shape[:2]
        if h == 0 or w == 0:
            return []  # as OpenCV's detector answers an empty image
        padded_h, padded_w = -(-h // _PAD_MULTIPLE) * _PAD_MULTIPLE, -(-w // _PAD_MULTIPLE) * _PAD_MULTIPLE
        blob = np.zeros((1, 3, padded_h, padded_w), dtype=np.float32)
        blob[0, :, :h, :w] = bgr.transpose(2, 0, 1)
        out = dict(zip(_OUTPUTS, self._session.run(list(_OUTPUTS), {self._input: blob}), strict=True))
        with np.errstate(over="ignore", invalid="ignore"):  # a damaged network's infinities are refused below
            faces = np.concatenate([_decode(out, stride, padded_w // stride) for stride in _STRIDES])
        if not np.isfinite(faces).all():
            raise ModelError("model: the face detector gave a face at no finite place; its file is damaged")
        if len(faces) > 1:
            boxes = [[int(v) for v in face[:4]] for face in faces]  # OpenCV suppresses on whole-pixel boxes
            keep = cv2.dnn.NMSBoxes(boxes, faces[:, 14].tolist(), _FLOOR, _NMS, top_k=_TOP_K)
            faces = faces[np.asarray(keep, dtype=np.int64).reshape(-1)]
        return [
            Detection(
                box=(float(f[0]), float(f[1]), float(f[2]), float(f[3])),
                landmarks=f[4:14].reshape(5, 2).copy(),
                score=float(f[14]),
            )
            for f in faces
        ]


def _decode(out: dict[str, np.ndarray], stride: int, cols: int) -> np.ndarray:
    """Rows of (x, y, width, height, 5 landmarks, score) for one stride's grid points scoring at least the floor."""
    cls = np.clip(out[f"cls_{stride}"].reshape(-1), 0.0, 1.0)
    obj = np.clip(out[f"obj_{stride}"].reshape(-1), 0.0, 1.0)
    score = np.sqrt(cls * obj)
    at = np.flatnonzero(score >= _FLOOR)
    col = (at % cols).astype(np.float32)[:, None]
    row = (at // cols).astype(np.float32)[:, None]
    box = out[f"bbox_{stride}"].reshape(-1, 4)[at]
    kps = out[f"kps_{stride}"].reshape(-1, 5, 2)[at]
    size = np.exp(box[:, 2:4]) * stride
    corner = (np.hstack([col, row]) + box[:, 0:2]) * stride - size / 2
    marks = (kps + np.stack([col, row], axis=2)) * stride
    return np.hstack([corner, size, marks.reshape(-1, 10), score[at, None]]).astype(np.float32)
