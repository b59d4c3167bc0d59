"""Ids that look like ids in use but are made of other characters (Cyrillic 'Р1' for Latin 'P1') are
accepted with a warning naming both, in `reference add`, `reference import` and `case add`; and the
import's failures report is written whole and owner-only.

Through the Python API, with the real model and photos: the command line is the thin layer that prints
the warnings (`warning: ...` lines).
"""

from __future__ import annotations

import csv
import os
import stat
from pathlib import Path

import pytest
from conftest import PROV as PROV_OPTIONS
from conftest import london, run

from nomina import CaseFields, PhotoInput, Provenance, ReferenceFields, Workspace
from nomina.errors import InvalidField
from nomina.importing import ImportReport, RowFailure, check_failures_file
from nomina.records import LookalikeIds, skeleton

PROV = Provenance("family", "a sister", "family request")
CYRILLIC_ER = "\u0420"  # looks like Latin P
GREEK_ALPHA = "\u0391"  # looks like Latin A


def add_ref(ws: Workspace, faces_dir: Path, ref_id: str, ident: str):
    return ws.add_reference(ReferenceFields(ref_id, f"Person {ident}"), [PhotoInput(london(faces_dir, ident))], PROV)


def test_a_reference_id_in_cyrillic_letters_warns_of_the_latin_one_and_is_kept(ws, faces_dir):
    assert add_ref(ws, faces_dir, "P1", "001").warnings == []
    added = add_ref(ws, faces_dir, f"{CYRILLIC_ER}1", "002")
    assert added.warnings == [
        "reference '\u04201' looks like existing reference 'P1' (different characters); "
        "check it is not the same person entered twice"
    ]
    assert [r.reference_id for r in ws.references()] == ["P1", f"{CYRILLIC_ER}1"]  # a warning, not a refusal


def test_a_latin_id_warns_of_an_existing_cyrillic_one(ws, faces_dir):
    add_ref(ws, faces_dir, f"{CYRILLIC_ER}1", "001")
    assert add_ref(ws, faces_dir, "P1", "002").warnings == [
        "reference 'P1' looks like existing reference '\u04201' (different characters); "
        "check it is not the same person entered twice"
    ]


def test_a_case_id_in_greek_letters_warns_of_the_latin_one(ws, faces_dir):
    assert ws.add_case(CaseFields("A-7"), [PhotoInput(london(faces_dir, "001", "smiling"))]).warnings == []
    added = ws.add_case(CaseFields(f"{GREEK_ALPHA}-7"), [PhotoInput(london(faces_dir, "002", "smiling"))])
    assert added.warnings == [
        "case '\u0391-7' looks like existing case 'A-7' (different characters); "
        "check it is not the same case entered twice"
    ]
    assert [c.case_id for c in ws.cases()] == ["A-7", f"{GREEK_ALPHA}-7"]


@pytest.mark.slow  # about a second
def test_no_warning_for_different_ids_ascii_lookalikes_or_the_other_kind_of_record(ws, faces_dir):
    add_ref(ws, faces_dir, "P1", "001")
    assert add_ref(ws, faces_dir, "P2", "002").warnings == []
    assert add_ref(ws, faces_dir, "PO", "003").warnings == []  # only ASCII: O and 0 are read on screen
    assert add_ref(ws, faces_dir, "P0", "004").warnings == []
    # a case and a reference may share an id, lookalike or not
    assert ws.add_case(CaseFields(f"{CYRILLIC_ER}1"), [PhotoInput(london(faces_dir, "001", "smiling"))]).warnings == []
    assert ws.reference("P1").reference_id == "P1"  # shown again, a reference carries no warnings
    assert not hasattr(ws.reference("P1"), "warnings")


def test_every_lookalike_in_use_is_named_and_long_ids_are_cut():
    ids = LookalikeIds("reference", "person", ["P1", "\u03a11", "B1"])  # Latin, Greek rho
    warnings = ids.add(f"{CYRILLIC_ER}1")
    assert [w.split(" looks like existing reference ")[1].split(" ")[0] for w in warnings] == ["'P1'", "'\u03a11'"]
    # an id made of letters of several scripts, cut and quoted as other messages show ids
    long_id = CYRILLIC_ER + "x" * 150
    ids.add("P" + "x" * 150)
    (warning,) = ids.add(long_id)
    assert "\u2026" in warning and len(warning) < 300


def test_skeletons_follow_unicode_confusables():
    assert skeleton(f"{CYRILLIC_ER}1") == skeleton("P1") == skeleton("\u03a11")
    assert skeleton(f"{GREEK_ALPHA}{CYRILLIC_ER}") == skeleton("AP")
    assert skeleton("P1") != skeleton("P2")
    assert skeleton("R1") != skeleton("B1")


@pytest.mark.slow  # about a second or more
def test_a_gallery_of_100000_ids_is_compared_at_once():
    ids = LookalikeIds("reference", "person", (f"MP-{i:06d}" for i in range(100_000)))
    assert ids.add("MP-100000") == []
    (warning,) = ids.add("\u041cP-000042")  # Cyrillic M
    assert "existing reference 'MP-000042'" in warning
    assert ids.add("MP-200000") == []


