"""Start-up time of the command line: `nomina --help`, `nomina --version` and `import nomina.errors`.

Each command runs in a fresh process, several times; the table gives the median and the fastest run, and
the median as a ratio of the baseline (`python -c pass`) measured in the same run, so that figures from a
busy or slower machine can still be compared. It also lists which of OpenCV, numpy and SQLAlchemy each
command imported (none should be: tests/test_startup.py checks it).

Python's compiled bytecode is kept in a temporary folder (PYTHONPYCACHEPREFIX) and written by a first,
untimed run of each command, even when PYTHONDONTWRITEBYTECODE is set: as after `pip install`, which
compiles every module, and without writing __pycache__ folders into the source tree.

    python bench/startup.py [--runs 15] [--src DIR] [--out startup.json]

``--src DIR`` times another source tree of Nomina (DIR holds the ``nomina`` package, e.g. an older
version unpacked with ``git archive REV src | tar -x -C /tmp/old``), imported in place of the installed one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HEAVY = ("cv2", "numpy", "sqlalchemy")

# Python code that reports, as the last line of standard error, the heavy modules imported so far.
_REPORT = (
    "import json; heavy = {m.split('.')[0] for m in sys.modules} & set(" + repr(HEAVY) + "); "
    "print(json.dumps(sorted(heavy)), file=sys.stderr)"
)
# Runs the entry point as the `nomina` script does (arguments after -c), then reports.
_ENTRY = "\n".join(
    ["import sys", "from nomina.cli import main", "try:", "    main(sys.argv[1:])", "except SystemExit:", "    pass"]
    + [_REPORT]
)


def machine() -> dict[str, object]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "system": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def time_once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: exit code {done.returncode}")
    return elapsed


def heavy_imports(argv: list[str], env: dict[str, str]) -> list[str]:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    return list(json.loads(done.stderr.strip().splitlines()[-1]))


def commands(python: str) -> dict[str, tuple[list[str], list[str] | None]]:
    """Name -> (the command timed, the command that reports the heavy modules it imports)."""
    script = Path(python).parent / "nomina"
    nomina = [str(script)] if script.exists() else [python, "-m", "nomina.cli"]  # not installed as a script
    return {
        "python -c pass (baseline)": ([python, "-c", "pass"], None),
        "nomina --help": ([*nomina, "--help"], [python, "-c", _ENTRY, "--help"]),
        "nomina --version": ([*nomina, "--version"], [python, "-c", _ENTRY, "--version"]),
        'python -c "import nomina.errors"': (
            [python, "-c", "import nomina.errors"],
            [python, "-c", f"import sys, nomina.errors; {_REPORT}"],
        ),
    }


def measure(runs: int, env: dict[str, str]) -> list[dict[str, Any]]:
    todo = commands(sys.executable)
    for timed, _ in todo.values():
        time_once(timed, env)  # untimed: writes the bytecode, warms the file cache
    times: dict[str, list[float]] = {name: [] for name in todo}
    for _ in range(runs):  # interleaved, so that a change in the machine's load touches every command alike
        for name, (timed, _) in todo.items():
            times[name].append(time_once(timed, env))
    baseline = statistics.median(next(iter(times.values())))
    return [
        {
            "command": name,
            "median_s": statistics.median(times[name]),
            "fastest_s": min(times[name]),
            "ratio": statistics.median(times[name]) / baseline,
            "heavy_imports": heavy_imports(check, env) if check is not None else [],
        }
        for name, (_, check) in todo.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (default 15)")
    parser.add_argument("--src", type=Path, help="time the nomina package in this folder instead")
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if args.src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(args.src.resolve()), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    where = subprocess.run(
        [sys.executable, "-c", "import nomina, os; print(os.path.dirname(nomina.__file__))"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    info = machine()
    print(f"machine: {info['cores']} cores, {info['cpu']}, {info['system']}, Python {info['python']}")
    print(f"load average at start: {info['load_average']}")
    print(f"nomina package: {where}; {args.runs} runs of each command")
    print()
    with tempfile.TemporaryDirectory(prefix="nomina-bench-pycache-") as pycache:
        results = measure(args.runs, {**env, "PYTHONPYCACHEPREFIX": pycache})
    print(f"{'command':34} {'median s':>9} {'fastest s':>10} {'x baseline':>11}  heavy modules imported")
    for r in results:
        shown = ", ".join(r["heavy_imports"]) or "none"
        print(f"{r['command']:34} {r['median_s']:9.3f} {r['fastest_s']:10.3f} {r['ratio']:11.1f}  {shown}")
    if args.out is not None:
        args.out.write_text(json.dumps({"machine": info, "package": where, "runs": args.runs, "results": results}))


if __name__ == "__main__":
    main()
