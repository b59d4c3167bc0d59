"""Does the quality score predict errors? Error-versus-reject curves (ISO/IEC 29794-1) on degraded sample photos.

What it runs
------------
For each London identity: its clean neutral photo is the reference; its probes are its smiling photo as it
is (``clean``) and degraded by every variant of ``postmortem.GROUPS`` (``bench/degrade.py``'s ``issue`` and
``harder`` groups and ``bench/postmortem.py``'s ``postmortem`` group; described in ``bench/accuracy.py``).
Every photo goes through ``nomina.FaceAnalyzer.central_face`` as ``nomina evaluate`` analyses a photo
(detection in four orientations with the default ``orientation_search``, levelling, alignment, quality,
embedding), with the default model ``sface`` or the one ``--model`` names. Per probe photo it records four
measures:

* ``nomina``: Nomina's quality score, ``face.quality.as_dict()["score"]``, the number `nomina evaluate`
  and ``bench/quality.py`` use.
* ``base``: the same score without its response factor (the length of the network's output), as Nomina
  scored faces before that factor was added.
* ``norm``: the length of the network's output before L2 normalisation (``SFaceEmbedder.outputs``; SFace's
  part for ``sface+dlib``, ``ArcFaceEmbedder.features`` for the ArcFace models), for the
  crop the library embeds (``nomina.faces.embedding_crop`` of the face's aligned crop). The normalised
  output is checked against the face's stored embedding (cosine above 0.9999), so a drift between this and
  the library stops the run.
* ``mirror``: the cosine between the face's embedding and that of its crop mirrored left-right (the crop
  is aligned to a nearly symmetric template, so a face the model sees consistently scores near 1).

Comparisons: genuine, each reference against each probe of the same identity; impostor, each reference
against every probe of the other identities. One threshold, the one holding FMR to 0.001 over all impostor
comparisons (``nomina.evaluation.metrics.tar_at_far``). A photo without a face scores -1 in every
comparison, as in `nomina evaluate`.

What is derived
---------------
Error-versus-reject curves (ISO/IEC 29794-1; the 2024 edition calls them error-versus-discard): for
r = 0, 1, ..., 50% of the genuine comparisons whose probe has the lowest value of a measure discarded,
the FNMR of the rest at the fixed threshold. A comparison's quality is its probe's (the reference is
clean). Ties are split as a random order would split them on average (the expected FNMR), so a measure
that gives many photos the same value gains nothing from the order they happen to be in. Probes without a
face have no measure and are left out of the curves; they are counted apart. Also drawn: the ideal curve
(the errors discarded first) and random discarding (a flat line). Per measure, the area between its curve
and the ideal one over 0-50% (smaller is better) and that area relative to random discarding's (0: ideal,
1: no better than discarding at random). Per band of Nomina's score (0-20 ... 80-100), FNMR with its
errors and Wilson 95% interval, and the impostor comparisons' FMR. Everything overall and per group.

Nothing is fitted on the photos reported. The identities are split in two: the ``fit`` half (the first
half of a permutation of the sorted identity names, ``bench/halves.py``) and the ``report`` half.
The only fitted numbers of the score, the response factor's bounds (``nomina.quality.RESPONSE_BOUNDS``,
one pair for SFace's output length and one for ArcFace's), are the pair on a grid (0.5 apart) minimising
the area of ``base x log_rise(norm, lo, hi)`` on the fit half's genuine comparisons: SFace's with the
``sface`` model's errors, ArcFace's with ``yunet+arcface-mbf``'s. A run of either of those models fits
its network's bounds again and says whether the library's are the ones it finds; runs of the other models
report with the library's bounds. Every curve, area and band is reported on the report half only. The
other bounds were set before (``src/nomina/quality.py``); the norm and the mirror consistency have no
parameter (a curve depends only on the order a measure puts photos in).

Every figure comes from derived (degraded) copies of clean studio portraits of 102 people: it shows
whether a measure orders errors, not the error rates of real case photos.

Run
---
From the repository root::

    .venv/bin/python bench/quality_erc.py [--faces DIR] [--model sface] [--variants blur,mask] [--people N]
        [--figure docs/img/quality-erc.png] [--out FILE.json]

``--variants`` and ``--people`` make small trial runs (``clean`` is always a probe). A full run analyses
2,652 photos: about 7 minutes on 2 cores shared with other work (``nice -n 19``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from degrade import clean_landmarks, make_variant
from halves import SPLIT_SEED, halves
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from postmortem import GROUPS

import nomina
from nomina.evaluation import metrics
from nomina.faces import embedding_crop
from nomina.imaging import decode_image, read_photo
from nomina.models.dlib import FusedEmbedder
from nomina.models.insightface import ArcFaceEmbedder
from nomina.models.sface import SFaceEmbedder
from nomina.quality import RESPONSE_BOUNDS, assess

REPO = Path(__file__).resolve().parents[1]
FMR_TARGET = 0.001
WORST = -1.0  # a failure's score, as nomina.evaluation.protocols.WORST
DISCARD = np.linspace(0.0, 0.5, 51)  # fractions of genuine comparisons discarded: 0, 1, ..., 50%
BANDS = ((0, 20), (20, 40), (40, 60), (60, 80), (80, 100))
MEASURES = ("nomina", "base", "norm", "mirror")
LABELS = {
    "nomina": "Nomina's quality score",
    "base": "the score without its response factor",
    "norm": "embedding norm (before L2)",
    "mirror": "mirror consistency",
}
# For each network's output length (the Quality field holding it): the model whose errors its response bounds
# are fitted on, and the candidate bounds (lengths of that network's output).
FIT_MODELS = {"sface_norm": "sface", "arcface_norm": "yunet+arcface-mbf"}
GRIDS = {"sface_norm": np.arange(4.0, 24.001, 0.5), "arcface_norm": np.arange(8.0, 40.001, 0.5)}
MATCH = 0.9999  # least cosine between the re-computed and the library's embedding


@dataclass
class Photo:
    person: str
    variant: str  # "reference", "clean" or a variant name
    group: str  # "reference", "clean", "issue", "harder" or "postmortem"
    path: Path
    found: bool = False
    embedding: np.ndarray | None = None
    nomina: float = math.nan
    base: float = math.nan
    norm: float = math.nan
    mirror: float = math.nan


# -- measuring --------------------------------------------------------------------------------------------
def raw_output(embedder: Any, crop: np.ndarray) -> np.ndarray:
    """The network's output for one crop, before L2 normalisation (SFace's part of the fused model)."""
    if isinstance(embedder, FusedEmbedder):
        embedder = embedder.sface
    if isinstance(embedder, SFaceEmbedder):
        return embedder.outputs([crop])[0].astype(np.float64)
    if isinstance(embedder, ArcFaceEmbedder):
        return embedder.features([crop])[0].astype(np.float64)
    sys.exit(f"{type(embedder).__name__}: this benchmark cannot read that network's output before normalisation")


def analyse(analyzer: nomina.FaceAnalyzer, embedder: Any, photo: Photo, max_pixels: int) -> None:
    image = decode_image(read_photo(photo.path), str(photo.path), max_pixels)
    face, _ = analyzer.central_face(image, any_orientation=analyzer.turns(reference_photo=False))
    if face is None:
        return
    crop = embedding_crop(face.aligned)
    out = raw_output(embedder, crop)
    norm = float(np.linalg.norm(out))
    part = face.embedding[: len(out)]  # the fused model's vector begins with SFace's part
    if float(out @ part) / (norm * float(np.linalg.norm(part))) < MATCH:
        sys.exit(f"{photo.path}: the re-computed network output does not match Nomina's embedding")
    mirrored = raw_output(embedder, np.ascontiguousarray(crop[:, ::-1]))
    photo.found = True
    photo.embedding = face.embedding.astype(np.float64)
    photo.nomina = float(face.quality.as_dict()["score"])
    photo.base = float(assess(dataclasses.replace(face.quality, sface_norm=None, arcface_norm=None)).score)
    stored = getattr(face.quality, embedder.norm_field)
    if stored is None or abs(stored - norm) > 1e-3 * norm:
        sys.exit(f"{photo.path}: the face's stored output length differs from the one re-computed")
    photo.norm = norm
    photo.mirror = float(out @ mirrored / (norm * np.linalg.norm(mirrored)))


# -- curves -----------------------------------------------------------------------------------------------
def erc(quality: np.ndarray, errors: np.ndarray) -> dict[str, np.ndarray]:
    """FNMR after discarding each fraction of DISCARD, lowest quality first (ties split on average)."""
    n, total = len(errors), int(errors.sum())
    d = DISCARD * n
    values, inverse = np.unique(quality, return_inverse=True)
    count = np.bincount(inverse, minlength=len(values))
    wrong = np.bincount(inverse, weights=errors.astype(np.float64), minlength=len(values))
    removed = np.interp(d, np.concatenate([[0], count.cumsum()]), np.concatenate([[0.0], wrong.cumsum()]))
    left = total - removed
    return {"fnmr": left / (n - d), "errors_left": left, "kept": n - d}


def ideal(errors: np.ndarray) -> np.ndarray:
    n, total = len(errors), int(errors.sum())
    d = DISCARD * n
    return np.maximum(total - d, 0.0) / (n - d)


def area(curve: np.ndarray, best: np.ndarray) -> float:
    gap = curve - best
    return float(np.sum((gap[1:] + gap[:-1]) / 2 * np.diff(DISCARD)))


def rise(x: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.clip((x - low) / (high - low), 0.0, 1.0)


def with_response(base: np.ndarray, norm: np.ndarray, low: float, high: float) -> np.ndarray:
    """The score with a response factor of bounds ``low`` and ``high``, as ``nomina.quality.assess`` makes it."""
    return base * rise(np.log(norm), math.log(low), math.log(high))


def fit_response(
    base: np.ndarray, norm: np.ndarray, errors: np.ndarray, grid: np.ndarray
) -> tuple[float, float, float]:
    """(lo, hi, area) of the grid's response bounds with the smallest area vs the ideal curve."""
    best_curve = ideal(errors)
    best = (math.nan, math.nan, math.inf)
    for low in grid:
        for high in grid[grid > low]:
            a = area(erc(with_response(base, norm, low, high), errors)["fnmr"], best_curve)
            if a < best[2] - 1e-12:
                best = (float(low), float(high), a)
    return best


