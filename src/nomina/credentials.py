"""Where the command line keeps a login session between commands.

``nomina login`` writes the session's secret to one file per workspace in the user's state folder
(``$XDG_STATE_HOME/nomina/sessions``, by default ``~/.local/state/nomina/sessions``): the folder 0700,
the file 0600, written whole. The file is named by a hash of the workspace's resolved path, so each
workspace has its own login. The database keeps only the secret's SHA-256 (:mod:`nomina.auth`), so a copy
of the database opens no session.

A session file that someone else could read is refused rather than used, as ssh refuses a private key
readable by others: its secret may have been seen.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

from .errors import NotLoggedIn
from .files import private_folder, write_whole

__all__ = ["forget", "load", "path_for", "save"]


def _folder() -> Path:
    base = os.environ.get("XDG_STATE_HOME", "").strip()
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "state"
    return root / "nomina" / "sessions"


def path_for(workspace: Path) -> Path:
    """The session file of ``workspace``."""
    where = str(Path(workspace).resolve())
    return _folder() / (hashlib.sha256(where.encode("utf-8", "surrogateescape")).hexdigest()[:32] + ".json")


def save(workspace: Path, secret: str, user: str, expires_at: str) -> Path:
    """Keep ``secret`` as ``workspace``'s session (replacing any), readable by its owner only."""
    target = path_for(workspace)
    private_folder(target.parent)
    data = {"workspace": str(Path(workspace).resolve()), "user": user, "expires_at": expires_at, "secret": secret}
    write_whole(target, json.dumps(data, indent=1).encode("utf-8"), ".session-")
    return target


def load(workspace: Path) -> dict[str, Any] | None:
    """``workspace``'s saved session (``secret``, ``user``, ``expires_at``), or None when there is none.

    Raises NotLoggedIn for a file that is not the user's own, that others may read, or that is unreadable.
    """
    target = path_for(workspace)
    try:
        found = os.stat(target, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise NotLoggedIn(f"session file {target}: cannot be read ({exc.strerror})", field="") from None
    if not stat.S_ISREG(found.st_mode):
        raise NotLoggedIn(f"session file {target}: not a regular file; remove it and log in again", field="")
    if sys.platform != "win32" and (found.st_uid != os.getuid() or found.st_mode & 0o077):
        raise NotLoggedIn(
            f"session file {target}: others may read it (mode {stat.S_IMODE(found.st_mode):o}); "
            "remove it and log in again",
            field="",
        )
    try:
        data = json.loads(target.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("secret"), str):
        raise NotLoggedIn(f"session file {target}: unreadable; remove it and log in again", field="")
    return data


def forget(workspace: Path) -> bool:
    """Remove ``workspace``'s session file; whether there was one."""
    target = path_for(workspace)
    try:
        target.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise NotLoggedIn(f"session file {target}: cannot be removed ({exc.strerror})", field="") from None
    return True
