"""The interfaces every face model implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from .manifest import ModelManifest

__all__ = ["Detection", "Detector", "Embedder", "FaceModel", "MeasuringEmbedder"]


@dataclass(frozen=True)
class Detection:
    """One detected face in the coordinates of the image given to the detector.

    ``landmarks`` is 5 x 2 (x, y): the eye on the image's left, the eye on the image's right, nose tip,
    mouth corner on the image's left, mouth corner on the image's right.
    """

    box: tuple[float, float, float, float]  # x, y, width, height
    landmarks: np.ndarray
    score: float


class Detector(Protocol):
    def detect(self, bgr: np.ndarray) -> list[Detection]:
        """Faces found in the image as given (no resizing)."""
        ...


class Embedder(Protocol):
    dim: int

    def embed(self, aligned: list[np.ndarray]) -> np.ndarray:
        """Unit-length float32 vectors (N x dim) for aligned BGR face crops."""
        ...


@runtime_checkable
class MeasuringEmbedder(Embedder, Protocol):
    """An embedder that also gives, for each face, the length of its network's output before normalisation:
    a quality measure, kept in the :class:`nomina.quality.Quality` field ``norm_field`` names."""

    norm_field: str

    def embed_faces(
        self, bgr: np.ndarray, landmarks: list[np.ndarray], crops: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Unit vectors of faces (their prepared 112 x 112 crops, and the photo and landmarks for a network that
        cuts its own), and each output's length."""
        ...


@dataclass
class FaceModel:
    """A loaded model: its manifest, the hashes of the files actually loaded, and both parts.

    ``make_parts`` builds a fresh detector and embedder; call it once per thread, since OpenCV networks
    must not run concurrently.
    """

    manifest: ModelManifest
    file_hashes: dict[str, str]
    detector: Detector
    embedder: Embedder
    paths: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def identity(self) -> dict[str, object]:
        """What a workspace records of the model: its name and the SHA-256 of each file."""
        return {"name": self.manifest.name, "files": dict(sorted(self.file_hashes.items()))}

    def make_parts(self) -> tuple[Detector, Embedder]:
        return self.manifest.build(self.paths)