def rate(errors: float, n: float) -> dict[str, Any]:
    return {
        "fnmr": None if n == 0 else round(errors / n, 6),
        "errors": round(float(errors), 2),
        "comparisons": round(float(n), 2),
    }


def curves_block(measures: dict[str, np.ndarray], errors: np.ndarray) -> dict[str, Any]:
    """Curves, areas and FNMR at a few discard fractions for one set of genuine comparisons."""
    total, n = int(errors.sum()), len(errors)
    best = ideal(errors)
    random_area = area(np.full(len(DISCARD), total / n if n else 0.0), best)
    out: dict[str, Any] = {
        "comparisons": n,
        "errors": total,
        "fnmr": None if n == 0 else round(total / n, 6),
        "ideal": np.round(best, 6).tolist(),
        "random_area": round(random_area, 6),
        "measures": {},
    }
    for name, values in measures.items():
        c = erc(values, errors)
        a = area(c["fnmr"], best)
        out["measures"][name] = {
            "fnmr": np.round(c["fnmr"], 6).tolist(),
            "area_vs_ideal": round(a, 6),
            "relative_to_random": None if random_area <= 0 else round(a / random_area, 3),
            "at": {
                f"{int(round(100 * DISCARD[k]))}%": rate(c["errors_left"][k], c["kept"][k])
                for k in (0, 5, 10, 20, 30, 50)
            },
        }
    return out


