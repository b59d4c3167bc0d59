"""`nomina evaluate` on the London sample set, clean and with every degraded variant, for one or more models.

What it runs
------------
For each variant a dataset folder is made in a temporary folder, in the layout `nomina evaluate` reads
(one folder per identity): each London identity's neutral photo as it is (the first photo, so the
gallery photo of identification) and its smiling photo degraded by the variant (``clean``: as it is).
The variants are those of ``bench/degrade.py`` and ``bench/postmortem.py`` (described in
``bench/accuracy.py``). Each dataset is
evaluated with ``nomina.evaluation.run_evaluation`` exactly as the command does, with
``../shared/faces/labels.csv`` for the groups; impostor pairs: all of them (20,604).

Embeddings are cached in a temporary folder for the run, so each clean neutral photo is analysed once per
model; photos per second is reported from each model's clean run, where every photo is analysed.

Every figure except ``clean`` comes from derived (degraded) photos, and all of them from clean studio
portraits of 102 people: too few and too easy to say anything about real case photos.

Run
---
From the repository root::

    .venv/bin/python bench/evaluation.py [--faces DIR] [--models sface,arcface-mbf] [--variants clean,blur]
        [--out FILE.json]

Markdown tables go to standard output; ``--out`` also writes every variant's metrics as JSON.
``--tables FILE.json`` prints, from such a file, one table per figure (TAR at FAR 0.001, rank-1, FNIR at
FPIR 0.01: variants by models, each cell with the number of errors it rests on) and each model's speed,
as docs/benchmarks.md shows them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from degrade import clean_landmarks, make_variant
from postmortem import GROUPS

import nomina
from nomina.evaluation.runner import EvaluateOptions, run_evaluation

REPO = Path(__file__).resolve().parents[1]


def build_dataset(folder: Path, people: list[tuple[str, Path, Path]], degraded: dict[str, Path] | None) -> Path:
    """london-style dataset: ID/ID_neutral.jpg (clean) and ID/ID_smiling.* (degraded or clean)."""
    for ident, neutral, smiling in people:
        d = folder / ident
        d.mkdir(parents=True)
        (d / neutral.name).symlink_to(neutral.resolve())
        probe = degraded[ident] if degraded is not None else smiling
        (d / f"{ident}_smiling{probe.suffix}").symlink_to(probe.resolve())
    return folder


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def row(model: str, variant: str, m: dict[str, Any]) -> str:
    v, i, d = m["verification"], m["identification"], m["detection"]
    cells = [
        model,
        variant,
        str(d["failures"]),
        "–" if v["auc"] is None else f"{v['auc']:.4f}",
        pct(v["eer"]),
        pct(v["tar_at_far"]["0.01"]),
        pct(v["tar_at_far"]["0.001"]),
        pct(i["rank"]["1"]),
        pct(i["rank"]["5"]),
        pct(i["fnir_at_fpir"]["0.01"]),
    ]
    return "| " + " | ".join(cells) + " |"


def _pairs(m: dict[str, Any]) -> int:
    return int(m["verification"]["genuine_pairs"])


def _searches(m: dict[str, Any]) -> int:
    return int(m["identification"]["probes"])


# (title, the figure, how many pairs or searches it is of, whether higher is better)
FIGURES = (
    (
        "TAR at FAR 0.001 (genuine pairs not matched)",
        lambda m: m["verification"]["tar_at_far"]["0.001"],
        _pairs,
        True,
    ),
    (
        "rank-1 (searches whose first candidate is not the person)",
        lambda m: m["identification"]["rank"]["1"],
        _searches,
        True,
    ),
    (
        "FNIR at FPIR 0.01 (mated searches missed at the threshold that lets 1% of non-mated searches through)",
        lambda m: m["identification"]["fnir_at_fpir"]["0.01"],
        _searches,
        False,
    ),
)


def tables(path: Path) -> str:
    """The markdown tables of a saved run: one per figure, variants by models, errors in brackets; speed."""
    data = json.loads(path.read_text())
    models = list(dict.fromkeys(r["model"] for r in data["results"]))
    variants = list(dict.fromkeys(r["variant"] for r in data["results"]))
    by = {(r["model"], r["variant"]): r["metrics"] for r in data["results"]}
    out = [f"Run {data['date']}, Nomina {data['nomina_version']}, {data['machine']} ({data['cpus']} CPUs).\n"]
    for title, get, count, higher_better in FIGURES:
        out += [f"**{title}**\n", "| variant | " + " | ".join(f"`{m}`" for m in models) + " |"]
        out.append("|---|" + "---:|" * len(models))
        for v in variants:
            cells = []
            for m in models:
                metrics = by.get((m, v))
                value = None if metrics is None else get(metrics)
                if value is None:
                    cells.append("–")
                    continue
                n = count(metrics)
                errors = round((1 - value) * n) if higher_better else round(value * n)
                failures = metrics["detection"]["failures"]
                cells.append(f"{pct(value)} ({errors})" + (f" [{failures} no face]" if failures else ""))
            out.append(f"| {v} | " + " | ".join(cells) + " |")
        out.append("")
    base = by.get((models[0], "clean"), {}).get("timing", {}).get("photos_per_second")
    speeds = []
    for m in models:
        pps = by.get((m, "clean"), {}).get("timing", {}).get("photos_per_second")
        if pps is not None:
            ratio = f", {pps / base:.2f}x `{models[0]}`" if base else ""
            speeds.append(f"`{m}` {pps} photos/s{ratio}")
    out.append("Speed (clean run, every photo through the whole pipeline): " + "; ".join(speeds) + ".")
    return "\n".join(out)


def main() -> None:
    default_faces = os.environ.get("NOMINA_TEST_FACES") or str(REPO.parent / "shared" / "faces")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=Path, default=Path(default_faces), help="sample photo folder")
    ap.add_argument("--models", default="sface", help="comma-separated model names")
    ap.add_argument("--variants", help="comma-separated variants (default: clean and every variant)")
    ap.add_argument("--out", type=Path, help="also write every result as JSON to this file")
    ap.add_argument("--tables", type=Path, help="print the tables of a saved run (an --out file) and stop")
    args = ap.parse_args()
    if args.tables is not None:
        print(tables(args.tables))
        return

    london = args.faces / "london"
    if not london.is_dir():
        sys.exit(f"{london}: sample photos not found; use --faces")
    folders = sorted(d for d in london.iterdir() if d.is_dir())
    people = [(d.name, d / f"{d.name}_neutral.jpg", d / f"{d.name}_smiling.jpg") for d in folders]
    variants = {name: fn for group in GROUPS.values() for name, fn in group.items()}
    chosen = args.variants.split(",") if args.variants else ["clean", *variants]
    unknown = [v for v in chosen if v != "clean" and v not in variants]
    if unknown:
        sys.exit(f"unknown variant(s): {', '.join(unknown)}")

    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="nomina-bench-eval-"))
    results: list[dict[str, Any]] = []
    lines = [
        "| model | variant | detection failures | AUC | EER | TAR@FAR 0.01 | TAR@FAR 0.001 | rank-1 | rank-5 "
        "| FNIR@FPIR 0.01 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    try:
        for model_name in args.models.split(","):
            settings = nomina.load_settings(model=model_name, cache=tmp / "cache")
            model = nomina.load_model(settings.model, settings.model_dir)
            marks = clean_landmarks(
                nomina.FaceAnalyzer(model, settings), [(i, s) for i, _, s in people], settings.max_pixels
            )
            for variant in chosen:
                degraded = None
                if variant != "clean":
                    folder = tmp / model_name / "photos" / variant
                    folder.parent.mkdir(parents=True, exist_ok=True)
                    made = make_variant(variants[variant], [(i, s) for i, _, s in people], marks, folder)
                    degraded = dict(made)
                data = build_dataset(tmp / model_name / "datasets" / variant, people, degraded)
                options = EvaluateOptions(data, labels=args.faces / "labels.csv")
                m = run_evaluation(options, settings, model).metrics
                results.append({"model": model_name, "variant": variant, "metrics": m})
                lines.append(row(model_name, variant, m))
                print(lines[-1], file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nomina_version": nomina.__version__,
        "machine": f"{platform.system()} {platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "faces": str(args.faces.resolve()),
        "seconds": round(time.perf_counter() - started, 1),
    }
    speeds = [
        f"{r['model']}: {r['metrics']['timing']['photos_per_second']} photos/s"
        for r in results
        if r["variant"] == "clean"
    ]
    print(f"Nomina {meta['nomina_version']}; {meta['date']}; {meta['machine']} ({meta['cpus']} CPUs)")
    print("London set: 102 identities x 2 photos; the smiling photo degraded as named (derived photos).\n")
    print("\n".join(lines))
    print(f"\nClean runs, every photo analysed: {'; '.join(speeds)}. Total {meta['seconds']:.0f} s.")
    if args.out is not None:
        args.out.write_text(json.dumps({**meta, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
