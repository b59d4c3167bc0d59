"""``nomina evaluate``: analyse every photo of a labelled dataset, then measure, as the field reports it.

Each photo goes through Nomina's own pipeline as a case photo would (safe decoding, detection at several
scales and, with the default setting, in four orientations, levelling, alignment, quality measures,
embedding). A photo with several faces contributes the face nearest its centre (the LFW convention).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .. import calibration
from .._version import __version__
from ..calibration import Calibration
from ..errors import InputError, InvalidField
from ..imaging import decode_image, read_photo, sha256_hex
from ..models import FaceModel
from ..parallel import AnalyzerPool, ordered_map
from ..settings import Settings
from . import protocols
from .cache import Analysis, EmbeddingCache, pipeline_key
from .dataset import Dataset, Labels, Photo, read_labels, scan
from .pairs import read_pairs

__all__ = ["EvaluateOptions", "Evaluation", "Failure", "fit_calibration", "run_evaluation"]

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class EvaluateOptions:
    dataset: Path
    pairs: Path | None = None
    labels: Path | None = None
    group_columns: list[str] | None = None
    impostors: int = 1_000_000  # most impostor pairs compared; more are sampled down to this
    seed: int = 0  # of the impostor sample
    use_cache: bool = True


@dataclass(frozen=True)
class Failure:
    """A photo without a usable face: what happened, and where the photo is (for thumbnails)."""

    photo: str  # identity/file name
    path: Path
    kind: str  # "no_face" or "unreadable"
    reason: str


@dataclass
class Evaluation:
    """The documented metrics object, plus what plots and the report need."""

    metrics: dict[str, Any]
    dataset: Dataset
    failures: list[Failure]
    genuine: np.ndarray  # verification scores, failures included (as the worst score)
    impostor: np.ndarray
    ranks: np.ndarray | None  # rank of each probe's mate in identification
    analyses: list[Analysis] = field(default_factory=list)
    log10_lrs: tuple[np.ndarray, np.ndarray] | None = None  # with a calibration: genuine, impostor

    @property
    def unreadable(self) -> list[Failure]:
        return [f for f in self.failures if f.kind == "unreadable"]


def _analysis_settings(settings: Settings, turns: bool) -> dict[str, Any]:
    return {
        "detection_threshold": settings.detection_threshold,
        "detection_size": settings.detection_size,
        "orientation_search": turns,
        "max_pixels": settings.max_pixels,
    }


def _analyse(pool: AnalyzerPool, photo: Photo, turns: bool) -> Analysis:
    try:
        image = decode_image(read_photo(photo.path), photo.name, pool.settings.max_pixels)
    except InputError as exc:
        return Analysis("unreadable", 0, str(exc))
    face, found = pool.get().central_face(image, any_orientation=turns)
    if face is None:
        return Analysis("no_face", 0, f"{photo.name}: no face detected", width=image.width, height=image.height)
    described = {
        "number": face.number,
        "box": [round(float(v), 1) for v in face.box],
        "landmarks": np.round(face.landmarks.astype(np.float64), 1).tolist(),
        "quality": face.quality.as_dict(),
    }
    return Analysis("ok", found, None, described, face.embedding, image.width, image.height)


def analyse_dataset(
    dataset: Dataset, pool: AnalyzerPool, use_cache: bool, progress: Progress | None
) -> tuple[list[Analysis], dict[str, Any]]:
    """Every photo's analysis, from the cache where possible; and the timing block."""
    settings = pool.settings
    turns = pool.get().turns(reference_photo=False)
    key = pipeline_key(pool.model.identity, _analysis_settings(settings, turns))
    cache = EmbeddingCache(settings.cache, key) if use_cache else None
    results: list[Analysis | None] = [None] * len(dataset.photos)
    shas: list[str | None] = []
    for k, photo in enumerate(dataset.photos):
        try:
            shas.append(sha256_hex(read_photo(photo.path)))
        except InputError as exc:
            shas.append(None)
            results[k] = Analysis("unreadable", 0, str(exc))
    known = cache.get_many([s for s in shas if s is not None]) if cache is not None else {}
    todo = []
    for k, sha in enumerate(shas):
        if sha is not None and sha in known:
            results[k] = known[sha]
        elif results[k] is None:
            todo.append(k)
    done = len(dataset.photos) - len(todo)
    if progress is not None:
        progress(done, len(dataset.photos))
    analysis_started = time.perf_counter()
    try:
        for k, result in zip(
            todo, ordered_map(lambda k: _analyse(pool, dataset.photos[k], turns), todo, settings.workers), strict=True
        ):
            analysis = result if isinstance(result, Analysis) else Analysis("unreadable", 0, str(result))
            results[k] = analysis
            sha = shas[k]
            if cache is not None and sha is not None:
                cache.put(sha, analysis)
            done += 1
            if progress is not None:
                progress(done, len(dataset.photos))
    finally:
        if cache is not None:
            cache.close()
    seconds = time.perf_counter() - analysis_started
    timing = {
        "photos_per_second": round(len(todo) / seconds, 2) if todo and seconds > 0 else None,
        "photos_analysed": len(todo),
        "photos_from_cache": len(dataset.photos) - len(todo) - sum(s is None for s in shas),
        "analysis_seconds": round(seconds, 2),
        "workers": settings.workers,
        "cache": str(cache.path) if cache is not None else None,
    }
    if not todo:
        timing["note"] = "every embedding came from the cache: nothing was analysed in this run"
    return [r for r in results if r is not None], timing


