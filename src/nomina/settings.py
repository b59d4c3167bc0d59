"""Every setting of Nomina in one typed registry.

A setting has a name, a type, a default and a help text. Its value comes, in order of precedence, from
an explicit argument (a command-line option or a keyword), the environment variable ``NOMINA_<NAME>``,
or the default. This is the only module that reads the environment.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InvalidField

__all__ = [
    "SETTINGS",
    "STORED_PREFIX",
    "TOP_MAX",
    "WORKSPACE_SETTINGS",
    "Setting",
    "Settings",
    "load_settings",
    "workspace_setting",
]


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    maximum: float | None = None  # the largest value accepted, when there is one
    minimum: float | None = None  # the smallest value accepted (settings of a process), when there is one

    @property
    def env_var(self) -> str:
        return "NOMINA_" + self.name.upper()


#: The most candidates a search may keep.
TOP_MAX = 1000

SETTINGS: tuple[Setting, ...] = (
    Setting("home", Path, Path("nomina-data"), "Workspace folder: database, photo store and index files."),
    Setting("model", str, "sface", "Face model for new workspaces (see `nomina models`)."),
    Setting(
        "database",
        str,
        "",
        "Database of new workspaces (`nomina init`): empty for SQLite, a file in the workspace folder; a "
        "postgresql:// URL for a PostgreSQL database (created when absent, empty otherwise), or for a server "
        "only (no database name), on which each new workspace gets a new database.",
    ),
    Setting(
        "model_dir",
        str,
        "",
        "Folder holding the model's files under their manifest names, instead of the installed package "
        "(for example full-precision files of the same model).",
    ),
    Setting(
        "samples",
        Path,
        Path("../shared/faces"),
        "Sample photo folder used by `nomina demo` (london/, canada/ as in its README).",
    ),
    Setting(
        "max_pixels",
        int,
        50_000_000,
        "Largest photo accepted, in pixels (width x height).",
        minimum=10_000,
        maximum=1_000_000_000,
    ),
    Setting(
        "detection_threshold",
        float,
        0.7,
        "Lowest detector score kept as a face (0-1). 0.7 finds faces that 0.9 misses in hard photos.",
        minimum=0.01,
        maximum=1,
    ),
    Setting(
        "detection_size",
        int,
        1024,
        "Long side, in pixels, of the copy of a photo that the detector sees first.",
        minimum=160,
        maximum=8192,
    ),
    Setting(
        "orientation_search",
        str,
        "cases",
        "Which photos are also searched turned by 90, 180 and 270 degrees (bodies photographed lying "
        "down): cases (case photos, inspect and compare), all (reference photos too) or off.",
        choices=("cases", "all", "off"),
    ),
    Setting("top", int, 50, "Candidates shown and stored per search.", minimum=1, maximum=TOP_MAX),
    Setting(
        "age_gap_years",
        float,
        10.0,
        "Years between a reference photo and the case photo from which results warn of an age gap.",
        minimum=0,
        maximum=150,
    ),
    Setting(
        "cache",
        Path,
        Path("~/.cache/nomina"),
        "Folder where `nomina evaluate` keeps the embeddings of evaluated photos (by photo SHA-256 and "
        "model), so a second run is fast. It holds biometric data: delete it when an evaluation is done.",
    ),
    Setting(
        "workers",
        int,
        2,
        "Photos analysed at once in batch enrolment, and the most a process holds decoded at once.",
        minimum=1,
        maximum=64,
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}

#: Settings kept inside a workspace (its database), the same for everyone who uses it: shown and changed
#: with `nomina config`, chosen at `nomina init`. They never come from the environment.
#: The prefix of a workspace setting's key in ``workspace_info`` (its value is stored as JSON).
STORED_PREFIX = "setting."

WORKSPACE_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "quality_gate",
        str,
        "standard",
        "Face quality gate: off, standard or strict. A reference photo whose face fails it is refused with the "
        "reasons unless the user overrides it (recorded); a case face that fails is searched with a warning.",
        choices=("off", "standard", "strict"),
    ),
    Setting(
        "retention_years",
        int,
        20,
        "Years a new reference is kept before `nomina retention apply` erases it, unless its own "
        "retention date is given; 0 gives new references no retention date; at most 150.",
        maximum=150,
    ),
    Setting(
        "index",
        str,
        "auto",
        "Gallery index: exact (every face scored), approximate (compact codes, the best candidates scored "
        "exactly) or auto (exact below 100,000 reference faces, approximate from there).",
        choices=("auto", "exact", "approximate"),
    ),
    Setting(
        "duplicate_score",
        float,
        0.5,
        "Score (0-1) from which a reference's face matching another reference's face is reported as a likely "
        "duplicate: a warning when a reference is enrolled, and `nomina reference duplicates`. The default "
        "suits the default model, sface (its own same-person threshold is 0.363).",
        maximum=1,
    ),
)
_WORKSPACE_BY_NAME = {s.name: s for s in WORKSPACE_SETTINGS}


def workspace_setting(name: str, raw: Any) -> Any:
    """A workspace setting's value checked and converted; InvalidField naming the setting otherwise."""
    setting = _WORKSPACE_BY_NAME.get(name)
    if setting is None:
        raise InvalidField(f"{name}: not a workspace setting (known: {', '.join(_WORKSPACE_BY_NAME)})", field="setting")
    if isinstance(raw, str) and len(raw) > _LONGEST_VALUE:
        raise InvalidField(f"{name}: {raw[:_LONGEST_VALUE]!r}... is not a valid {setting.type.__name__}")
    value = _convert(setting, raw, name)
    if isinstance(value, int | float) and not value >= 0:  # NaN too
        raise InvalidField(f"{name}: {raw!r} must not be negative")
    if setting.maximum is not None and value > setting.maximum:
        raise InvalidField(f"{name}: {raw!r} is more than the largest value accepted, {setting.maximum}")
    return value