def bands_block(score: np.ndarray, gen_errors: np.ndarray, imp_score: np.ndarray, imp_false: np.ndarray) -> list:
    rows = []
    for low, high in BANDS:
        top = high if high < 100 else np.inf
        g = (score >= low) & (score < top)
        i = (imp_score >= low) & (imp_score < top)
        e, n = int(gen_errors[g].sum()), int(g.sum())
        ci = metrics.wilson_interval(e, n)
        rows.append(
            {
                "band": f"{low}-{high}",
                "genuine": n,
                "errors": e,
                "fnmr": None if n == 0 else round(e / n, 6),
                "fnmr_ci95": None if ci is None else [round(ci[0], 6), round(ci[1], 6)],
                "impostor": int(i.sum()),
                "false_matches": int(imp_false[i].sum()),
                "fmr": None if not i.any() else round(float(imp_false[i].mean()), 6),
            }
        )
    return rows


# -- output -----------------------------------------------------------------------------------------------
def pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def plot(panels: list[tuple[str, dict[str, Any]]], path: Path, model: str) -> None:
    fig = Figure(figsize=(13.5, 8.2), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)
    x = 100 * DISCARD
    styles = {
        "nomina": ("tab:blue", "-"),
        "base": ("tab:blue", "--"),
        "norm": ("tab:orange", "-"),
        "mirror": ("tab:green", "-"),
    }
    handles: dict[str, Any] = {}
    for ax, (title, block) in zip(axes.flat, panels, strict=False):
        (h,) = ax.plot(x, 100 * np.array(block["ideal"]), color="black", ls=":", lw=1.5)
        handles["ideal (errors discarded first)"] = h
        (h,) = ax.plot(x, np.full(len(x), 100 * (block["fnmr"] or 0)), color="grey", ls="--", lw=1.2)
        handles["random discarding"] = h
        for name, m in block["measures"].items():
            colour, ls = styles[name]
            label = f"{LABELS[name]}"
            (h,) = ax.plot(x, 100 * np.array(m["fnmr"]), color=colour, ls=ls, lw=1.8)
            handles[label] = h
        ax.set_title(f"{title}: {block['comparisons']} genuine, FNMR {pct(block['fnmr'])}", fontsize=10)
        ax.set_xlim(0, 50)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.set_xlabel("genuine comparisons discarded, lowest quality first (%)", fontsize=8)
        ax.set_ylabel("FNMR of the rest at FMR 0.001 (%)", fontsize=8)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    last = list(axes.flat)[-1]
    if len(panels) < 6:
        last.legend(list(handles.values()), list(handles.keys()), loc="center", fontsize=9, frameon=False)
    fig.suptitle(
        f"Error-versus-reject curves (ISO/IEC 29794-1), model {model}\nLondon sample photos degraded (derived), "
        "report half of the identities; reference: clean neutral photo",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def print_areas(title: str, block: dict[str, Any]) -> None:
    print(
        f"\n{title}: {block['comparisons']} genuine comparisons with a face, {block['errors']} false non-matches "
        f"(FNMR {pct(block['fnmr'])}); random discarding's area vs ideal {block['random_area']:.4f}\n"
    )
    print("| measure | area vs ideal | relative to random | FNMR, 10% discarded | FNMR, 20% discarded |")
    print("|---|---:|---:|---:|---:|")
    for name, m in block["measures"].items():
        cells = [LABELS[name], f"{m['area_vs_ideal']:.4f}", f"{m['relative_to_random']}"]
        for key in ("10%", "20%"):
            r = m["at"][key]
            cells.append(f"{pct(r['fnmr'])} ({r['errors']:g} of {r['comparisons']:g})")
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    default_faces = os.environ.get("NOMINA_TEST_FACES") or str(REPO.parent / "shared" / "faces")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=Path, default=Path(default_faces), help="sample photo folder")
    ap.add_argument("--variants", help="comma-separated variant names (default: every variant of every group)")
    ap.add_argument("--people", type=int, help="only the first N identities (trial runs)")
    ap.add_argument("--model", default="sface", help="the face model (default sface)")
    ap.add_argument("--figure", type=Path, default=REPO / "docs" / "img" / "quality-erc.png", help="PNG to write")
    ap.add_argument("--out", type=Path, help="also write every number (and every photo's measures) as JSON")
    ap.add_argument(
        "--compare", help="comma-separated --out files of runs of different models: draw their report halves and stop"
    )
    args = ap.parse_args()
    if args.compare:
        runs = [json.loads(Path(f).read_text()) for f in args.compare.split(",")]
        names = [r["run"]["model"]["name"] for r in runs]
        plot([(n, r["groups"]["report half"]) for n, r in zip(names, runs, strict=True)], args.figure, ", ".join(names))
        print(f"figure {args.figure}")
        return

    london = args.faces / "london"
    if not london.is_dir():
        sys.exit(f"{london}: sample photos not found; use --faces")
    people = sorted(d.name for d in london.iterdir() if d.is_dir())[: args.people]
    variants = {name: (group, fn) for group, vs in GROUPS.items() for name, fn in vs.items()}
    if args.variants:
        wanted = [v.strip() for v in args.variants.split(",") if v.strip() and v.strip() != "clean"]
        unknown = [v for v in wanted if v not in variants]
        if unknown:
            sys.exit(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(variants)}")
        variants = {v: variants[v] for v in wanted}
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="nomina-bench-erc-"))
    try:
        settings = nomina.load_settings(model=args.model, cache=tmp / "cache")
        model = nomina.load_model(settings.model, settings.model_dir)
        analyzer = nomina.FaceAnalyzer(model, settings)
        embedder = model.embedder
        probes = [(p, london / p / f"{p}_smiling.jpg") for p in people]
        marks = clean_landmarks(analyzer, probes, settings.max_pixels)
        photos = [Photo(p, "reference", "reference", london / p / f"{p}_neutral.jpg") for p in people]
        photos += [Photo(p, "clean", "clean", path) for p, path in probes]
        for name, (group, fn) in variants.items():
            photos += [Photo(p, name, group, path) for p, path in make_variant(fn, probes, marks, tmp / name)]
        for k, photo in enumerate(photos, 1):
            analyse(analyzer, embedder, photo, settings.max_pixels)
            if k % 200 == 0:
                print(f"  {k}/{len(photos)} photos analysed", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.perf_counter() - started
    report = analyse_and_report(people, photos, args.figure, args.model, embedder.norm_field)
    report["run"] = {
        "nomina_version": nomina.__version__,
        "model": model.identity,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.system()} {platform.machine()} ({os.cpu_count()} CPUs)",
        "seconds": round(seconds, 1),
        "photos": len(photos),
        "variants": list(variants),
        "discard_fractions": DISCARD.round(2).tolist(),
    }
    print(
        f"\nNomina {nomina.__version__}; model {args.model}; {report['run']['machine']}; {round(seconds)} s; "
        f"figure {args.figure}"
    )
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