def _manifest(path: Path, faces_dir: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["reference_id", "photo", "name", "source", "supplied_by", "legal_basis"])
        for ref_id, ident in rows:
            writer.writerow([ref_id, london(faces_dir, ident), f"Person {ident}", "family", "a sister", "request"])
    return path


def test_an_import_warns_per_row_of_ids_in_use_and_of_ids_earlier_in_the_manifest(ws, faces_dir, tmp_path):
    add_ref(ws, faces_dir, "P1", "001")
    rows = [("B7", "002"), (f"{CYRILLIC_ER}1", "003"), (f"{GREEK_ALPHA}-2", "004"), ("A-2", "005")]
    report = ws.import_references(_manifest(tmp_path / "refs.csv", faces_dir, rows))
    assert report.failures == [] and report.references_created == 4
    assert report.warnings == [
        "line 3: reference '\u04201' looks like existing reference 'P1' (different characters); "
        "check it is not the same person entered twice",
        "line 5: reference 'A-2' looks like existing reference '\u0391-2' (different characters); "
        "check it is not the same person entered twice",
    ]


@pytest.mark.slow  # about a second or more
def test_the_command_line_prints_one_warning_line_and_keeps_the_record(cli_ws, faces_dir, tmp_path, capsys):
    def added(*args: object) -> list[str]:
        code, _, err = run(capsys, *args, "-w", cli_ws)
        assert code == 0, err
        return [line for line in err.splitlines() if line.startswith("warning: ")]

    assert added("reference", "add", "P1", london(faces_dir, "002"), "--name", "Bea", *PROV_OPTIONS) == []
    assert added("reference", "add", "\u04201", london(faces_dir, "003"), "--name", "Cai", *PROV_OPTIONS) == [
        "warning: reference '\u04201' looks like existing reference 'P1' (different characters); "
        "check it is not the same person entered twice"
    ]
    assert added("case", "add", "\u04211", london(faces_dir, "002", "smiling")) == [  # Cyrillic Es, like C
        "warning: case '\u04211' looks like existing case 'C1' (different characters); "
        "check it is not the same case entered twice"
    ]
    manifest = _manifest(tmp_path / "refs.csv", faces_dir, [("\u04202", "004"), ("P2", "005")])
    assert added("reference", "import", manifest) == [
        "warning: line 3: reference 'P2' looks like existing reference '\u04202' (different characters); "
        "check it is not the same person entered twice"
    ]


# -- the import's failures report -----------------------------------------------------------------------
@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture()
def failed_import(ws, faces_dir, tmp_path) -> ImportReport:
    (tmp_path / "note.jpg").write_text("not a photo")
    manifest = _manifest(tmp_path / "refs.csv", faces_dir, [("R1", "001")])
    with manifest.open("a", encoding="utf-8") as fh:
        fh.write("R2,note.jpg,Bea,family,a sister,request\n")
    report = ws.import_references(manifest)
    assert [f.line for f in report.failures] == [3]
    return report


def test_the_failures_report_is_owner_only_whatever_the_umask(failed_import, tmp_path, umask_022):
    target = tmp_path / "out" / "failures.csv"
    target.parent.mkdir()
    check_failures_file(target)
    assert list(target.parent.iterdir()) == []  # the check leaves nothing behind
    failed_import.write_failures(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with target.open(encoding="utf-8") as fh:
        assert [(r["line"], r["reference_id"]) for r in csv.DictReader(fh)] == [("3", "R2")]
    assert list(target.parent.iterdir()) == [target]  # no temporary file left


def test_a_failures_report_replaces_an_old_one_whole(tmp_path, umask_022):
    target = tmp_path / "failures.csv"
    target.write_text("line,reference_id,photo,error\n1,OLD,old.jpg,old error\n")
    target.chmod(0o644)
    reader = target.open(encoding="utf-8")  # someone reading the old report meanwhile
    ImportReport(failures=[RowFailure(2, "NEW", "new.jpg", "new error")]).write_failures(target)
    assert "OLD" in reader.read()  # reads the old report whole, never a mix of the two
    reader.close()
    assert "NEW" in target.read_text() and "OLD" not in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert list(tmp_path.iterdir()) == [target]


def test_a_failures_report_that_cannot_be_written_says_so_and_leaves_nothing(tmp_path):
    target = tmp_path / "gone" / "failures.csv"
    with pytest.raises(InvalidField, match=r"failures: .*failures\.csv: cannot be written"):
        ImportReport(failures=[RowFailure(2, "R2", "x.jpg", "bad")]).write_failures(target)
    assert list(tmp_path.iterdir()) == []


def test_a_letter_with_a_combining_mark_reads_as_the_letter():
    """A dot above an 'i' that has one, a dot below a 'y', an accent on a Cyrillic 'у': a reader of a list of
    names sees the plain letters."""
    assert skeleton("eri\u0307n") == skeleton("erin")
    assert skeleton("cy\u0323") == skeleton("c\u1ef5") == skeleton("cy")
    assert skeleton("c\u0443\u0301") == skeleton("cy")
    assert skeleton("Jos\u00e9-1") == skeleton("Jose-1")
    assert skeleton("erin") != skeleton("eran")
