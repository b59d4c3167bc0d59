"""The web server under load: 20 examiners at once on a gallery of 100,000 reference faces.

Builds a workspace (or reuses one made earlier by this script, ``--workspace``) whose gallery holds
``--faces`` reference faces (default 100,000): ``--real`` references enrolled through the library from the
London sample photos (neutral photos), one case per user from the same people's smiling photos (half of them
deceased, so their crops are blurred as the server sends them), and the rest synthetic: seeded random unit
vectors written into the database directly (enrolling 100,000 photos through
the model would take hours). Each case is searched once, which also builds and saves the index.

Then it starts ``uvicorn`` with the application (``nomina.web.app:factory``, as ``nomina serve`` does) on
127.0.0.1 at a free port, in a subprocess, logs ``--users`` examiners in (made through the library, with
passwords) and runs each in its own thread for ``--seconds``. One round of a user, with a pause of
``--think`` seconds on average (uniform between 0 and twice that) before each request, as a person reads a
page before the next click:

    work queue; the case page; a new search of the case (every 4th round: the rest open the last one);
    the search's candidate list; the comparison page of one of the first five candidates; the two face
    crops that page shows (case, reference); the search through the REST API with an API token;
    and the baselines: the login page (a template, no workspace) and a static file.

It prints, per page: requests, p50, p95 and largest latency in ms, errors, and the p50 as a multiple of the
login page's p50 in the same run; the requests per second over the run; the server's CPU time; and the
machine (CPU model, cores). The target: no errors, and p95 of the candidate list under 300 ms.

    python bench/web_load.py                          # about 4 minutes: 0.5-1.5 building, 2 under load
    python bench/web_load.py --workspace /tmp/wl --json web_load.json   # keeps the workspace for a rerun
    python bench/web_load.py --think 0 --seconds 30   # no pauses: as many requests as the server takes

Loopback only, and bounded: ``--users`` at most 100, ``--seconds`` at most 3600.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
from startup import machine

REPO = Path(__file__).resolve().parents[1]
FACES = Path(os.environ.get("NOMINA_TEST_FACES") or REPO.parent / "shared" / "faces")
PASSWORD = "a long load-test password 2026"  # the bench workspace's users only
ADMIN = "bench"
META = "web-load.json"  # beside the workspace's database: what the script built
HOST = "127.0.0.1"
SEARCH_EVERY = 4  # a new search on every 4th round of a user
PAGES = (
    "work queue",
    "case page",
    "search (run)",
    "candidate list",
    "comparison",
    "crop (case)",
    "crop (reference)",
    "API: search",
    "baseline: /login",
    "baseline: static file",
)
BASELINE = "baseline: /login"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the workspace ------------------------------------------------------------------------------------------
def build(path: Path, faces: int, real: int, users: int, seed: int) -> dict[str, Any]:
    """Make the workspace at ``path``: users, real references and cases, synthetic gallery, one search each."""
    from nomina import CaseFields, PhotoInput, Provenance, ReferenceFields, Workspace, load_model, load_settings

    people = sorted(p.name for p in (FACES / "london").iterdir() if p.is_dir())
    if real > len(people) or users > real:
        sys.exit(f"--real must be at most {len(people)} (London sample people) and at least --users")
    settings = load_settings(environ={}, home=path)
    model = load_model(settings.model, settings.model_dir)
    started = time.perf_counter()
    ws = Workspace.create(path, settings, model, admin=ADMIN, admin_password=PASSWORD)
    try:
        admin = ws.as_user(ADMIN)
        names = [f"exam{i:02d}" for i in range(1, users + 1)]
        for name in names:
            admin.add_user(name, "examiner", password=PASSWORD)
        log(f"  {users} users added ({time.perf_counter() - started:.0f} s)")
        synthetic = faces - real
        insert_synthetic(path, synthetic, seed, FACES / "london" / people[0] / f"{people[0]}_neutral.jpg", model.name)
        log(f"  {synthetic:,} synthetic reference faces inserted ({time.perf_counter() - started:.0f} s)")
        eve = ws.as_user(names[0])
        prov = Provenance(source="family", supplied_by="benchmark", legal_basis="benchmark")
        for p in people[:real]:
            photo = FACES / "london" / p / f"{p}_neutral.jpg"
            eve.add_reference(ReferenceFields(f"MP-{p}", name=f"Person {p}"), [PhotoInput(photo)], prov)
        log(f"  {real} real references enrolled ({time.perf_counter() - started:.0f} s)")
        cases: dict[str, int] = {}
        for i, p in enumerate(people[:users]):
            kind = "deceased" if i % 2 == 0 else "living"
            case_id = f"UP-{p}"
            eve.add_case(CaseFields(case_id, kind=kind), [PhotoInput(FACES / "london" / p / f"{p}_smiling.jpg")])
            cases[case_id] = eve.search(case_id).search_id
        log(f"  {users} cases enrolled and searched ({time.perf_counter() - started:.0f} s)")
        faces_stored = ws.as_user(ADMIN).info().faces
    finally:
        ws.close()
    meta = {"faces": faces, "faces_stored": faces_stored, "real": real, "users": names, "cases": cases}
    (path / META).write_text(json.dumps(meta, indent=1))
    return meta


def insert_synthetic(path: Path, n: int, seed: int, photo: Path, model_name: str) -> None:
    """Write ``n`` synthetic reference faces (seeded random unit vectors, 1-3 per reference, each reference
    one reference photo: the same stored photo) into a workspace's database directly. The faces table's
    triggers log them in the gallery log, so every process's index takes them in as if enrolled."""
    from datetime import UTC, datetime

    import numpy as np
    from sqlalchemy import func, insert, select

    import nomina
    from nomina.imaging import decode_image, read_photo
    from nomina.store import DB_NAME, PhotoStore, connect
    from nomina.store import schema as db

    rng = np.random.default_rng([seed, n])
    counts = rng.integers(1, 4, size=n)
    refs = int(np.searchsorted(np.cumsum(counts), n)) + 1
    counts = counts[:refs]
    counts[-1] -= int(counts.sum()) - n
    owner = np.repeat(np.arange(refs), counts)
    data = read_photo(photo)
    image = decode_image(data, str(photo), nomina.load_settings().max_pixels)
    sha, _ = PhotoStore(path / "photos").put(data)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    face = {
        "number_in_photo": 1,
        "box": [0.0, 0.0, 100.0, 100.0],
        "manual": False,
        "model": model_name,
        "landmarks": [[30.0, 40.0], [70.0, 40.0], [50.0, 60.0], [35.0, 80.0], [65.0, 80.0]],
        "detector_score": 0.9,
        "inter_eye_px": 40.0,
        "sharpness": 100.0,
        "brightness": 120.0,
        "roll": 0.0,
        "yaw": 0.0,
        "pitch": 0.0,
        "added_at": now,
    }
    names = [f"syn-{i:07d}" for i in range(refs)]
    photo_row = {"photo_sha256": sha, "file_name": photo.name, "source": "other", "supplied_by": "benchmark"}
    engine = connect(path / DB_NAME)
    try:
        with engine.begin() as conn:
            first_photo = int(conn.execute(select(func.max(db.ReferencePhoto.id))).scalar_one() or 0) + 1
            first_face = int(conn.execute(select(func.max(db.Face.id))).scalar_one() or 0) + 1
            size = {"format": image.format, "width": image.width, "height": image.height}
            conn.execute(insert(db.Photo), [{"sha256": sha, **size, "size_bytes": image.size_bytes, "stored_at": now}])
            conn.execute(
                insert(db.Reference), [{"id": r, "name": r, "created_at": now, "updated_at": now} for r in names]
            )
            conn.execute(
                insert(db.ReferencePhoto),
                [
                    {
                        "id": first_photo + i,
                        "reference_id": r,
                        **photo_row,
                        "legal_basis": "benchmark",
                        "added_at": now,
                        "added_by": "benchmark",
                    }
                    for i, r in enumerate(names)
                ],
            )
            for lo in range(0, n, 20_000):
                block = rng.standard_normal((min(n, lo + 20_000) - lo, 128), dtype=np.float32)
                block /= np.linalg.norm(block, axis=1, keepdims=True)
                conn.execute(
                    insert(db.Face),
                    [
                        {
                            "id": first_face + lo + j,
                            "reference_photo_id": first_photo + int(owner[lo + j]),
                            "embedding": block[j].tobytes(),
                            **face,
                        }
                        for j in range(len(block))
                    ],
                )
    finally:
        engine.dispose()