def _vectors(dataset: Dataset, analyses: list[Analysis], dim: int) -> tuple[np.ndarray, np.ndarray, list[Failure]]:
    """One row per photo (zeros for a failure), which photos have a face, and the failures."""
    vectors = np.zeros((len(analyses), dim), dtype=np.float32)
    ok = np.zeros(len(analyses), dtype=bool)
    failures = []
    for k, a in enumerate(analyses):
        if a.status == "ok" and a.vector is not None:
            vectors[k] = a.vector
            ok[k] = True
        else:
            photo = dataset.photos[k]
            failures.append(Failure(photo.name, photo.path, a.status, a.message or a.status))
    return vectors, ok, failures


def _pair_scores(
    dataset: Dataset, vectors: np.ndarray, ok: np.ndarray, options: EvaluateOptions
) -> tuple[protocols.PairScores, protocols.PairScores, int]:
    """Genuine pairs, impostor pairs (sampled as the options say) and how many impostor pairs there are."""
    gi, gj = protocols.genuine_pairs(dataset)
    ii, ij, available = protocols.impostor_pairs(dataset, options.impostors, options.seed)
    return protocols.pair_scores(vectors, ok, gi, gj), protocols.pair_scores(vectors, ok, ii, ij), available


def fit_calibration(
    options: EvaluateOptions,
    settings: Settings,
    model: FaceModel,
    method: str = "logistic",
    folds: int = 5,
    progress: Progress | None = None,
) -> Calibration:
    """A score -> likelihood-ratio calibration fitted on the face pairs of a labelled dataset.

    The pairs are those ``nomina evaluate`` compares (every genuine pair, impostor pairs sampled as
    ``options`` say), through the same pipeline and cache. Pairs involving a photo without a face are
    left out: they have no score to calibrate. ``data`` records what the calibration was fitted on.
    """
    dataset = scan(options.dataset)
    pool = AnalyzerPool(model, settings)
    analyses, _ = analyse_dataset(dataset, pool, options.use_cache, progress)
    vectors, ok, failures = _vectors(dataset, analyses, model.manifest.embedding_dim)
    gen, imp, available = _pair_scores(dataset, vectors, ok, options)
    try:
        return calibration.fit(
            gen.scores[gen.clean],
            imp.scores[imp.clean],
            method=method,
            folds=folds,
            seed=options.seed,
            data={
                "dataset": str(dataset.path.resolve()),
                "identities": len(dataset.identities),
                "photos": len(dataset.photos),
                "photos_without_face": len(failures),
                "impostor_pairs_available": available,
                "impostor_sample_seed": None if len(imp.scores) == available else options.seed,
                "model": model.identity,
                "analysis": _analysis_settings(settings, pool.get().turns(reference_photo=False)),
                "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "nomina_version": __version__,
            },
        )
    except ValueError as exc:
        raise InvalidField(f"{dataset.path}: {exc}") from None


