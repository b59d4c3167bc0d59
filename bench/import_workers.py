"""Reference import from one and from two processes at once, on SQLite and on PostgreSQL: photos per second.

The manifest holds the 244 sample photos (london/ID/ID_neutral.jpg and ID_smiling.jpg as two photos of
reference L-ID, canada/ID/ID.jpg as C-ID). Each configuration imports it into a new, empty workspace:

- ``1 process``: one ``nomina reference import`` of the whole manifest;
- ``2 processes, halves``: two processes at once, each importing half of the manifest's rows (the way to
  share a large import between processes or servers);
- ``2 processes, same manifest``: two processes at once, each importing the whole manifest; every row must be
  added exactly once (the other process counts it as already present), so the time shows what a rerun or
  a double start costs.

Every process runs with ``NOMINA_WORKERS=1`` (one analysis thread), so that processes, not threads, are what
varies; a last run gives one process ``NOMINA_WORKERS=2`` (both cores in one process, the default) as the
baseline of this machine. Model loading is inside each process's time (it is part of starting an import).
After each run the workspace is checked: each reference's photo count, no photo twice, the audit trail
intact. PostgreSQL runs need NOMINA_TEST_POSTGRESQL (a server URL without a database name, as the tests use;
``.ci/postgres start DIR`` prints one); without it only SQLite runs.

    python bench/import_workers.py [--out bench/results/import_workers.json]
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "a long import password 4321"


def manifest_rows(faces: Path) -> list[str]:
    rows = []
    for person in sorted((faces / "london").iterdir()):
        for expression in ("neutral", "smiling"):
            photo = person / f"{person.name}_{expression}.jpg"
            if photo.is_file():
                rows.append(f"L-{person.name},{photo},Person {person.name},family,a sister,family request")
    for person in sorted((faces / "canada").iterdir()):
        photo = person / f"{person.name}.jpg"
        if photo.is_file():
            rows.append(f"C-{person.name},{photo},Person {person.name},family,a sister,family request")
    return rows


def write_manifest(path: Path, rows: list[str]) -> Path:
    path.write_text("reference_id,photo,name,source,supplied_by,legal_basis\n" + "\n".join(rows) + "\n")
    return path


def nomina(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    exe = Path(sys.executable).with_name("nomina")
    return subprocess.Popen([str(exe), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(engine: str, manifests: list[Path], workers: int, folder: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOMINA_")}
    env["NOMINA_WORKERS"] = str(workers)
    if engine == "postgresql":
        env["NOMINA_DATABASE"] = os.environ["NOMINA_TEST_POSTGRESQL"]
    ws = folder / "ws"
    init = subprocess.run(
        [str(Path(sys.executable).with_name("nomina")), "init", str(ws), "--admin", "importer", "--password-stdin"],
        input=PASSWORD,
        env=env,
        capture_output=True,
        text=True,
    )
    assert init.returncode == 0, init.stderr
    from nomina import Workspace

    with Workspace.open(ws, user="importer") as opened:
        env["NOMINA_TOKEN"] = opened.create_token("import benchmark").secret
    start = time.perf_counter()
    procs = [nomina("reference", "import", str(m), "-w", str(ws), env=env) for m in manifests]
    outs = [p.communicate() for p in procs]
    seconds = time.perf_counter() - start
    assert all(p.returncode == 0 for p in procs), outs
    added = sum(int(out.split("rows: ")[1].split(" photo")[0]) for out, _ in outs)
    with Workspace.open(ws, user="importer") as opened:
        refs = opened.references()
        photos = sum(r.photos for r in refs)
        intact = opened.audit_verify().ok
    return {"seconds": round(seconds, 2), "photos_added": added, "photos_in_workspace": photos, "audit_ok": intact}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--faces", type=Path, default=Path(os.environ.get("NOMINA_TEST_FACES") or REPO.parent / "shared" / "faces")
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = manifest_rows(args.faces)
    engines = ["sqlite"] + (["postgresql"] if os.environ.get("NOMINA_TEST_POSTGRESQL") else [])
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        whole = write_manifest(base / "all.csv", rows)
        halves = [write_manifest(base / "a.csv", rows[::2]), write_manifest(base / "b.csv", rows[1::2])]
        configs = [
            ("1 process", [whole], 1),
            ("2 processes, halves", halves, 1),
            ("2 processes, same manifest", [whole, whole], 1),
            ("1 process, 2 threads", [whole], 2),
        ]
        for engine in engines:
            for n, (name, manifests, workers) in enumerate(configs):
                folder = base / f"{engine}-{n}"
                folder.mkdir()
                found = run(engine, manifests, workers, folder)
                found.update(engine=engine, config=name, photos=len(rows))
                found["photos_per_s"] = round(len(rows) / float(found["seconds"]), 2)  # type: ignore[arg-type]
                assert found["photos_in_workspace"] == len(rows) and found["audit_ok"], found
                results.append(found)
                print(
                    f"{engine:10s} {name:28s} {found['seconds']:7.1f} s  {found['photos_per_s']:6.2f} photos/s",
                    flush=True,
                )
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    report = {"machine": {"cpu": cpu, "cores": os.cpu_count()}, "photos": len(rows), "results": results}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
