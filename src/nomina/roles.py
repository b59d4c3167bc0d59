"""Who may do what: the one table of roles and the actions each may take.

Every guarded call of the library (:class:`nomina.workspace.Workspace`) names one of these actions, and so
does every page and API route of the web application (:mod:`nomina.web`); the route test walks every
route and every role against this table, so a rule is written once, here.

Roles:

- ``examiner``: enrols references and cases, runs searches, reviews candidates, records conclusions and
  proposes identifications;
- ``verifier``: checks an identification proposed by someone else (the workflow keeps them different);
- ``admin``: manages users, workspace settings, calibration, retention and erasure;
- ``intake``: records references (adds and edits them, imports manifests); never sees cases or searches;
- ``auditor``: reads everything, the audit trail included, and changes nothing.

A user may hold several roles; an action is allowed when any of them allows it.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ACTIONS", "ROLES", "allowed", "needs", "roles_for"]

ROLES: Final = ("examiner", "verifier", "admin", "intake", "auditor")

_EVERYONE: Final = ROLES
_READERS: Final = ("examiner", "verifier", "admin", "auditor")  # everyone who may see cases

#: action -> (roles allowed, what it covers)
ACTIONS: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    "account": (_EVERYONE, "one's own password, sessions, tokens and display settings"),
    "workspace.read": (_EVERYONE, "the workspace summary, settings and model"),
    "user.read": (_EVERYONE, "the list of users and their roles"),
    "reference.read": (_EVERYONE, "references, their photos, faces and provenance"),
    "reference.write": (("examiner", "intake"), "add and edit references, add photos, import manifests"),
    "case.read": (_READERS, "cases, their photos, searches, candidates, conclusions and identifications"),
    "case.write": (("examiner",), "add cases and mark eyes by hand"),
    "search.run": (("examiner",), "search a case against every reference"),
    "conclusion.write": (("examiner",), "record conclusions, propose and withdraw identifications"),
    "identification.verify": (("verifier",), "verify or dispute an identification someone else proposed"),
    "report.read": (("examiner", "auditor"), "write a case's identification report"),
    "export.read": (("examiner",), "export verified identifications for the authority"),
    "audit.read": (_READERS, "the audit trail, its verification and checkpoints"),
    "user.manage": (("admin",), "add and disable users, change roles, reset passwords, end lockouts"),
    "workspace.manage": (("admin",), "workspace settings, calibration, retention, maintenance"),
    "record.erase": (("admin",), "erase a reference or a case"),
}


def roles_for(action: str) -> tuple[str, ...]:
    """The roles that may take ``action`` (KeyError for an action not in the table: a programming error)."""
    return ACTIONS[action][0]


def allowed(roles: tuple[str, ...] | list[str], action: str) -> bool:
    """Whether a user holding ``roles`` may take ``action``."""
    permitted = roles_for(action)
    return any(r in permitted for r in roles)


def needs(action: str) -> str:
    """The roles ``action`` needs, in words: "the examiner role", "the examiner or intake role", "one of the
    examiner, verifier, admin or auditor roles"."""
    permitted = roles_for(action)
    if len(permitted) <= 2:
        return f"the {' or '.join(permitted)} role"
    return f"any of the {', '.join(permitted[:-1])} or {permitted[-1]} roles"
