"""Where an import's time goes besides analysis: the writer's CPU a photo, and a small import's latency.

1. Writer: the 244 photos of bench/enrolment.py are analysed first (one thread, not timed beyond its CPU
   a photo, the baseline), then written into a new workspace in batches of 32 rows exactly as
   ``Workspace.import_references`` writes them (``_import_batch``: photo files with fsync, database rows,
   audit events, lookalike-id and duplicate checks); its CPU a photo is reported against the analysis's.
2. Small imports: ``--small`` imports of 3 photos each into one open workspace, with the configured
   workers; the first builds the workers' networks, the next ones use those the first workers gave back.

Run from the repository root::

    python bench/import_parts.py [--repeat 3] [--small 8] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import nomina
from nomina import Workspace, load_model, load_settings
from nomina.demo import sample_sets, write_sample_manifest
from nomina.enrolment import prepare
from nomina.importing import ImportReport, read_manifest, row_inputs
from nomina.parallel import AnalyzerPool

HERE = Path(__file__).resolve().parent
BATCH = 32


def writer(photos: list[Path], model: nomina.FaceModel, repeat: int) -> dict:
    settings = load_settings()
    analyzer = AnalyzerPool(model, settings).get()
    with tempfile.TemporaryDirectory(prefix="nomina-writer-") as tmp:
        manifest = write_sample_manifest([(f"p{i:04d}", p) for i, p in enumerate(photos)], Path(tmp) / "photos.csv")
        rows = read_manifest(manifest)
        cpu = time.process_time()
        staged = []
        for line, row in rows:
            fields, prov, photo = row_inputs(row, manifest.parent)
            staged.append((line, row, fields, prov, prepare(analyzer, settings, photo, "off")))
        analysis = (time.process_time() - cpu) / len(rows) * 1e3
        runs = []
        for n in range(repeat):
            ws = Workspace.create(Path(tmp) / f"ws{n}", settings, model=model, admin="bench")
            report = ImportReport(rows=len(rows))
            cpu, start = time.process_time(), time.perf_counter()
            for i in range(0, len(staged), BATCH):
                ws._import_batch(staged[i : i + BATCH], report, None)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            ws.close()
            if report.added != len(rows):
                sys.exit(f"the writer added {report.added} of {len(rows)} rows: {report.failures[:1]}")
            runs.append({"cpu_ms": round(cpu / len(rows) * 1e3, 2), "wall_ms": round(wall / len(rows) * 1e3, 2)})
    best = min(r["cpu_ms"] for r in runs)
    return {
        "analysis_cpu_ms": round(analysis, 2),
        "runs": runs,
        "best_cpu_ms": best,
        "writer_to_analysis": round(best / analysis, 3),
    }


def small_imports(photos: list[Path], model: nomina.FaceModel, count: int) -> dict:
    settings = load_settings()
    with tempfile.TemporaryDirectory(prefix="nomina-small-") as tmp:
        ws = Workspace.create(Path(tmp) / "ws", settings, model=model, admin="bench")
        ws.analyzer()  # the main thread's networks, as an open workspace has them after its first photo
        ms = []
        for n in range(count):
            part = photos[3 * n : 3 * n + 3]
            manifest = write_sample_manifest([(f"s{n}-{i}", p) for i, p in enumerate(part)], Path(tmp) / f"{n}.csv")
            start = time.perf_counter()
            report = ws.import_references(manifest)
            ms.append(round((time.perf_counter() - start) * 1e3, 1))
            if report.added != len(part):
                sys.exit(f"a small import added {report.added} of {len(part)} rows")
        ws.close()
    later = statistics.median(ms[1:]) if len(ms) > 1 else ms[0]
    return {
        "workers": settings.workers,
        "ms": ms,
        "first_ms": ms[0],
        "later_median_ms": later,
        "later_to_first": round(later / ms[0], 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--faces", type=Path, default=Path(os.environ.get("NOMINA_TEST_FACES", HERE.parent.parent / "shared" / "faces"))
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--small", type=int, default=8)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    try:
        refs, cases = sample_sets(args.faces)
    except nomina.NominaError as exc:
        sys.exit(str(exc))
    photos = [p for _, p in refs] + [p for _, p in cases]
    if args.small * 3 > len(photos) or args.small < 1 or args.repeat < 1:
        sys.exit(f"--small: 1 to {len(photos) // 3}; --repeat: at least 1")
    model = load_model()
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores",
        "nomina_version": nomina.__version__,
        "writer": writer(photos, model, args.repeat),
        "small_imports": small_imports(photos, model, args.small),
    }
    w, s = result["writer"], result["small_imports"]
    print(f"{result['machine']}, {result['date']}, {len(photos)} photos")
    runs = [r["cpu_ms"] for r in w["runs"]]
    print(
        f"writer: {w['best_cpu_ms']} ms of CPU a photo (best of {args.repeat}; runs {runs}), "
        f"{w['writer_to_analysis']}x the analysis's {w['analysis_cpu_ms']} ms"
    )
    print(
        f"3-photo imports, {s['workers']} workers: first {s['first_ms']} ms, then median {s['later_median_ms']} ms "
        f"({s['later_to_first']}x; {s['ms']})"
    )
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
