"""The examiner workflow: conclusions on candidates, proposed identifications and their blind verification.

It follows forensic practice (FISWG's ACE-V, INTERPOL DVI reconciliation): an examiner reviews a search's
candidates and records a conclusion on each one they look at; an examiner proposes an identification of
the case as one reference; a different person, holding the verifier role, verifies it **blind**, recording
their own conclusion before they can see the examiner's. Agreement makes the case identified;
disagreement sends it back to review with both conclusions kept.

This module is the only place that changes an identification's status, and :func:`verify` the only way
a case becomes identified: there is no other function, option or field that sets it.

Blindness: while an identification awaits verification, everyone but its proposer is *blind* for that
case (:func:`blind`): the workspace then hides the examiners' conclusions and reasons on the case's
searches, who proposed it and why, and the details of those events in the audit trail. The verifier sees
the case and the proposed reference, which is what they must compare.

Functions take a SQLAlchemy session (the caller's transaction) and the acting user's name; the caller has
checked the user's role. Each change is recorded in the audit trail in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, digests
from .errors import Conflict, InvalidField, NotFound, PermissionDenied
from .records import Record, _clean_text, _record_id, shown
from .store import schema as db

__all__ = [
    "CONCLUSIONS",
    "FEATURES",
    "FINDINGS",
    "checklist_value",
    "STATUSES",
    "VERIFICATIONS",
    "CaseIdentifications",
    "ConclusionRecord",
    "IdentificationRecord",
    "VerificationRecord",
    "blind",
    "visible",
    "case_identifications",
    "conclusion_record",
    "conclude",
    "conclusion_value",
    "current",
    "describe",
    "identifications",
    "propose",
    "status",
    "verification_value",
    "verify",
    "withdraw",
]

#: An examiner's conclusion on one candidate.
CONCLUSIONS = ("excluded", "possible match", "insufficient information")
#: A verifier's own conclusion on a proposed identification: only "same person" agrees with it.
VERIFICATIONS = ("same person", "different people", "inconclusive")
#: A case's status: no open identification, one awaiting verification, verified, or not agreed by the verifier.
STATUSES = ("open", "proposed", "identified", "disputed")
#: The facial features a morphological comparison goes through, in the order examiners use (FISWG's
#: feature list, from the overall shape inwards and down, marks last), with the finding on each.
FEATURES = (
    "face shape",
    "hairline",
    "forehead",
    "eyebrows",
    "eyes",
    "nose",
    "ears",
    "mouth",
    "chin",
    "marks, scars, tattoos",
)
FINDINGS = ("similar", "different", "not visible")
_NOTE_MAX = 1000


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _choice(value: str, allowed: tuple[str, ...], field: str) -> str:
    """``value`` as one of ``allowed``; hyphens and underscores may stand for spaces (possible-match)."""
    text = " ".join(value.replace("-", " ").replace("_", " ").lower().split())
    if text not in allowed:
        options = ", ".join(a.replace(" ", "-") for a in allowed)
        raise InvalidField(f"{field}: {value!r} is not one of {options}")
    return text


def conclusion_value(value: str) -> str:
    return _choice(value, CONCLUSIONS, "conclusion")


def verification_value(value: str) -> str:
    return _choice(value, VERIFICATIONS, "conclusion")


def checklist_value(value: object) -> dict[str, dict[str, str]] | None:
    """A feature checklist checked: ``{feature: {"finding": one of FINDINGS, "note": text}}`` for features of
    :data:`FEATURES` only (any subset, kept in their order); None for an empty or absent one."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidField("checklist: must map features to a finding and a note", field="checklist")
    unknown = [str(k) for k in value if k not in FEATURES]
    if unknown:
        raise InvalidField(
            f"checklist: {unknown[0]!r} is not one of the features ({', '.join(FEATURES)})", field="checklist"
        )
    checked: dict[str, dict[str, str]] = {}
    for feature in FEATURES:
        item = value.get(feature)
        if item is None:
            continue
        if not isinstance(item, dict) or set(item) - {"finding", "note"}:
            raise InvalidField(f"checklist: {feature}: must be a finding and a note", field="checklist")
        note = item.get("note") or ""
        if not isinstance(note, str) or len(note) > _NOTE_MAX or "\x00" in note:
            raise InvalidField(
                f"checklist: {feature}: the note must be text of at most {_NOTE_MAX} characters", field="checklist"
            )
        finding = item.get("finding")
        if finding in (None, "") and not note.strip():
            continue
        checked[feature] = {
            "finding": _choice(str(finding or ""), FINDINGS, f"checklist: {feature}"),
            "note": note.strip(),
        }
    return checked or None


