"""One search through ``Workspace.as_user`` versus opening the workspace again for each user.

A server acts for many users on one open workspace. Before ``as_user``, acting as another user meant
opening the workspace again (engine, schema check, model, index). This measures, on the same workspace in
the same run (the sample photos: 40 references from ../shared/faces, one case):

* ``as_user``: ``ws.as_user(name).search(case)`` on the open workspace (the path a server takes);
* ``open, model shared``: ``Workspace.open(..., model=model, user=name).search(case)`` then close, with the
  loaded model passed in (the best a reopen can do);
* ``open``: the same without passing the model (what a fresh process does).

Each is repeated (median and p95 in ms) with users alternating, and quoted as a ratio to ``as_user``.

    python bench/users.py [--repeat 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from startup import machine  # bench/ is on the path when a bench script runs

from nomina import CaseFields, PhotoInput, Provenance, ReferenceFields, Workspace, load_model, load_settings

FACES = Path(os.environ.get("NOMINA_TEST_FACES") or Path(__file__).resolve().parents[2] / "shared" / "faces")


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    print("machine:", machine())
    settings = load_settings(environ={})
    model = load_model()
    people = sorted(p.name for p in (FACES / "london").iterdir() if p.is_dir())[:40]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ws"
        prov = Provenance("family", "bench", "benchmark")
        with Workspace.create(path, settings, model=model, admin="ana") as ws:
            ws.add_user("ben", "examiner")
            for p in people:
                photo = FACES / "london" / p / f"{p}_neutral.jpg"
                ws.add_reference(ReferenceFields(f"MP-{p}", f"Person {p}"), [PhotoInput(photo)], prov)
            case_photo = FACES / "london" / people[0] / f"{people[0]}_smiling.jpg"
            ws.add_case(CaseFields("UP-1"), [PhotoInput(case_photo)])
            ws.search("UP-1")  # warm: index built and saved
            names = ["ana", "ben"]
            turn = iter(range(10**9))

            def as_user() -> None:
                ws.as_user(names[next(turn) % 2]).search("UP-1", top=10)

            def reopen(shared_model: bool) -> Callable[[], None]:
                def run() -> None:
                    chosen = model if shared_model else None
                    with Workspace.open(path, settings, chosen, user=names[next(turn) % 2]) as other:
                        other.search("UP-1", top=10)

                return run

            results = {
                "as_user": timed(as_user, args.repeat),
                "open, model shared": timed(reopen(True), args.repeat),
                "open": timed(reopen(False), max(5, args.repeat // 3)),
            }
    base = statistics.median(results["as_user"])
    print(f"{len(people)} references, one case face, top 10; {args.repeat} searches each (open: fewer)")
    print(f"{'path':<20} {'median ms':>10} {'p95 ms':>8} {'x as_user':>10}")
    for name, ms in results.items():
        p95 = sorted(ms)[max(0, int(len(ms) * 0.95) - 1)]
        print(f"{name:<20} {statistics.median(ms):>10.1f} {p95:>8.1f} {statistics.median(ms) / base:>10.1f}")


if __name__ == "__main__":
    main()