def analyse_and_report(people: list[str], photos: list[Photo], figure: Path, model: str, field: str) -> dict[str, Any]:
    """Curves, areas and bands of the analysed photos; ``field`` names the network's output length
    (``sface_norm`` or ``arcface_norm``), whose response bounds are fitted when ``model`` is the one they
    are fitted with."""
    refs = {p.person: p for p in photos if p.group == "reference"}
    missing = sorted(p for p, r in refs.items() if not r.found)
    if missing:
        print(f"references without a face (their comparisons are left out): {', '.join(missing)}")
    probes = [p for p in photos if p.group != "reference" and refs[p.person].found]
    ref_people = [p for p in people if refs[p].found]
    ref_index = {p: k for k, p in enumerate(ref_people)}
    ref_matrix = np.stack([refs[p].embedding for p in ref_people])
    dim = ref_matrix.shape[1]
    probe_matrix = np.stack([p.embedding if p.found else np.zeros(dim) for p in probes])
    found = np.array([p.found for p in probes])
    scores = ref_matrix @ probe_matrix.T  # reference x probe
    scores[:, ~found] = WORST
    own = np.array([ref_index[p.person] for p in probes])
    genuine = scores[own, np.arange(len(probes))]
    impostor_mask = np.ones_like(scores, dtype=bool)
    impostor_mask[own, np.arange(len(probes))] = False
    impostor = scores[impostor_mask]
    point = metrics.tar_at_far(genuine, impostor, FMR_TARGET)
    if point.threshold is None:
        sys.exit(f"no threshold at FMR {FMR_TARGET}: {point.note}")
    threshold = point.threshold
    errors = genuine < threshold
    group = np.array([p.group for p in probes])
    variant = np.array([p.variant for p in probes])
    person = np.array([p.person for p in probes])
    values = {m: np.array([getattr(p, m) for p in probes]) for m in MEASURES}
    # impostor comparisons: the probe's quality band, and whether it is a false match (probes with a face)
    imp_probe = np.broadcast_to(np.arange(len(probes)), scores.shape)[impostor_mask]
    imp_false = impostor >= threshold

    print(
        f"{len(ref_people)} references, {len(probes)} probe photos ({int((~found).sum())} without a face); "
        f"{len(genuine)} genuine and {len(impostor)} impostor comparisons; threshold {threshold:.4f} "
        f"(FMR {pct(point.achieved, 3)}, {int(imp_false.sum())} false matches); "
        f"FNMR {pct(errors.mean())} ({int(errors.sum())} errors, {int((~found).sum())} of them probes without a face)"
    )

    # the split: the response factor's bounds are fitted on one half, everything is reported on the other
    fit_people, report_people = halves(ref_people)
    fit_sel = np.isin(person, fit_people) & found
    report = np.isin(person, report_people)
    library = RESPONSE_BOUNDS[field]
    if model == FIT_MODELS[field]:
        low, high, fit_area = fit_response(
            values["base"][fit_sel], values["norm"][fit_sel], errors[fit_sel], GRIDS[field]
        )
        same = (low, high) == library
        print(
            f"\nresponse factor ({field}) fitted on the fit half ({len(fit_people)} identities): bounds {low:g}, "
            f"{high:g} (area vs ideal {fit_area:.4f}); the library's: {library[0]:g}, {library[1]:g}"
            + ("" if same else "  ** DIFFERENT: the library's bounds are not the ones this data gives **")
        )
    else:  # the bounds belong to the network's output and were fitted with one model's errors
        low, high, fit_area = math.nan, math.nan, math.nan
        print(f"\nresponse factor ({field}): fitted with {FIT_MODELS[field]} only; this run reports on the same half")

    groups = {"report half": report}
    groups |= {g: report & (group == g) for g in ("issue", "harder", "postmortem") if (report & (group == g)).any()}
    result: dict[str, Any] = {
        "threshold": round(threshold, 6),
        "fmr_target": FMR_TARGET,
        "fmr_achieved": point.achieved,
        "genuine_comparisons": len(genuine),
        "impostor_comparisons": len(impostor),
        "probes_without_face": int((~found).sum()),
        "errors_including_failures": int(errors.sum()),
        "references_without_face": missing,
        "split": {
            "seed": SPLIT_SEED,
            "fit_identities": fit_people,
            "report_identities": report_people,
            "response_bounds_fitted": None if math.isnan(low) else [low, high],
            "fit_area_vs_ideal": None if math.isnan(fit_area) else round(fit_area, 6),
            "response_field": field,
            "response_bounds_library": list(library),
        },
        "groups": {},
    }
    panels = []
    for name, sel in groups.items():
        ok = sel & found
        block = curves_block({m: values[m][ok] for m in MEASURES}, errors[ok])
        block["probes_without_face"] = int((sel & ~found).sum())
        block["fnmr_including_failures"] = rate(errors[sel].sum(), sel.sum())
        imp_ok = ok[imp_probe]
        block["bands"] = bands_block(
            values["nomina"][ok], errors[ok], values["nomina"][imp_probe][imp_ok], imp_false[imp_ok]
        )
        block["bands_without_response"] = bands_block(
            values["base"][ok], errors[ok], values["base"][imp_probe][imp_ok], imp_false[imp_ok]
        )
        result["groups"][name] = block
        panels.append((name, block))
        print_areas(name, block)
        if block["probes_without_face"]:
            f = block["fnmr_including_failures"]
            print(
                f"\n({block['probes_without_face']} probes without a face left out; with them counted as errors "
                f"FNMR {pct(f['fnmr'])}, {f['errors']:g} of {f['comparisons']:g})"
            )

    names = list(groups)
    for key, title in (("bands", "Nomina's quality score"), ("bands_without_response", "the score without response")):
        print(f"\nFNMR by band of {title} (the probe's; report half, genuine comparisons with a face):\n")
        print("| band | " + " | ".join(names) + " | impostor (report half) | FMR |")
        print("|---|" + "---:|" * (len(names) + 2))
        for k, (lo, hi) in enumerate(BANDS):
            cells = [f"{lo}-{hi}"]
            for g in names:
                b = result["groups"][g][key][k]
                cells.append("–" if not b["genuine"] else f"{pct(b['fnmr'])} ({b['errors']} of {b['genuine']})")
            b = result["groups"]["report half"][key][k]
            cells += [str(b["impostor"]), pct(b["fmr"], 3)]
            print("| " + " | ".join(cells) + " |")

    # per variant (report half): errors and the median of each measure
    print(
        "\n| variant | group | probes | no face | FNMR (errors) | " + " | ".join(f"median {m}" for m in MEASURES) + " |"
    )
    print("|---|---|---:|---:|---:|" + "---:|" * len(MEASURES))
    per_variant = {}
    for v in dict.fromkeys(variant):
        sel = (variant == v) & report
        ok = sel & found
        med = {m: float(np.median(values[m][ok])) if ok.any() else None for m in MEASURES}
        per_variant[v] = {
            "group": str(group[sel][0]),
            "probes": int(sel.sum()),
            "without_face": int((sel & ~found).sum()),
            **rate(errors[sel].sum(), sel.sum()),
            "median": med,
        }
        print(
            f"| {v} | {group[sel][0]} | {int(sel.sum())} | {int((sel & ~found).sum())} | "
            f"{pct(errors[sel].mean())} ({int(errors[sel].sum())}) | "
            + " | ".join("–" if med[m] is None else f"{med[m]:.{3 if m == 'mirror' else 1}f}" for m in MEASURES)
            + " |"
        )
    result["variants"] = per_variant
    plot(panels, figure, model)

    result["photos"] = [
        {
            "person": p.person,
            "variant": p.variant,
            "group": p.group,
            "half": "fit" if p.person in fit_people else "report",
            "face": p.found,
            "nomina": p.nomina if p.found else None,
            "base": p.base if p.found else None,
            "norm": round(p.norm, 4) if p.found else None,
            "mirror": round(p.mirror, 5) if p.found else None,
        }
        for p in photos
    ]
    for row, g in zip(
        [r for r in result["photos"] if r["group"] != "reference" and refs[r["person"]].found], genuine, strict=True
    ):
        row["genuine_score"] = round(float(g), 5)
        row["error"] = bool(g < threshold)
    return result


if __name__ == "__main__":
    main()