# A workspace setting's value is short (a word or a number); a longer one is cut in the message.
_LONGEST_VALUE = 80


@dataclass(frozen=True)
class Settings:
    home: Path = Path("nomina-data")
    model: str = "sface"
    database: str = ""
    model_dir: str = ""
    samples: Path = Path("../shared/faces")
    max_pixels: int = 50_000_000
    detection_threshold: float = 0.7
    detection_size: int = 1024
    orientation_search: str = "cases"
    top: int = 50
    age_gap_years: float = 10.0
    cache: Path = Path("~/.cache/nomina")
    workers: int = 2
    sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some values changed (None values are ignored)."""
        changes = {k: _coerce(_BY_NAME[k], v) for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """Every setting, as shown (``nomina settings``): a database URL without its password."""
        shown = {s.name: _plain(getattr(self, s.name)) for s in SETTINGS}
        if self.database:
            from .store.server import shown as without_password

            shown["database"] = without_password(self.database)
        return shown


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


def _coerce(setting: Setting, raw: Any, label: str | None = None) -> Any:
    label = label or f"setting {setting.env_var}"
    value = _convert(setting, raw, label)
    low, high = setting.minimum, setting.maximum
    if isinstance(value, int | float) and (low is not None or high is not None):
        if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
            shown = [f"at least {_number(low)}"] * (low is not None) + [f"at most {_number(high)}"] * (high is not None)
            raise InvalidField(f"{label}: {raw!r} must be {' and '.join(shown)}", field=setting.name)
    return value


def _number(value: float | None) -> str:
    return f"{int(value):,}" if value is not None and float(value).is_integer() else f"{value:g}"


def _convert(setting: Setting, raw: Any, label: str) -> Any:
    """``raw`` as the setting's type and among its choices; InvalidField starting with ``label`` otherwise."""
    refused = isinstance(raw, bool) and setting.type is not bool  # True is an int to Python, not to a person
    refused |= setting.type is int and isinstance(raw, float) and not raw.is_integer()  # 1.9 is not 1
    try:
        value = raw if isinstance(raw, setting.type) else setting.type(raw)
    except (TypeError, ValueError, OverflowError):
        refused = True
    if refused:
        raise InvalidField(f"{label}: {raw!r} is not a valid {setting.type.__name__}", field=setting.name) from None
    if setting.choices and value not in setting.choices:
        raise InvalidField(f"{label}: {raw!r} is not one of {', '.join(setting.choices)}", field=setting.name)
    return value


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from the environment (``os.environ`` unless given) and explicit overrides."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    unknown = sorted(set(overrides) - {s.name for s in SETTINGS})
    if unknown:
        raise InvalidField(f"setting {unknown[0]}: no such setting", field=unknown[0])
    for s in SETTINGS:
        if overrides.get(s.name) is not None:
            values[s.name] = _coerce(s, overrides[s.name], f"setting {s.name}")
            sources[s.name] = "argument"
        elif env.get(s.env_var, "") != "":
            values[s.name] = _coerce(s, env[s.env_var])
            sources[s.name] = s.env_var
        else:
            values[s.name] = s.default
            sources[s.name] = "default"
    return Settings(**values, sources=sources)


def os_user() -> str:
    """The operating-system user running Nomina, recorded with each search."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"
