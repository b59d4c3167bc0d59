"""How should a reference with several photos be scored? Five rules compared on derived sample photos.

Today a reference's score against a case face is its best face's cosine (``max``, see
``src/nomina/index/exact.py``). This benchmark measures, for one model (default ``sface``), whether
another rule ranks better when families and records give 2-5 photos of different quality:

* ``max``: the best face's cosine (Nomina today);
* ``top2``: the mean of the two best faces' cosines (equals ``max`` for a one-photo reference);
* ``mean``: the mean of all the reference's faces' cosines;
* ``fused``: one template per reference, the L2-normalised mean of its normalised embeddings;
* ``fused_q``: the same, each embedding weighted by its face's quality score (0-100, ``nomina.quality``),
  weights fixed before any run (proportional to the score; equal weights if every score is 0).

No rule has a parameter fitted to these photos, so no identity split is needed for fitting; the
identities are split in halves only to make non-mated searches (below).

Derived photos (all from ``../shared/faces``; nothing is written into the repository)
-----------------------------------------------------------------------------------------
* References: each London identity (102) gets a multi-photo reference made from its *neutral* photo:
  the clean photo and/or copies degraded by variants of ``degrade.GROUPS`` ("issue" and "harder", 15
  variants, described in ``bench/accuracy.py``). For each draw and identity a seeded permutation of the
  15 variants is taken, and a reference of n photos holds either the clean photo and the first n - 1
  degraded copies ("clean + n-1") or the first n degraded copies ("n degraded", no clean photo: old,
  poor family photos); n = 2, 3, 5. So the references of one identity are nested across settings. One-photo
  settings (the clean photo alone; the first degraded copy alone) are the baselines, where every rule
  gives the same score. The 40 Canada photos are one-photo distractor references: 142 references.
* Probes (cases): each identity's *smiling* photo, clean, degraded by every variant of
  ``postmortem.POSTMORTEM_VARIANTS`` (9) and by five ``degrade`` variants (blur, lowres, combined,
  tiny20, mask): 15 probe variants x 102 = 1,530 searches. Noise and random choices come from the
  seeded generators of ``degrade.make_variant``.

Limit: every photo of a reference is a copy of ONE studio photo, degraded. Real family photos differ in
age, pose, expression and lighting, which is where several photos (and ``max``) help most; that
diversity is not measured here, only the effect of mixing photos of different technical quality.

Embeddings come from Nomina's public ``FaceAnalyzer`` exactly as enrolment takes them (``choose`` with
the orientation search of a reference photo for references and of a case photo for probes; a photo with
no face contributes no face; a photo failing the workspace's standard quality gate is kept, as if the
user overrode the gate, and counted). Each photo is analysed once per run (cached in memory).

Metrics, per rule and setting
-----------------------------
* Closed set, gallery of 142 references: rank-1 and rank-5 errors over the 1,530 probes (a probe
  without a face, or whose reference has no face, is an error), ties counted against the mate as
  ``nomina.evaluation.metrics.ranks`` does; the mean rank of the true reference over the probes that
  have a face and whose reference has one; the probes that ``max`` gets wrong at rank 1 and the rule
  gets right ("fixed") and the reverse ("broken"), with a two-sided sign-test p-value.
* Open set: the identities are split in two seeded halves; each half's references plus the 40
  distractors form a gallery, searched by that half's probes (mated) and the other half's probes
  (non-mated), both ways round: 1,530 mated and 1,530 non-mated searches, pooled over probe variants.
  FNIR at FPIR 0.01 (``metrics.fnir_at_fpir``, candidate list 50): the threshold allows
  floor(0.01 x 1,530) = 15 false positives.
* Every draw of reference photos (``--draws``, default 5) is scored; the main tables show draw 1 and a
  last table the rank-1 errors of every draw.

Run
---
From the repository root::

    nice -n 19 .venv/bin/python bench/multi_photo.py [--faces DIR] [--model sface] [--people 20]
        [--draws 5] [--out FILE.json]

About 6 minutes for the full set on 2 shared cores (350 s on 2026-12-01, niced, other jobs running):
3,202 photos analysed in 228 s (the probes with the orientation search), the rest making the derived
photos, finding the clean photos' landmarks and scoring five draws. Markdown tables go to standard
output; ``--out`` also writes every figure as JSON.
"""