def _reasons(text: str | None, field: str = "reasons") -> str:
    reasons = _clean_text(text or "", field, lines=True)  # shown to others: nothing that acts on a terminal
    if not reasons:
        raise InvalidField(f"{field}: required: say what the conclusion rests on")
    return reasons


def current(case: db.Case) -> db.Identification | None:
    """The case's identification that is not withdrawn (at most one), or None."""
    live = [i for i in case.identifications if i.status != "withdrawn"]
    return live[-1] if live else None


def status(case: db.Case) -> str:
    found = current(case)
    return "open" if found is None else found.status


#: Who acted, as a blind viewer is shown it.
HIDDEN = "(hidden until verified)"


def blind(case: db.Case, viewer: str) -> bool:
    """Whether ``viewer`` must not see the examiners' conclusions on this case yet."""
    found = current(case)
    return found is not None and found.status == "proposed" and found.proposed_by != viewer


def who(actor: str | None, blind: bool, viewer: str) -> str | None:
    """``actor`` as ``viewer`` may see it on a case: hidden from a blind viewer (:func:`blind`), unless it
    is the viewer."""
    return HIDDEN if blind and actor != viewer else actor


def blind_cases(s: Session, viewer: str) -> set[str]:
    """The cases ``viewer`` is blind to: those whose identification awaits verification by someone else
    than its proposer. Who did anything on them (searched, looked) is hidden from ``viewer`` too, as the
    proposer is usually who searched and looked just before proposing."""
    return blind_records(s, viewer)[0]


def blind_records(s: Session, viewer: str) -> tuple[set[str], set[str]]:
    """The cases ``viewer`` is blind to (:func:`blind_cases`) and the references proposed for them: who looked
    at a proposed reference, just before proposing it, would name the proposer as well."""
    pending = [i for i in identifications(s, "proposed") if blind(i.case, viewer)]
    return {i.case_id for i in pending}, {i.reference_id for i in pending}


def conclude(
    s: Session,
    actor: str,
    search: db.Search,
    rank: int,
    conclusion: str,
    reasons: str,
    checklist: dict[str, dict[str, str]] | None = None,
) -> db.Conclusion:
    """Record the examiner's conclusion on the candidate at ``rank`` of ``search``, with the feature
    checklist of the comparison when one was filled (see :func:`checklist_value`)."""
    value = conclusion_value(conclusion)
    text = _reasons(reasons)
    features = checklist_value(checklist)
    candidate = next((c for c in search.candidates if c.rank == rank), None)
    if candidate is None:
        raise InvalidField(
            f"rank: search {search.id} has no candidate at rank {rank} (1-{len(search.candidates)})",
            record=f"search {search.id}",
        )
    row = db.Conclusion(
        search_id=search.id,
        rank=rank,
        reference_id=candidate.reference_id,
        examiner=actor,
        conclusion=value,
        reasons=text,
        at=_now(),
        checklist=features,
    )
    s.add(row)
    s.flush()
    audit.record(
        s,
        actor,
        audit.ConclusionRecorded(
            case_id=search.case_id,
            search_id=search.id,
            rank=rank,
            reference_id=candidate.reference_id,
            conclusion=value,
            examiner=actor,
        ),
    )
    return row


