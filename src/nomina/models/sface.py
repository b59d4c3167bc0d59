"""SFace embedding (OpenCV model zoo, 2021dec), run with OpenVINO (YuNet detection is in :mod:`nomina.models.yunet`).

The network is the shipped file, unchanged on disk; what runs is its graph with the block-quantised weights
made float32 once at load, in memory (as OpenCV does when it loads the file; OpenVINO refuses the block
quantisation). OpenVINO runs it in about half OpenCV's time and gives the same vectors: on the sample faces
and every derived set, within 1e-5 of OpenCV's ``readNetFromONNX`` (``tests/test_models.py``), so vectors
stored by earlier versions compare with new ones as before.

Pitfalls handled here: the network takes an RGB blob of 0-255 values (``swapRB=True``: feeding BGR nearly
doubles missed matches in 1:N search); OpenVINO would run it in bfloat16 on processors that have it
(different vectors from one machine to another) unless told to keep float32; and it would pin its thread
to a core, the same core for every worker, unless told not to. Nomina only reads and compiles the graph:
OpenVINO's usage statistics belong to its model converter, which is never called (nothing is sent).
"""

from __future__ import annotations

import re
import threading
import weakref
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import reason
from . import onnx_graph

__all__ = ["SFaceEmbedder", "unit_rows"]

_CROP = 112
_SOURCE_PLACE = re.compile(r"(Exception from|Check '[^']*' failed at) \S+:\d+:\s*")
# One thread for each network (the caller runs one per worker thread), in float32 and at full accuracy on every
# processor, not pinned to a core.
_CONFIG = {
    "INFERENCE_NUM_THREADS": 1,
    "NUM_STREAMS": 1,
    "PERFORMANCE_HINT": "LATENCY",
    "INFERENCE_PRECISION_HINT": "f32",
    "EXECUTION_MODE_HINT": "ACCURACY",
    "ENABLE_CPU_PINNING": False,
}
_CORE_LOCK = threading.Lock()
# Compiled networks that no embedder uses now, kept for the next (compiling takes about 0.3 s, ten faces' time):
# id of the graph -> (the graph, which keeps that id its own, and its networks).
_SPARE: dict[int, tuple[Any, list[Any]]] = {}
_SPARE_MAX = 4


@lru_cache(maxsize=1)
def _core() -> Any:
    import openvino  # about 0.3 s to import: only when a model loads, not at every command's start

    return openvino.Core()


@lru_cache(maxsize=4)
def _graph(data: bytes) -> Any:
    """An SFace file's graph as OpenVINO runs it, read once for the networks of every thread (keyed by the file's
    bytes, so a file changed since is read again)."""
    return _core().read_model(onnx_graph.float_weights(onnx_graph.read(data)).SerializeToString())


def _compiled(graph: Any) -> Any:
    """A network compiled from ``graph`` that no embedder uses: a spare one, else a new one."""
    with _CORE_LOCK:
        spare = _spares(graph)
        if spare:
            return spare.pop()
    return _core().compile_model(graph, "CPU", _CONFIG)


def _give_back(graph: Any, compiled: Any) -> None:
    with _CORE_LOCK:
        spare = _spares(graph)
        if len(spare) < _SPARE_MAX:
            spare.append(compiled)


def _spares(graph: Any) -> list[Any]:
    """The spare networks of ``graph`` (the caller holds the lock); those of the graphs loaded longest ago
    are let go beyond four graphs (a process that loads many model files, one after the other)."""
    if id(graph) not in _SPARE and len(_SPARE) >= 4:
        del _SPARE[next(iter(_SPARE))]
    return _SPARE.setdefault(id(graph), (graph, []))[1]


class SFaceEmbedder:
    """SFace on one thread of the caller's (build one per thread, as for every network here)."""

    dim = 128
    norm_field = "sface_norm"  # the quality measure embed_faces' lengths are (nomina.quality.Quality)

    def __init__(self, path: str) -> None:
        try:
            self._load(path)
        except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError, over several lines
            # without the places in OpenVINO's sources that its messages begin with, which say nothing to a user
            said = _SOURCE_PLACE.sub("", str(exc)) or type(exc).__name__
            raise ValueError(f"{Path(path).name}: {reason(ValueError(said), 250)}") from None

    def _load(self, path: str) -> None:
        with _CORE_LOCK:  # one graph read for the workers that load at once
            graph = _graph(Path(path).read_bytes())
        names = {name for port in graph.inputs for name in port.get_names()}
        if "data" not in names or len(graph.inputs) != 1:
            raise ValueError("the embedder's network does not take one input 'data' (not an SFace network)")
        self.compiled = _compiled(graph)
        weakref.finalize(self, _give_back, graph, self.compiled)
        self._request = self.compiled.create_infer_request()
        # One blank face checks that the file is SFace (it gives 128 numbers), at load rather than mid-import.
        got = self.outputs([np.zeros((_CROP, _CROP, 3), np.uint8)]).shape[1]
        if got != self.dim:
            raise ValueError(f"the network gives {got}-d vectors, not {self.dim}-d")

    def outputs(self, aligned: list[np.ndarray]) -> np.ndarray:
        """The network's output for each crop, before L2 normalisation (its length is a quality signal)."""
        if not aligned:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        for crop in aligned:  # the graph takes one face per pass (batches are no faster on a CPU: benchmarks.md)
            blob = cv2.dnn.blobFromImage(crop, 1.0, (_CROP, _CROP), (0, 0, 0), swapRB=True)
            self._request.infer({0: blob})
            out.append(np.array(self._request.get_output_tensor(0).data, dtype=np.float32).reshape(-1))
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