from __future__ import annotations

import argparse
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

import degrade
import numpy as np
from degrade import clean_landmarks, make_variant
from postmortem import POSTMORTEM_VARIANTS

import nomina
from nomina.errors import NominaError, SeveralFaces
from nomina.evaluation import metrics
from nomina.faces import FaceAnalyzer
from nomina.imaging import decode_image, read_photo
from nomina.parallel import AnalyzerPool, ordered_map
from nomina.quality import assess, gate
from nomina.records import PhotoInput

REPO = Path(__file__).resolve().parents[1]
RULES = ("max", "top2", "mean", "fused", "fused_q")
SIZES = (2, 3, 5)
PROBE_DEGRADE = ("blur", "lowres", "combined", "tiny20", "mask")
REFERENCE_VARIANTS = {name: fn for group in degrade.GROUPS.values() for name, fn in group.items()}
PROBE_VARIANTS = {**POSTMORTEM_VARIANTS, **{name: REFERENCE_VARIANTS[name] for name in PROBE_DEGRADE}}
PROBE_NAMES = ["clean", *PROBE_VARIANTS]  # the order of the probes' rows
SPLIT_SEED = 7_310  # the open-set halves
DRAW_SEED = 52_117  # which degraded copies each reference gets
WORST = -1.0  # every score of a search without a face, and of a reference without a face
FPIR = 0.01
CANDIDATES = 50
GATE = "standard"  # the default workspace quality gate


@dataclass(frozen=True)
class Analysed:
    """What one photo contributes: its face's embedding and quality score, or no face."""

    vector: np.ndarray | None
    quality: float | None = None
    gate_failed: bool = False
    several: int = 0  # faces found when more than one (the central one was taken)
    error: str | None = None


@dataclass(frozen=True)
class Setting:
    """How many photos each London reference holds, and whether its clean photo is among them."""

    photos: int
    clean: bool

    @property
    def name(self) -> str:
        if self.photos == 1:
            return "1: clean" if self.clean else "1: degraded"
        return f"{self.photos}: clean + {self.photos - 1}" if self.clean else f"{self.photos}: degraded"


SETTINGS = [
    Setting(1, True),
    *(Setting(n, True) for n in SIZES),
    Setting(1, False),
    *(Setting(n, False) for n in SIZES),
]


# -- analysis ---------------------------------------------------------------------------------------------
def analyse(analyzer: FaceAnalyzer, path: Path, reference: bool) -> Analysed:
    """The face a photo contributes, as enrolment takes it (``FaceAnalyzer.choose``)."""
    name = str(path)
    try:
        image = decode_image(read_photo(path), name, analyzer.settings.max_pixels)
    except NominaError as exc:
        return Analysed(None, error=str(exc))
    turns = analyzer.turns(reference_photo=reference)
    several = 0
    try:
        face = analyzer.choose(image, PhotoInput(path), name, require_face=False, any_orientation=turns)
    except SeveralFaces:  # the user would pick the person meant: here the face nearest the centre
        face, several = analyzer.central_face(image, any_orientation=turns)
    if face is None:
        return Analysed(None)
    failed = reference and bool(gate(face.quality, GATE))
    vector = np.asarray(face.embedding, dtype=np.float32)
    return Analysed(vector / np.linalg.norm(vector), assess(face.quality).score, failed, several)


def analyse_all(pool: AnalyzerPool, items: list[tuple[Path, bool]], workers: int) -> list[Analysed]:
    out = []
    for item, result in zip(items, ordered_map(lambda it: analyse(pool.get(), *it), items, workers), strict=True):
        out.append(result if isinstance(result, Analysed) else Analysed(None, error=f"{item[0]}: {result}"))
    return out


# -- references and rules ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reference:
    vectors: np.ndarray  # faces x dim, L2-normalised
    weights: np.ndarray  # quality scores / 100


def make_reference(photos: list[Analysed], dim: int) -> Reference:
    found = [a for a in photos if a.vector is not None]
    vectors = np.array([a.vector for a in found], dtype=np.float32).reshape(len(found), dim)
    weights = np.array([(a.quality or 0.0) / 100.0 for a in found], dtype=np.float64)
    return Reference(vectors, weights)


