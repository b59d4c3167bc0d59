"""dlib's ResNet face descriptor, and its fusion with SFace into one vector.

dlib's network (``dlib_face_recognition_resnet_model_v1.dat``, CC0) takes a 150 x 150 RGB chip aligned
the way dlib's ``get_face_chip_details(shape, 150, 0.25)`` aligns a face. Nomina aligns that chip from the
detector's own five landmarks instead of running dlib's landmark model: :data:`DLIB_TEMPLATE` places the
eye centres, nose tip and mouth corners where dlib's published mean face (the 68-point
``mean_face_shape`` in ``dlib/image_transforms/interpolation.h``) puts them, with the same 0.25 padding.
The eye centres are the means of that face's six points around each eye; the nose tip is point 30, the
mouth corners points 48 and 54. Nothing in the template is fitted on photos.

The fused embedding (:class:`FusedEmbedder`) is the concatenation of SFace's unit vector and dlib's
vector centred and made unit length, each scaled by a weight, the two weights' squares summing to one.
The cosine of two fused vectors is then ``ws^2 * cos_sface + wd^2 * cos_dlib``: a weighted sum of the two
models' scores. The centre and the weights are read from a JSON file shipped with Nomina (its SHA-256 is
part of the model's manifest), written by ``bench/fusion_fit.py`` from photos that are never reported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .sface import SFaceEmbedder, unit_rows

__all__ = ["DLIB_CHIP", "DLIB_TEMPLATE", "DlibEmbedder", "FusedEmbedder", "load_fusion"]

DLIB_CHIP = 150
#: Eye centres (image left, image right), nose tip, mouth corners (image left, image right) in the chip.
DLIB_TEMPLATE = np.array(
    [
        [47.5492, 46.5990],
        [100.4761, 46.5990],
        [74.0127, 76.5625],
        [50.4149, 103.0233],
        [97.6104, 103.0233],
    ],
    dtype=np.float64,
)


class DlibEmbedder:
    """dlib's ResNet descriptor (128-d) of faces given by the photo and their landmarks."""

    dim = 128

    def __init__(self, path: str) -> None:
        import dlib  # the dlib-bin wheel (the `dlib` extra); only this model needs it

        self._net = dlib.face_recognition_model_v1(path)

    def chip(self, bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The 150 x 150 RGB chip dlib's network is given, aligned on five landmarks or two eye centres, and
        contrast-stretched when dark or washed out, as SFace's crop is (:func:`nomina.faces.embedding_crop`)."""
        from ..faces import align, embedding_crop

        chip = embedding_crop(align(bgr, landmarks, DLIB_TEMPLATE, DLIB_CHIP))
        return np.ascontiguousarray(chip[:, :, ::-1])

    def descriptors(self, chips: list[np.ndarray]) -> np.ndarray:
        """The network's vectors for RGB chips (not unit length)."""
        if not chips:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray([np.asarray(d) for d in self._net.compute_face_descriptor(chips)], dtype=np.float32)


def load_fusion(path: str) -> dict[str, Any]:
    """The fusion's parameters (centre of dlib's vectors, the two weights), checked for shape and range."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        centre = np.asarray(data["dlib_centre"], dtype=np.float32)
        ws, wd = float(data["weights"]["sface"]), float(data["weights"]["dlib"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a fusion file ({type(exc).__name__}: {exc})") from None
    if centre.shape != (DlibEmbedder.dim,) or not np.isfinite(centre).all():
        raise ValueError("dlib_centre is not 128 finite numbers")
    if not (ws > 0 and wd > 0 and abs(ws * ws + wd * wd - 1) < 1e-5):
        raise ValueError("the two weights must be positive with squares summing to 1")
    return {"centre": centre, "sface": ws, "dlib": wd}


class FusedEmbedder:
    """SFace and dlib in one vector: ``[ws * sface_unit, wd * unit(dlib - centre)]`` (256-d, unit length)."""

    dim = SFaceEmbedder.dim + DlibEmbedder.dim
    norm_field = SFaceEmbedder.norm_field

    def __init__(self, sface: SFaceEmbedder, dlib_net: DlibEmbedder, fusion: dict[str, Any]) -> None:
        self.sface = sface
        self.dlib = dlib_net
        self._centre = fusion["centre"]
        self._ws = fusion["sface"]
        self._wd = fusion["dlib"]

    def fuse(self, sface_raw: np.ndarray, dlib_raw: np.ndarray) -> np.ndarray:
        """Fused unit vectors from the two networks' raw outputs."""
        fused = np.hstack([self._ws * unit_rows(sface_raw), self._wd * unit_rows(dlib_raw - self._centre)])
        return unit_rows(fused)

    def embed(self, aligned: list[np.ndarray]) -> np.ndarray:
        raise TypeError("the fused model embeds faces from the photo and their landmarks (embed_faces)")

    def embed_faces(
        self, bgr: np.ndarray, landmarks: list[np.ndarray], crops: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fused vectors of faces in a photo (SFace's prepared 112 x 112 crops, dlib's chips cut here), and
        the length of SFace's output for each, as :meth:`SFaceEmbedder.embed_faces` gives it."""
        if not crops:
            return np.zeros((0, self.dim), dtype=np.float32), np.zeros(0)
        chips = [self.dlib.chip(bgr, lm) for lm in landmarks]
        sface_raw = self.sface.outputs(crops)
        return self.fuse(sface_raw, self.dlib.descriptors(chips)), np.linalg.norm(sface_raw, axis=1)