def workspace(args: argparse.Namespace, tmp: Path) -> tuple[Path, dict[str, Any]]:
    """The workspace to serve: ``--workspace`` as built before, or built now (there, or in ``tmp``)."""
    path = Path(args.workspace) if args.workspace else tmp / "ws"
    if (path / META).is_file():
        meta = json.loads((path / META).read_text())
        if meta["faces"] == args.faces and len(meta["users"]) >= args.users:
            log(f"reusing {path} ({meta['faces_stored']:,} faces, {len(meta['users'])} users)")
            return path, meta
        sys.exit(f"{path} was built with other --faces or fewer --users; give another --workspace")
    if path.exists() and any(path.iterdir()):
        sys.exit(f"{path}: not empty and not built by this script")
    log(f"building {path}: {args.faces:,} reference faces ({args.real} real), {args.users} users ...")
    return path, build(path, args.faces, args.real, args.users, args.seed)


# -- the server ---------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def start_server(path: Path, port: int, workers: int, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NOMINA_HOME": str(path.resolve())}
    command = [
        sys.executable, "-m", "uvicorn", "nomina.web.app:factory", "--factory", "--host", HOST, "--port", str(port),
        "--workers", str(workers), "--no-server-header", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(command, env=env, stdout=out.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server stopped at start:\n{out.read_text()[-3000:]}")
        try:
            if httpx2.get(f"http://{HOST}:{port}/login", timeout=2).status_code == 200:
                return server
        except httpx2.HTTPError:
            pass
        time.sleep(0.3)
    stop_server(server)
    sys.exit(f"the server did not answer within 120 s:\n{out.read_text()[-3000:]}")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children that have been waited for, from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid] + [int(c) for c in _children(pid)]
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(fields[i]) for i in (11, 12)) / tick  # utime, stime
    return total