def run_evaluation(
    options: EvaluateOptions,
    settings: Settings,
    model: FaceModel,
    progress: Progress | None = None,
    calibration: tuple[int, Calibration] | None = None,
) -> Evaluation:
    """Measure the whole pipeline on a labelled dataset (see docs/evaluate.md for every number).

    With ``calibration`` (a workspace's, with its id) the metrics gain a ``calibration`` block.
    """
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    started = time.perf_counter()
    dataset = scan(options.dataset)
    # Read the side files before the long analysis, so a mistake in them costs nothing.
    protocol = read_pairs(options.pairs, dataset.path) if options.pairs is not None else None
    labels: Labels | None = None
    if options.labels is not None:
        labels = read_labels(options.labels, dataset, options.group_columns)
    pool = AnalyzerPool(model, settings)
    analyses, timing = analyse_dataset(dataset, pool, options.use_cache, progress)

    vectors, ok, failures = _vectors(dataset, analyses, model.manifest.embedding_dim)
    gen, imp, available = _pair_scores(dataset, vectors, ok, options)
    verification = protocols.verification_block(gen, imp, available, options.seed)
    verification["genuine_scores"] = protocols.score_summary(gen.scores[gen.clean])
    verification["impostor_scores"] = protocols.score_summary(imp.scores[imp.clean])
    identification, ranks = protocols.identification_block(dataset, vectors, ok)

    metrics: dict[str, Any] = {
        "dataset": {
            "path": str(dataset.path),
            "identities": len(dataset.identities),
            "photos": len(dataset.photos),
            "identities_with_two_or_more": sum(len(m) > 1 for m in dataset.photos_of().values()),
            "ignored_files": dataset.ignored_files,
        },
        "model": {
            **model.identity,
            "description": model.manifest.description,
            "licence": model.manifest.licence,
            "settings": _analysis_settings(settings, pool.get().turns(reference_photo=False)),
            "nomina_version": __version__,
        },
        "detection": {
            "photos": len(dataset.photos),
            "failures": len(failures),
            "several_faces": sum(a.faces > 1 for a in analyses),
            "no_face": sum(f.kind == "no_face" for f in failures),
            "unreadable": sum(f.kind == "unreadable" for f in failures),
            "failed_photos": [{"photo": f.photo, "kind": f.kind, "reason": f.reason} for f in failures],
        },
        "verification": verification,
    }
    if protocol is not None:
        metrics["pairs"] = protocols.pairs_block(protocol, dataset, vectors, ok)
    metrics["identification"] = identification
    threshold = verification.get("operating_points", {}).get("0.001", {}).get("threshold")
    quality = np.array(
        [a.face["quality"]["score"] if a.status == "ok" and a.face else np.nan for a in analyses], dtype=np.float64
    )
    verification["quality"] = protocols.quality_block(quality, gen, imp, threshold)
    if labels is not None:
        groups = protocols.groups_block(labels, gen, imp, threshold)
        metrics["groups"] = groups
        metrics["dataset"]["labels"] = {
            "path": str(labels.path),
            "columns": labels.columns,
            "photos_labelled": len(labels.values),
            "rows_not_in_dataset": labels.unmatched_rows,
            "notes": labels.notes
            + ([] if threshold is not None else ["no threshold at FAR 0.001 (too few impostor pairs): rates are null"]),
        }
    lrs = None
    if calibration is not None:
        block, lrs = protocols.calibration_block(*calibration, gen, imp, str(dataset.path.resolve()))
        metrics["calibration"] = block
    metrics["timing"] = {**timing, "started_at": started_at, "total_seconds": round(time.perf_counter() - started, 2)}
    return Evaluation(metrics, dataset, failures, gen.scores, imp.scores, ranks, analyses, lrs)