def propose(s: Session, actor: str, case: db.Case, reference_id: str, reasons: str) -> db.Identification:
    """Propose that the case is the reference. The reference must be a candidate of one of the case's
    searches (the newest such search is recorded), and the case must have no open identification."""
    text = _reasons(reasons)
    found = current(case)
    if found is not None:
        raise Conflict(
            f"case {case.id}: an identification as {found.reference_id} is already {found.status}; withdraw it first",
            record=f"case {case.id}",
        )
    if s.get(db.Reference, reference_id) is None:
        raise NotFound(f"reference {reference_id}: no such reference", record=f"reference {reference_id}")
    searches = [sr for sr in case.searches if any(c.reference_id == reference_id for c in sr.candidates)]
    if not searches:
        raise Conflict(
            f"case {case.id}: reference {reference_id} is not a candidate of any of its searches; "
            "an identification is proposed from a reviewed candidate list",
            record=f"case {case.id}",
        )
    row = db.Identification(
        case_id=case.id,
        reference_id=reference_id,
        search_id=searches[-1].id,
        proposed_by=actor,
        proposed_at=_now(),
        reasons=text,
        status="proposed",
    )
    s.add(row)
    s.flush()
    audit.record(
        s, actor, audit.IdentificationProposed(case_id=case.id, reference_id=reference_id, search_id=row.search_id)
    )
    return row


def verify(
    s: Session, actor: str, case: db.Case, conclusion: str, reasons: str, reference_id: str
) -> db.Identification:
    """The verifier's own conclusion on the case's proposed identification.

    ``same person`` makes the case identified; ``different people`` or ``inconclusive`` make it disputed:
    back to review, the examiner's proposal and the verifier's conclusion both kept. The proposer can
    never verify their own proposal, nor can whoever proposed or withdrew an earlier identification of the
    case; an identification is verified once. ``reference_id``, the
    reference the verifier compared the case with, is refused (Conflict) when the proposal awaiting
    verification is no longer of it: an examiner who withdrew and proposed another reference meanwhile
    must not have the verifier's conclusion attached to a comparison the verifier never made.
    """
    value = verification_value(conclusion)
    text = _reasons(reasons)
    found = current(case)
    if found is None or found.status != "proposed":
        what = "no identification" if found is None else f"an identification that is {found.status}"
        raise Conflict(f"case {case.id}: {what}; there is nothing awaiting verification", record=f"case {case.id}")
    if found.reference_id != _record_id(reference_id, "reference_id"):
        raise Conflict(
            f"case {case.id}: the identification awaiting verification is not of reference {shown(reference_id)} "
            "(another may have been proposed while you compared): look at the case again",
            field="reference_id",
            record=f"case {case.id}",
        )
    if found.proposed_by == actor:
        raise PermissionDenied(
            f"case {case.id}: {actor} proposed this identification; a different person must verify it",
            record=f"case {case.id}",
        )
    # the rules below read the case's identifications: as the trail last left them, not as edited since
    audit.require_records(s, [digests.record_key("case", case.id)], "not verified")
    if any(actor in (i.proposed_by, i.closed_by) for i in case.identifications if i.status == "withdrawn"):
        # whoever proposed an earlier identification, or withdrew one (and saw its proposer and reasons), is
        # not blind to the case: withdrawing a proposal to read it, or to have it proposed again by someone
        # else, must not make its verifier
        raise PermissionDenied(
            f"case {case.id}: {actor} proposed or withdrew an earlier identification of this case; a verifier who "
            "has not seen the case's proposals must verify it",
            record=f"case {case.id}",
        )
    if s.get(db.Reference, found.reference_id) is None:
        raise Conflict(
            f"case {case.id}: reference {found.reference_id}, which this identification proposes, has been erased: "
            "there is nothing to compare the case with; an examiner withdraws the identification",
            record=f"case {case.id}",
        )
    s.add(db.Verification(identification_id=found.id, verifier=actor, conclusion=value, reasons=text, at=_now()))
    found.status = "identified" if value == "same person" else "disputed"
    s.flush()
    audit.record(
        s,
        actor,
        audit.IdentificationVerified(
            case_id=case.id, reference_id=found.reference_id, outcome=found.status, proposed_by=found.proposed_by
        ),
    )
    return found


