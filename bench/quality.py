"""Does the face quality score mean something? Error rates by quality band on degraded sample photos.

What it runs
------------
One dataset in the layout `nomina evaluate` reads: for each London identity, its clean neutral photo and
its smiling photo clean and degraded by every variant of ``bench/degrade.py`` and ``bench/postmortem.py``
(25 photos per person). The dataset is measured with ``nomina.evaluation.run_evaluation`` exactly as
`nomina evaluate` does; its ``quality`` block gives, per band of the lower quality score of a pair's two
photos, the false non-match rate (FNMR) and the false match rate at one threshold, the one holding FAR to
0.001 over all pairs.

If the score means something, FNMR falls as the band rises. The photos are derived (degraded copies of
clean studio portraits): the figures show the score's direction, not the error rates of real case photos.
The quality bounds were set from standards and the measures' physics before this was run (see
``src/nomina/quality.py``), not fitted to it, except the response factor's, which were fitted on half of
the identities (``bench/halves.py``); by default only the other half is measured (``--half all`` for
every identity).

Run
---
From the repository root::

    .venv/bin/python bench/quality.py [--faces DIR] [--model sface] [--half report|all] [--out FILE.json]
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

from degrade import clean_landmarks, make_variant
from halves import halves
from postmortem import GROUPS

import nomina
from nomina.evaluation.runner import EvaluateOptions, run_evaluation

REPO = Path(__file__).resolve().parents[1]


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def main() -> None:
    default_faces = os.environ.get("NOMINA_TEST_FACES") or str(REPO.parent / "shared" / "faces")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=Path, default=Path(default_faces), help="sample photo folder")
    ap.add_argument("--model", default="sface", help="model name")
    ap.add_argument("--half", choices=("report", "all"), default="report", help="identities measured")
    ap.add_argument("--out", type=Path, help="also write the metrics as JSON to this file")
    args = ap.parse_args()

    london = args.faces / "london"
    if not london.is_dir():
        sys.exit(f"{london}: sample photos not found; use --faces")
    people = sorted(d.name for d in london.iterdir() if d.is_dir())
    if args.half == "report":
        people = halves(people)[1]
    variants = {name: fn for group in GROUPS.values() for name, fn in group.items()}
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="nomina-bench-quality-"))
    try:
        settings = nomina.load_settings(model=args.model, cache=tmp / "cache")
        model = nomina.load_model(settings.model, settings.model_dir)
        probes = [(p, london / p / f"{p}_smiling.jpg") for p in people]
        marks = clean_landmarks(nomina.FaceAnalyzer(model, settings), probes, settings.max_pixels)
        data = tmp / "dataset"
        for p in people:
            (data / p).mkdir(parents=True)
            (data / p / "0_neutral.jpg").symlink_to((london / p / f"{p}_neutral.jpg").resolve())
            (data / p / "1_clean.jpg").symlink_to((london / p / f"{p}_smiling.jpg").resolve())
        (tmp / "photos").mkdir()
        for name, fn in variants.items():
            for p, path in make_variant(fn, probes, marks, tmp / "photos" / name):
                (data / p / f"2_{name}{path.suffix}").symlink_to(path.resolve())
        m = run_evaluation(EvaluateOptions(data), settings, model).metrics
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    q = m["verification"]["quality"]
    print(f"Nomina {nomina.__version__}; {datetime.now(UTC).isoformat(timespec='seconds')}; model {args.model}; ")
    print(f"{platform.system()} {platform.machine()} ({os.cpu_count()} CPUs); {round(time.perf_counter() - started)} s")
    print(
        f"{m['dataset']['photos']} photos of {m['dataset']['identities']} people (derived: {len(variants)} "
        f"degraded versions of each smiling photo); {m['detection']['failures']} without a face; "
        f"threshold {q['threshold']} (FAR 0.001)\n"
    )
    print("| quality band (lower of the pair) | genuine pairs | FNMR | FNMR 95% interval | impostor pairs | FMR |")
    print("|---|---:|---:|---|---:|---:|")
    for b in q["bands"]:
        ci = "–" if b["fnmr_ci95"] is None else f"{pct(b['fnmr_ci95'][0])} – {pct(b['fnmr_ci95'][1])}"
        cells = [b["band"], str(b["genuine_pairs"]), pct(b["fnmr"]), ci, str(b["impostor_pairs"]), pct(b["fmr"])]
        print("| " + " | ".join(cells) + " |")
    if args.out is not None:
        args.out.write_text(json.dumps(m, indent=2) + "\n")


if __name__ == "__main__":
    main()
