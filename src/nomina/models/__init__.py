"""Face models behind two small interfaces, each described by a manifest.

A model is a detector (faces with five landmarks) and an embedder (aligned crop -> unit vector). Models
are registered by name in :data:`MODELS`; their files are located inside an installed package (never
imported) or in a folder the user names, and every file's SHA-256 is checked before use.
"""

from __future__ import annotations

from .base import Detection, Detector, Embedder, FaceModel, MeasuringEmbedder
from .manifest import MODELS, ModelFile, ModelManifest, load_model, locate_files

__all__ = [
    "MODELS",
    "Detection",
    "Detector",
    "Embedder",
    "FaceModel",
    "MeasuringEmbedder",
    "ModelFile",
    "ModelManifest",
    "load_model",
    "locate_files",
]
