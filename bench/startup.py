"""Start-up time of the command line: `nomina --help`, `nomina --version` and `import nomina.errors`.

Each command runs in a fresh process, several times; the table gives the median and the fastest run, and
the median as a ratio of the baseline (`python -c pass`) measured in the same run, so that figures from a
busy or slower machine can still be compared. It also lists which of OpenCV, numpy and SQLAlchemy each
command imported (none should be: tests/test_startup.py checks it).

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
import time
from pathlib import Path

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


def time_runs(argv: list[str], env: dict[str, str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)}: exit code {done.returncode}")
    return times


def heavy_imports(argv: list[str], env: dict[str, str]) -> list[str]:
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    return list(json.loads(done.stderr.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (default 15)")
    parser.add_argument("--src", type=Path, help="time the nomina package in this folder instead")
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()

    env = dict(os.environ)
    if args.src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(args.src.resolve()), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    python = sys.executable
    script = Path(python).parent / "nomina"
    where = subprocess.run(
        [python, "-c", "import nomina, os; print(os.path.dirname(nomina.__file__))"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    entry = _ENTRY
    check_errors = f"import sys, nomina.errors; {_REPORT}"
    commands = {
        "python -c pass (baseline)": ([python, "-c", "pass"], None),
        "nomina --help": ([str(script), "--help"], [python, "-c", entry, "--help"]),
        "nomina --version": ([str(script), "--version"], [python, "-c", entry, "--version"]),
        'python -c "import nomina.errors"': ([python, "-c", "import nomina.errors"], [python, "-c", check_errors]),
    }
    if not script.exists():  # not installed as a script beside this Python: run the module
        for name in ("nomina --help", "nomina --version"):
            timed, check = commands[name]
            commands[name] = ([python, "-m", "nomina.cli", *timed[1:]], check)

    info = machine()
    print(f"machine: {info['cores']} cores, {info['cpu']}, {info['system']}, Python {info['python']}")
    print(f"load average at start: {info['load_average']}")
    print(f"nomina package: {where}; {args.runs} runs of each command")
    print()
    results = []
    baseline = None
    print(f"{'command':34} {'median s':>9} {'fastest s':>10} {'x baseline':>11}  heavy modules imported")
    for name, (timed, check) in commands.items():
        time_runs(timed, env, 1)  # warm the file cache
        times = time_runs(timed, env, args.runs)
        median = statistics.median(times)
        baseline = baseline if baseline is not None else median
        heavy = heavy_imports(check, env) if check is not None else []
        results.append({"command": name, "median_s": median, "fastest_s": min(times), "ratio": median / baseline})
        results[-1]["heavy_imports"] = heavy
        shown = ", ".join(heavy) if heavy else "none"
        print(f"{name:34} {median:9.3f} {min(times):10.3f} {median / baseline:11.1f}  {shown}")
    if args.out is not None:
        args.out.write_text(json.dumps({"machine": info, "package": where, "runs": args.runs, "results": results}))


if __name__ == "__main__":
    main()