def withdraw(s: Session, actor: str, case: db.Case, reason: str) -> db.Identification:
    """Withdraw the case's open identification (proposed, disputed or identified), with a reason."""
    text = _reasons(reason, "reason")
    found = current(case)
    if found is None:
        raise Conflict(f"case {case.id}: no identification to withdraw", record=f"case {case.id}")
    found.status = "withdrawn"
    found.closed_at = _now()
    found.closed_by = actor
    found.close_reason = text
    s.flush()
    audit.record(s, actor, audit.IdentificationWithdrawn(case_id=case.id, reference_id=found.reference_id, reason=text))
    return found


@dataclass(frozen=True)
class ConclusionRecord(Record):
    """An examiner's conclusion on one candidate of a search."""

    search_id: int
    rank: int
    reference_id: str
    examiner: str
    conclusion: str
    reasons: str
    at: datetime
    checklist: dict[str, dict[str, str]] | None = None


def conclusion_record(c: db.Conclusion) -> ConclusionRecord:
    return ConclusionRecord(c.search_id, c.rank, c.reference_id, c.examiner, c.conclusion, c.reasons, c.at, c.checklist)


@dataclass(frozen=True)
class VerificationRecord(Record):
    verifier: str
    conclusion: str
    reasons: str
    at: datetime


@dataclass(frozen=True)
class IdentificationRecord(Record):
    """An identification as a viewer may see it: a blind viewer sees no proposer and no reasons."""

    identification_id: int
    case_id: str
    reference_id: str
    search_id: int | None
    status: str
    proposed_by: str | None
    proposed_at: datetime
    reasons: str | None
    blind: bool
    verification: VerificationRecord | None
    closed_at: datetime | None
    closed_by: str | None
    close_reason: str | None


@dataclass(frozen=True)
class CaseIdentifications(Record):
    """A case's status, its open identification and every identification it has had, oldest first.

    ``hidden``: how many earlier identifications are left out of ``history`` for a blind viewer (their
    proposers, reasons and verifiers' conclusions would tell a verifier what others concluded)."""

    case_id: str
    status: str
    current: IdentificationRecord | None
    history: list[IdentificationRecord]
    hidden: int = 0


def describe(i: db.Identification, viewer: str) -> IdentificationRecord:
    """An identification as ``viewer`` may see it; the proposer and reasons are hidden from a blind viewer."""
    hidden = i.status == "proposed" and i.proposed_by != viewer
    v = i.verification
    return IdentificationRecord(
        identification_id=i.id,
        case_id=i.case_id,
        reference_id=i.reference_id,
        search_id=i.search_id,
        status=i.status,
        proposed_by=None if hidden else i.proposed_by,
        proposed_at=i.proposed_at,
        reasons=None if hidden else i.reasons,
        blind=hidden,
        verification=None if v is None else VerificationRecord(v.verifier, v.conclusion, v.reasons, v.at),
        closed_at=i.closed_at,
        closed_by=i.closed_by,
        close_reason=i.close_reason,
    )


def visible(i: db.Identification, viewer: str) -> bool:
    """Whether ``viewer`` may see identification ``i`` at all: not an earlier identification of a case that is
    blind to them (an earlier proposal of the same reference, its verifier's conclusion or its withdrawal's
    reason would tell the next verifier what others concluded)."""
    return not blind(i.case, viewer) or i is current(i.case)


def case_identifications(case: db.Case, viewer: str) -> CaseIdentifications:
    found = current(case)
    shown = [i for i in case.identifications if visible(i, viewer)]
    return CaseIdentifications(
        case_id=case.id,
        status=status(case),
        current=None if found is None else describe(found, viewer),
        history=[describe(i, viewer) for i in shown],
        hidden=len(case.identifications) - len(shown),
    )


def identifications(s: Session, status_filter: str | None = None) -> list[db.Identification]:
    q = select(db.Identification).order_by(db.Identification.id)
    if status_filter is not None:
        q = q.where(db.Identification.status == status_filter)
    return list(s.scalars(q))