def _children(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []


# -- the users ----------------------------------------------------------------------------------------------
@dataclass
class Tally:
    """Latencies (ms) and errors of one page, from every user."""

    ms: list[float] = field(default_factory=list)
    errors: int = 0
    samples: list[str] = field(default_factory=list)


class Results:
    def __init__(self) -> None:
        self.pages = {name: Tally() for name in PAGES}
        self.lock = threading.Lock()

    def add(self, page: str, ms: float, error: str | None) -> None:
        with self.lock:
            tally = self.pages[page]
            tally.ms.append(ms)
            if error is not None:
                tally.errors += 1
                if len(tally.samples) < 3:
                    tally.samples.append(error)


class User(threading.Thread):
    """One examiner: logs in, then goes round the pages until the time is up."""

    def __init__(self, base: str, name: str, case_id: str, search_id: int, token: str, args: Any, res: Results):
        super().__init__(name=name, daemon=True)
        self.base, self.user, self.case_id, self.search_id = base, name, case_id, search_id
        self.token, self.args, self.results = token, args, res
        self.rng = random.Random(f"{args.seed}-{name}")
        self.client = httpx2.Client(base_url=base, timeout=60, follow_redirects=False)
        self.csrf = ""
        self.failed: str | None = None
        self.rounds = 0

    def login(self) -> None:
        page = self.client.get("/login")
        token = re.search(r'name="login_token" value="([^"]+)"', page.text)
        if token is None:
            raise RuntimeError(f"no login form: {page.status_code}")
        done = self.client.post("/login", data={"name": self.user, "password": PASSWORD, "login_token": token.group(1)})
        if done.status_code != 303:
            raise RuntimeError(f"login refused: {done.status_code} {done.text[:200]}")
        from nomina.web.access import SESSION_COOKIE, csrf_token

        self.csrf = csrf_token(self.client.cookies[SESSION_COOKIE])

    def get(self, page: str, url: str, expect: int = 200, **kw: Any) -> httpx2.Response | None:
        if self.args.think:
            time.sleep(self.rng.uniform(0, 2 * self.args.think))
        start = time.perf_counter()
        error = None
        answer = None
        try:
            answer = self.client.get(url, **kw)
            answer.read()
            if answer.status_code != expect:
                error = f"{url}: {answer.status_code} {answer.text[:160]!r}"
        except httpx2.HTTPError as exc:
            error = f"{url}: {type(exc).__name__}: {exc}"
        self.results.add(page, (time.perf_counter() - start) * 1000, error)
        return None if error else answer

    def search(self) -> None:
        if self.args.think:
            time.sleep(self.rng.uniform(0, 2 * self.args.think))
        start = time.perf_counter()
        error = None
        try:
            answer = self.client.post(f"/cases/{quote(self.case_id)}/search", data={"csrf": self.csrf})
            where = re.fullmatch(r"/searches/(\d+)", answer.headers.get("location", ""))
            if answer.status_code != 303 or where is None:
                error = f"search: {answer.status_code} {answer.text[:160]!r}"
            else:
                self.search_id = int(where.group(1))
        except httpx2.HTTPError as exc:
            error = f"search: {type(exc).__name__}: {exc}"
        self.results.add("search (run)", (time.perf_counter() - start) * 1000, error)

    def round(self) -> None:
        self.get("work queue", "/queue")
        self.get("case page", f"/cases/{quote(self.case_id)}")
        if self.rounds % SEARCH_EVERY == 0:
            self.search()
        self.get("candidate list", f"/searches/{self.search_id}")
        rank = self.rng.randint(1, 5)
        compare = self.get("comparison", f"/searches/{self.search_id}/candidates/{rank}/compare")
        if compare is not None:
            crops = {kind: re.search(rf'src="(/crops/{kind}/[^"]+)"', compare.text) for kind in ("case", "reference")}
            for kind, found in crops.items():
                if found is None:
                    self.results.add(f"crop ({kind})", 0.0, f"no /crops/{kind}/ image on the comparison page")
                else:
                    self.get(f"crop ({kind})", found.group(1).replace("&amp;", "&"))
        self.get("API: search", f"/api/v1/searches/{self.search_id}", headers={"authorization": f"Bearer {self.token}"})
        self.get(BASELINE, "/login")
        self.get("baseline: static file", "/static/nomina.css")
        self.rounds += 1

    def run(self) -> None:
        try:
            deadline = time.monotonic() + self.args.seconds
            while time.monotonic() < deadline:
                self.round()
        except Exception as exc:  # noqa: BLE001 - reported, not raised in a thread
            self.failed = f"{type(exc).__name__}: {exc}"
        finally:
            self.client.close()


def tokens(path: Path, names: list[str]) -> dict[str, str]:
    from nomina import Workspace

    with Workspace.open(path) as ws:
        return {n: ws.as_user(n).create_token("web load benchmark", expires_days=1).secret for n in names}


# -- the report ---------------------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else float("nan")


def summary(res: Results, seconds: float) -> dict[str, Any]:
    base = statistics.median(res.pages[BASELINE].ms) if res.pages[BASELINE].ms else float("nan")
    rows = {}
    for name, t in res.pages.items():
        if not t.ms:
            continue
        p50 = statistics.median(t.ms)
        rows[name] = {
            "requests": len(t.ms),
            "per_s": len(t.ms) / seconds,
            "p50_ms": p50,
            "p95_ms": pct(t.ms, 0.95),
            "max_ms": max(t.ms),
            "errors": t.errors,
            "error_samples": t.samples,
            "x_baseline_p50": p50 / base if base else None,
        }
    total = sum(r["requests"] for r in rows.values())
    return {"pages": rows, "requests": total, "requests_per_s": total / seconds, "seconds": seconds}


def table(result: dict[str, Any]) -> str:
    lines = [
        "| page | requests | p50 ms | p95 ms | max ms | errors | p50 x /login |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in result["load"]["pages"].items():
        lines.append(
            f"| {name} | {r['requests']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['max_ms']:.0f} | "
            f"{r['errors']} | {r['x_baseline_p50']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", help="build the workspace here (or reuse it if this script built it)")
    parser.add_argument("--faces", type=int, default=100_000, help="reference faces in the gallery")
    parser.add_argument("--real", type=int, default=40, help="references enrolled from real photos")
    parser.add_argument("--users", type=int, default=20, help="examiners at once (at most 100)")
    parser.add_argument("--seconds", type=float, default=120, help="how long they work (at most 3600)")
    parser.add_argument("--think", type=float, default=1.0, help="mean pause before each request, seconds")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes (nomina serve --workers)")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if not 1 <= args.users <= 100 or not 0 < args.seconds <= 3600 or not 0 <= args.think <= 60:
        sys.exit("--users 1-100, --seconds up to 3600, --think 0-60")
    if not 1 <= args.workers <= 8 or args.faces < args.real:
        sys.exit("--workers 1-8, and --faces at least --real")
    if not (FACES / "london").is_dir():
        sys.exit(f"sample photos not found at {FACES}; set NOMINA_TEST_FACES")

    tmp = Path(tempfile.mkdtemp(prefix="nomina-web-load-"))
    server = None
    try:
        path, meta = workspace(args, tmp)
        names = meta["users"][: args.users]
        cases = list(meta["cases"].items())
        secrets = tokens(path, names)
        port = free_port()
        server = start_server(path, port, args.workers, tmp / "server.log")
        base = f"http://{HOST}:{port}"
        log(f"server on {base} (pid {server.pid}, {args.workers} worker(s)); logging {len(names)} users in ...")
        results = Results()
        users = []
        for i, name in enumerate(names):
            case_id, search_id = cases[i % len(cases)]
            user = User(base, name, case_id, search_id, secrets[name], args, results)
            user.login()
            users.append(user)
        no_pause = argparse.Namespace(**{**vars(args), "think": 0})
        warm = User(base, names[0], cases[0][0], cases[0][1], secrets[names[0]], no_pause, Results())
        warm.login()
        for _ in range(2):  # first requests of each page (imports, templates, index mapped) are not counted
            warm.round()
        log(f"running for {args.seconds:.0f} s (think {args.think} s) ...")
        cpu_before, client_before = cpu_seconds(server.pid), time.process_time()
        started = time.perf_counter()
        for user in users:
            user.start()
        for user in users:
            user.join()
        elapsed = time.perf_counter() - started
        server_cpu, client_cpu = cpu_seconds(server.pid) - cpu_before, time.process_time() - client_before
        failed = {u.user: u.failed for u in users if u.failed}
        result = {
            "machine": machine(),
            "settings": {k: v for k, v in vars(args).items() if k != "json"},
            "gallery_faces": meta["faces_stored"],
            "load": summary(results, elapsed),
            "server_cpu_s": server_cpu,
            "server_cores_used": server_cpu / elapsed,
            "client_cpu_s": client_cpu,
            "users_failed": failed,
            "rounds": sum(u.rounds for u in users),
        }
    finally:
        if server is not None:
            stop_server(server)
        if not args.workspace:
            shutil.rmtree(tmp, ignore_errors=True)
    m = result["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; load average before {m['load_average']}")
    print(
        f"{result['gallery_faces']:,} faces stored ({meta['faces']:,} reference faces), {len(names)} examiners, "
        f"{elapsed:.0f} s, think {args.think} s, {args.workers} worker(s): {result['load']['requests']} requests, "
        f"{result['load']['requests_per_s']:.1f}/s, {result['rounds']} rounds"
    )
    print(
        f"server CPU {server_cpu:.0f} s ({result['server_cores_used']:.2f} cores); "
        f"this script's CPU {client_cpu:.0f} s ({client_cpu / elapsed:.2f} cores), on the same machine"
    )
    print(table(result))
    for name, r in result["load"]["pages"].items():
        for sample in r["error_samples"]:
            print(f"error ({name}): {sample}")
    for name, why in failed.items():
        print(f"user {name} stopped: {why}")
    candidate = result["load"]["pages"].get("candidate list")
    ok = candidate is not None and candidate["p95_ms"] < 300 and not failed
    ok = ok and all(r["errors"] == 0 for r in result["load"]["pages"].values())
    print(f"target (no errors, candidate list p95 under 300 ms): {'met' if ok else 'NOT met'}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