def template(ref: Reference, weighted: bool) -> np.ndarray:
    w = ref.weights if weighted and ref.weights.sum() > 0 else np.ones(len(ref.vectors))
    t = (w[:, None] * ref.vectors.astype(np.float64)).sum(axis=0)
    return t / np.linalg.norm(t)


def score_matrix(probes: np.ndarray, ok: np.ndarray, refs: list[Reference], rule: str) -> np.ndarray:
    """Probes x references scores under ``rule``; WORST for a probe or reference without a face."""
    s = np.full((len(probes), len(refs)), WORST, dtype=np.float64)
    p = probes.astype(np.float64)
    for j, ref in enumerate(refs):
        if len(ref.vectors) == 0:
            continue
        if rule in ("fused", "fused_q"):
            s[:, j] = p @ template(ref, rule == "fused_q")
            continue
        faces = -np.sort(-(p @ ref.vectors.T.astype(np.float64)), axis=1)  # best first
        s[:, j] = {"max": faces[:, 0], "top2": faces[:, :2].mean(axis=1), "mean": faces.mean(axis=1)}[rule]
    s[~ok] = WORST
    return s


def sign_test(fixed: int, broken: int) -> float:
    """Two-sided exact sign test of ``fixed`` against ``broken`` discordant probes."""
    n = fixed + broken
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(fixed, broken) + 1)) / 2**n
    return min(1.0, 2 * tail)


# -- one draw ---------------------------------------------------------------------------------------------
@dataclass
class Data:
    people: list[str]
    reference_photos: dict[tuple[str, str], Analysed]  # (person, "clean" or variant)
    distractors: list[Analysed]
    probes: np.ndarray  # probe variants x people x dim
    probe_ok: np.ndarray  # probe variants x people
    dim: int


def references(data: Data, setting: Setting, draw: int) -> tuple[list[Reference], list[list[str]]]:
    """The London references of one setting and draw (in ``data.people`` order), and their photos."""
    rng = np.random.default_rng([DRAW_SEED, draw])
    names = sorted(REFERENCE_VARIANTS)
    refs, chosen = [], []
    for person in data.people:
        order = [names[i] for i in rng.permutation(len(names))]
        photos = ["clean", *order[: setting.photos - 1]] if setting.clean else order[: setting.photos]
        refs.append(make_reference([data.reference_photos[person, v] for v in photos], data.dim))
        chosen.append(photos)
    return refs, chosen


