"""What proving who you are costs: a login (argon2id), a call with a token, a call in a session.

Measured on one workspace in the same run, each as a ratio to the same call made by a view a program
named without credentials (``as_user``, the baseline):

* ``as_user``: ``ws.as_user("ben").users()``;
* ``session view``: ``view.users()`` on a view opened by a login (each call re-checks the session);
* ``token, each call``: ``ws.with_credential(token).users()`` (the token looked up, then the call: what
  a server does per request);
* ``login``: ``ws.login("ben", password)`` (argon2id verification, a session written, audited);
* ``login refused``: a wrong password (the same verification, the failure counted and audited).

    python bench/login.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from startup import machine  # bench/ is on the path when a bench script runs
from users import timed

from nomina import Workspace, load_model, load_settings
from nomina.errors import LoginFailed

PASSWORD = "a long passphrase to time"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print("machine:", machine())
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.create(Path(tmp) / "ws", load_settings(environ={}), model=load_model(), admin="ana")
        with ws:
            ws.add_user("ben", "examiner", password=PASSWORD)
            ben = ws.as_user("ben")
            token = ben.create_token("bench").secret
            _, session = ws.login("ben", PASSWORD)

            def refused() -> None:
                try:
                    ws.login("ben", "not the password at all")
                except LoginFailed:
                    pass

            def login() -> None:
                ws.login("ben", PASSWORD)  # a success also resets the failure count (no lockout here)

            results: dict[str, list[float]] = {}
            results["as_user"] = timed(lambda: ben.users(), args.repeat)
            results["session view"] = timed(lambda: session.users(), args.repeat)
            results["token, each call"] = timed(lambda: ws.with_credential(token).users(), args.repeat)
            results["login"] = timed(login, args.repeat)
            wrong = []
            for _ in range(args.repeat // 4 or 1):  # 4 refusals, then a success: never locked out
                wrong += timed(refused, 4)
                login()
            results["login refused"] = wrong
    base = statistics.median(results["as_user"])
    print(f"{'path':<18} {'median ms':>10} {'p95 ms':>8} {'x as_user':>10}")
    for name, ms in results.items():
        p95 = sorted(ms)[max(0, int(len(ms) * 0.95) - 1)]
        print(f"{name:<18} {statistics.median(ms):>10.1f} {p95:>8.1f} {statistics.median(ms) / base:>10.1f}")


if __name__ == "__main__":
    main()
