"""``nomina demo``: the whole job on the sample photos, with built-in defaults.

References: every london/ID/ID_neutral.jpg and every canada/ID/ID.jpg photo (distractors). Cases: every
london/ID/ID_smiling.jpg. Each case is searched and the rank of the true person is counted. The sample
folder's README describes the photos and their licences.
"""

from __future__ import annotations

import csv
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import FileMissing
from .records import CaseFields, PhotoInput
from .settings import Settings
from .workspace import Workspace

__all__ = ["DEMO_USERS", "DemoSummary", "add_demo_users", "run_demo", "sample_sets", "write_sample_manifest"]

_PROVENANCE = {
    "source": "other",
    "supplied_by": "Face Research Lab sample sets (DeBruine & Jones 2017)",
    "legal_basis": "CC BY 4.0 research sample; subjects consented to research use",
}


@dataclass(frozen=True)
class DemoSummary:
    cases: int
    rank1: int
    rank5: int
    not_found: int
    references: int
    workspace: str
    kept: bool
    seconds: float

    def text(self) -> str:
        where = f"workspace at {self.workspace}" if self.kept else "temporary workspace removed"
        return (
            f"{self.cases} cases searched against {self.references} references; "
            f"true person ranked first in {self.rank1}, in the top 5 in {self.rank5}"
            f" ({self.not_found} not in the top 5). {where}; {self.seconds:.1f} s.\n"
            "These are candidate rankings for review, not identifications."
        )


def sample_sets(samples: Path) -> tuple[list[tuple[str, Path]], list[tuple[str, Path]]]:
    """(reference id, photo) and (case id, photo) pairs of the sample folder, sorted."""
    london, canada = samples / "london", samples / "canada"
    if not london.is_dir() or not canada.is_dir():
        raise FileMissing(
            f"{samples}: sample photos not found (expected london/ and canada/ folders; "
            "set NOMINA_SAMPLES to the folder described in the README)",
            field="samples",
        )
    refs = [(f"london_{p.parent.name}", p) for p in sorted(london.glob("*/*_neutral.jpg"))]
    refs += [(f"canada_{p.parent.name}", p) for p in sorted(canada.glob("*/*.jpg"))]
    cases = [(f"case_{p.parent.name}", p) for p in sorted(london.glob("*/*_smiling.jpg"))]
    return refs, cases


def write_sample_manifest(refs: list[tuple[str, Path]], path: Path) -> Path:
    """A reference manifest for (reference id, photo) pairs of sample photos, with their provenance."""
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["reference_id", "photo", "name", *_PROVENANCE])
        for ref_id, photo in refs:
            writer.writerow([ref_id, photo.resolve(), f"Sample person {ref_id}", *_PROVENANCE.values()])
    return path


#: The demo's users for the web application (``nomina demo --serve``): one per role, and "demo", the first.
DEMO_USERS: dict[str, tuple[str, ...]] = {
    "demo": ("examiner", "admin"),
    "erin": ("examiner",),
    "victor": ("verifier",),
    "ines": ("intake",),
    "aude": ("auditor",),
    "adam": ("admin",),
}


def add_demo_users(folder: Path, settings: Settings) -> dict[str, tuple[tuple[str, ...], str]]:
    """Give the demo workspace a user for each role, each with a new random password (the demo's first user,
    "demo", gets one too); name -> (roles, password)."""
    made: dict[str, tuple[tuple[str, ...], str]] = {}
    with Workspace.open(folder, settings, user="demo") as ws:
        for name, roles in DEMO_USERS.items():
            password = secrets.token_urlsafe(12)
            if name == "demo":
                ws.set_password(name, password)
            else:
                ws.add_user(name, roles, password=password)
            made[name] = (roles, password)
    return made


def run_demo(settings: Settings, workspace: Path | None, step: Callable[[str], None]) -> DemoSummary:
    started = time.perf_counter()
    refs, cases = sample_sets(Path(settings.samples))
    kept = workspace is not None
    folder = Path(workspace) if workspace is not None else Path(tempfile.mkdtemp(prefix="nomina-demo-"))
    try:
        # The demo acts as "demo", the workspace's first user, named by the program (no login).
        ws = Workspace.create(folder / "workspace" if not kept else folder, settings, admin="demo")
        with ws, tempfile.TemporaryDirectory(prefix="nomina-demo-manifest-") as tmp:
            manifest = write_sample_manifest(refs, Path(tmp) / "references.csv")
            step(f"enrolling {len(refs)} reference photos from {settings.samples}")
            report = ws.import_references(manifest)
            for failure in report.failures:
                step(f"  not enrolled: line {failure.line}: {failure.error}")
            step(f"adding and searching {len(cases)} cases")
            rank1 = rank5 = 0
            for case_id, photo in cases:
                ws.add_case(CaseFields(case_id, kind="living", notes="sample photo"), [PhotoInput(photo)])
                result = ws.search(case_id, top=5)
                truth = "london_" + case_id.removeprefix("case_")
                ranked = [c.reference_id for c in result.candidates]
                rank1 += bool(ranked) and ranked[0] == truth
                rank5 += truth in ranked
            workspace_path = str(ws.path)
    finally:
        if not kept:
            shutil.rmtree(folder, ignore_errors=True)
    return DemoSummary(
        cases=len(cases),
        rank1=rank1,
        rank5=rank5,
        not_found=len(cases) - rank5,
        references=len(refs) - len(report.failures),
        workspace=workspace_path,
        kept=kept,
        seconds=time.perf_counter() - started,
    )