def evaluate(data: Data, setting: Setting, draw: int) -> dict[str, Any]:
    london, chosen = references(data, setting, draw)
    gallery = london + [make_reference([a], data.dim) for a in data.distractors]
    n_var, n_people = data.probe_ok.shape
    probes = data.probes.reshape(n_var * n_people, data.dim)
    ok = data.probe_ok.reshape(-1)
    mates = np.tile(np.arange(n_people), n_var)
    searchable = ok & np.array([len(r.vectors) > 0 for r in london])[mates]
    half = np.zeros(n_people, dtype=bool)
    half[np.random.default_rng(SPLIT_SEED).permutation(n_people)[: n_people // 2]] = True
    out: dict[str, Any] = {
        "references_without_face": int(sum(len(r.vectors) == 0 for r in london)),
        "reference_faces": int(sum(len(r.vectors) for r in london)),
        "gate_failures": int(
            sum(data.reference_photos[p, v].gate_failed for p, vs in zip(data.people, chosen, strict=True) for v in vs)
        ),
        "rules": {},
    }
    correct: dict[str, np.ndarray] = {}
    for rule in RULES:
        s = score_matrix(probes, ok, gallery, rule)
        rank = metrics.ranks(s, mates)
        correct[rule] = rank == 1
        r: dict[str, Any] = {
            "rank1_errors": int(np.count_nonzero(rank > 1)),
            "rank5_errors": int(np.count_nonzero(rank > 5)),
            "searches": len(rank),
            "mean_rank": float(rank[searchable].mean()) if searchable.any() else None,
            "mean_rank_searches": int(searchable.sum()),
            "rank1_errors_by_probe": {
                v: int(np.count_nonzero(rank.reshape(n_var, n_people)[k] > 1)) for k, v in enumerate(PROBE_NAMES)
            },
        }
        r["open_set"] = open_set(data, london, rule, half)
        out["rules"][rule] = r
    for rule in RULES[1:]:
        fixed = int(np.count_nonzero(correct[rule] & ~correct["max"]))
        broken = int(np.count_nonzero(~correct[rule] & correct["max"]))
        out["rules"][rule]["vs_max"] = {"fixed": fixed, "broken": broken, "sign_test_p": sign_test(fixed, broken)}
    return out


def open_set(data: Data, london: list[Reference], rule: str, half: np.ndarray) -> dict[str, Any]:
    """FNIR at FPIR 0.01: each half's gallery (plus distractors) searched by both halves' probes."""
    distractors = [make_reference([a], data.dim) for a in data.distractors]
    mate_scores, mate_ranks, nonmated_top = [], [], []
    for side in (half, ~half):
        members = np.flatnonzero(side)
        gallery = [london[i] for i in members] + distractors
        column = {int(i): c for c, i in enumerate(members)}
        for mated in (True, False):
            people = members if mated else np.flatnonzero(~side)
            probes = data.probes[:, people].reshape(-1, data.dim)
            ok = data.probe_ok[:, people].reshape(-1)
            s = score_matrix(probes, ok, gallery, rule)
            if mated:
                cols = np.tile([column[int(i)] for i in people], data.probes.shape[0])
                mate_scores.append(s[np.arange(len(cols)), cols])
                mate_ranks.append(metrics.ranks(s, cols))
            else:
                nonmated_top.append(s.max(axis=1))
    point = metrics.fnir_at_fpir(
        np.concatenate(mate_scores), np.concatenate(mate_ranks), np.concatenate(nonmated_top), FPIR, CANDIDATES
    )
    mated_n = int(sum(len(m) for m in mate_scores))
    return {
        "fnir": point.value,
        "misses": None if point.value is None else round(point.value * mated_n),
        "mated_searches": mated_n,
        "nonmated_searches": int(sum(len(t) for t in nonmated_top)),
        "false_positives_allowed": point.errors_allowed,
        "threshold": point.threshold,
        "achieved_fpir": point.achieved,
        "note": point.note,
    }


# -- photos -----------------------------------------------------------------------------------------------
def load_data(args: argparse.Namespace, tmp: Path) -> tuple[Data, dict[str, Any]]:
    london, canada = args.faces / "london", args.faces / "canada"
    people = sorted(d.name for d in london.iterdir() if d.is_dir())[: args.people]
    settings = nomina.load_settings(model=args.model, cache=tmp / "cache")
    model = nomina.load_model(settings.model, settings.model_dir)
    pool = AnalyzerPool(model, settings)
    neutral = [(p, london / p / f"{p}_neutral.jpg") for p in people]
    smiling = [(p, london / p / f"{p}_smiling.jpg") for p in people]
    marks_n = clean_landmarks(pool.get(), neutral, settings.max_pixels)
    marks_s = clean_landmarks(pool.get(), smiling, settings.max_pixels)

    (tmp / "references").mkdir()
    (tmp / "probes").mkdir()
    ref_items: list[tuple[tuple[str, str], Path]] = [((p, "clean"), path) for p, path in neutral]
    for name, fn in REFERENCE_VARIANTS.items():
        made = make_variant(fn, neutral, marks_n, tmp / "references" / name)
        ref_items += [((p, name), path) for p, path in made]
    probe_paths: dict[str, list[Path]] = {"clean": [path for _, path in smiling]}
    for name, fn in PROBE_VARIANTS.items():
        probe_paths[name] = [path for _, path in make_variant(fn, smiling, marks_s, tmp / "probes" / name)]
    distractor_paths = sorted(canada.glob("*/*.jpg"))

    items = [(path, True) for _, path in ref_items] + [(path, True) for path in distractor_paths]
    items += [(path, False) for paths in probe_paths.values() for path in paths]
    started = time.perf_counter()
    analysed = analyse_all(pool, items, settings.workers)
    seconds = time.perf_counter() - started
    reference_photos = {key: a for (key, _), a in zip(ref_items, analysed[: len(ref_items)], strict=True)}
    distractors = analysed[len(ref_items) : len(ref_items) + len(distractor_paths)]
    probe_part = analysed[len(ref_items) + len(distractor_paths) :]
    dim = model.manifest.embedding_dim
    n_var = len(probe_paths)
    probes = np.zeros((n_var, len(people), dim), dtype=np.float32)
    probe_ok = np.zeros((n_var, len(people)), dtype=bool)
    for k, a in enumerate(probe_part):
        if a.vector is not None:
            probes[k // len(people), k % len(people)] = a.vector
            probe_ok[k // len(people), k % len(people)] = True
    data = Data(people, reference_photos, distractors, probes, probe_ok, dim)
    photo_stats = {
        "photos_analysed": len(items),
        "analysis_seconds": round(seconds, 1),
        "workers": settings.workers,
        "reference_photos_by_variant": {
            v: {
                "no_face": sum(reference_photos[p, v].vector is None for p in people),
                "gate_failures": sum(reference_photos[p, v].gate_failed for p in people),
                "mean_quality": _mean_quality([reference_photos[p, v] for p in people]),
            }
            for v in ["clean", *REFERENCE_VARIANTS]
        },
        "distractors_without_face": sum(a.vector is None for a in distractors),
        "probes_without_face": {v: int(len(people) - probe_ok[k].sum()) for k, v in enumerate(probe_paths)},
        "several_faces": sum(a.several > 1 for a in analysed),
        "errors": [a.error for a in analysed if a.error],
    }
    return data, photo_stats


def _mean_quality(photos: list[Analysed]) -> float | None:
    q = [a.quality for a in photos if a.quality is not None]
    return round(float(np.mean(q)), 1) if q else None


# -- tables -----------------------------------------------------------------------------------------------
def pct(errors: int, n: int) -> str:
    return f"{100 * (1 - errors / n):.1f}%" if n else "–"


def main_table(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| reference photos | rule | rank-1 (errors) | rank-5 (errors) | mean rank | rank-1 vs max: fixed / broken (p) "
        "| FNIR @ FPIR 0.01 (misses) | threshold |",
        "|---|---|---:|---:|---:|---|---:|---:|",
    ]
    for name, res in results.items():
        rules = RULES[:1] if name.startswith("1:") else RULES
        for rule in rules:
            r = res["rules"][rule]
            n = r["searches"]
            vs = r.get("vs_max")
            o = r["open_set"]
            cells = [
                name,
                "all (one photo)" if len(rules) == 1 else rule,
                f"{pct(r['rank1_errors'], n)} ({r['rank1_errors']})",
                f"{pct(r['rank5_errors'], n)} ({r['rank5_errors']})",
                "–" if r["mean_rank"] is None else f"{r['mean_rank']:.2f}",
                "–" if vs is None else f"{vs['fixed']} / {vs['broken']} ({vs['sign_test_p']:.2g})",
                "–" if o["fnir"] is None else f"{100 * o['fnir']:.1f}% ({o['misses']})",
                "–" if o["threshold"] is None else f"{o['threshold']:.3f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def variant_table(results: dict[str, dict[str, Any]], probe_names: list[str]) -> list[str]:
    multi = [name for name in results if not name.startswith("1:")]
    single = [name for name in results if name.startswith("1:")]
    lines = [
        "| probe | " + " | ".join(single) + " | " + " | ".join(multi) + " |",
        "|---|" + "---:|" * (len(single) + len(multi)),
    ]
    for v in probe_names:
        cells = [v]
        cells += [str(results[s]["rules"]["max"]["rank1_errors_by_probe"][v]) for s in single]
        cells += ["/".join(str(results[m]["rules"][r]["rank1_errors_by_probe"][v]) for r in RULES) for m in multi]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def draws_table(all_draws: list[dict[str, dict[str, Any]]], figure: str) -> list[str]:
    """One figure (``rank1`` errors or open-set ``fnir`` misses) of every draw: total (draw 1, 2, ...)."""
    lines = [
        "| reference photos | " + " | ".join(RULES) + " |",
        "|---|" + "---:|" * len(RULES),
    ]
    for name in all_draws[0]:
        if name == "1: clean":  # the same photo in every draw
            continue
        cells = [name]
        for rule in RULES:
            r = [d[name]["rules"][rule] for d in all_draws]
            errs = [x["rank1_errors"] if figure == "rank1" else x["open_set"]["misses"] for x in r]
            if None in errs:
                cells.append("–")
                continue
            cells.append(f"{sum(errs)} ({', '.join(map(str, errs))})")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    default_faces = os.environ.get("NOMINA_TEST_FACES") or str(REPO.parent / "shared" / "faces")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=Path, default=Path(default_faces), help="sample photo folder")
    ap.add_argument("--model", default="sface", help="model name")
    ap.add_argument("--people", type=int, help="only the first N London identities (for a quick trial)")
    ap.add_argument("--draws", type=int, default=5, help="draws of the degraded reference photos (default 5)")
    ap.add_argument("--out", type=Path, help="also write every figure as JSON to this file")
    args = ap.parse_args()
    if not (args.faces / "london").is_dir() or not (args.faces / "canada").is_dir():
        sys.exit(f"{args.faces}: sample photos (london/, canada/) not found; use --faces")
    if args.people is not None and args.people < 4:
        sys.exit("--people: at least 4")
    if args.draws < 1:
        sys.exit("--draws: at least 1")

    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="nomina-bench-multiphoto-"))
    try:
        data, photo_stats = load_data(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    all_draws = [{s.name: evaluate(data, s, draw) for s in SETTINGS} for draw in range(args.draws)]
    seconds = time.perf_counter() - started

    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nomina_version": nomina.__version__,
        "model": args.model,
        "machine": f"{platform.system()} {platform.machine()}",
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "seconds": round(seconds, 1),
        "people": len(data.people),
        "distractors": len(data.distractors),
        "probe_variants": PROBE_NAMES,
        "reference_variants": sorted(REFERENCE_VARIANTS),
        "draws": args.draws,
        "seeds": {"draw": DRAW_SEED, "split": SPLIT_SEED, "degrade": degrade.SEED},
    }
    n_probes = len(data.people) * data.probes.shape[0]
    print(
        f"Nomina {meta['nomina_version']}; {meta['date']}; model {args.model}; {meta['machine']} ({meta['cpus']} CPUs)"
    )
    print(
        f"{len(data.people)} London identities + {len(data.distractors)} distractors; {photo_stats['photos_analysed']} "
        f"photos analysed in {photo_stats['analysis_seconds']:.0f} s; total {seconds:.0f} s. All photos derived "
        "(degraded copies of studio portraits).\n"
    )
    print(f"Draw 1. Closed set: {n_probes} searches of {len(data.people) + len(data.distractors)} references.")
    print(
        f"Open set: {all_draws[0]['1: clean']['rules']['max']['open_set']['mated_searches']} mated and "
        f"{all_draws[0]['1: clean']['rules']['max']['open_set']['nonmated_searches']} non-mated searches "
        "(two halves, each against the other's gallery).\n"
    )
    print("No rule has a parameter fitted to these photos (quality weights are the quality score, fixed a priori).\n")
    print("\n".join(main_table(all_draws[0])))
    print(f"\nRank-1 errors by probe variant (draw 1; of {len(data.people)} each); cells: {'/'.join(RULES)}\n")
    print("\n".join(variant_table(all_draws[0], meta["probe_variants"])))
    print(f"\nRank-1 errors over all {n_probes} probes, every draw: total (draw 1, 2, ...)\n")
    print("\n".join(draws_table(all_draws, "rank1")))
    print(f"\nFNIR @ FPIR 0.01 misses over all {n_probes} mated searches, every draw: total (draw 1, 2, ...)\n")
    print("\n".join(draws_table(all_draws, "fnir")))
    print("\nReference photos (neutral, degraded): no face / standard-gate failures / mean quality score\n")
    print("| variant | no face | gate failures | mean quality |\n|---|---:|---:|---:|")
    for v, st in photo_stats["reference_photos_by_variant"].items():
        print(f"| {v} | {st['no_face']} | {st['gate_failures']} | {st['mean_quality']} |")
    print(f"\nProbes without a face: {photo_stats['probes_without_face']}")
    counts = {name: res["references_without_face"] for name, res in all_draws[0].items()}
    print(f"London references without any face (draw 1): {counts}")
    if photo_stats["several_faces"] or photo_stats["errors"]:
        print(f"Photos with several faces: {photo_stats['several_faces']}; errors: {photo_stats['errors']}")
    if args.out is not None:
        args.out.write_text(json.dumps({**meta, "photos": photo_stats, "draws": all_draws}, indent=2) + "\n")


if __name__ == "__main__":
    main()
