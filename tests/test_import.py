"""`nomina reference import`: good rows kept, failed rows reported, re-runs add nothing twice."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from conftest import assert_one_error_line, london, run, snapshot
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine

from nomina.demo import write_sample_manifest
from nomina.store import schema as db

HEADER = ["reference_id", "photo", "name", "source", "supplied_by", "legal_basis", "birth_year", "photo_date"]


def write_manifest(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture()
def ws_dir(tmp_path: Path, capsys) -> Path:
    ws = tmp_path / "ws"
    assert run(capsys, "init", ws)[0] == 0
    return ws


def test_import_keeps_good_rows_reports_bad_ones_and_reruns_cleanly(ws_dir, tmp_path, faces_dir, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "note.jpg").write_text("not a photo")
    rows = [
        ["MP-1", str(london(faces_dir, "001")), "Ana", "family", "sister", "consent", "1990", "2020-01-01"],
        ["MP-1", str(london(faces_dir, "001", "smiling")), "Ana", "family", "sister", "consent", "", ""],
        ["MP-2", str(london(faces_dir, "002")), "Ben", "official-record", "registry", "statute", "", ""],
        ["MP-3", "photos/note.jpg", "Cai", "family", "mother", "consent", "", ""],
        ["MP-4", str(london(faces_dir, "004")), "Dee", "family", "father", "consent", "", "2020-02-31"],
        ["MP-5", str(faces_dir / "noface" / "fox-715588_640.jpg"), "Eve", "family", "aunt", "consent", "", ""],
        ["MP-6", str(london(faces_dir, "006")), "Fay", "", "uncle", "consent", "", ""],
        ["MP-7", "photos/missing.jpg", "Gus", "family", "son", "consent", "", ""],
        ["MP-1", str(london(faces_dir, "008")), "Another name", "family", "x", "consent", "", ""],
    ]
    manifest = write_manifest(tmp_path / "refs.csv", rows)
    code, out, err = run(capsys, "reference", "import", manifest, "-w", ws_dir)
    assert code == 1
    assert "9 rows: 3 photo(s) added (2 new reference(s)), 0 already present, 6 failed." in out
    assert "line 5: " in err and "note.jpg: not an image" in err
    assert "line 6: photo_date: '2020-02-31' is not a date" in err
    assert "line 7: " in err and "fox-715588_640.jpg: no face detected" in err
    assert "line 8: source: required" in err
    assert "line 9: " in err and "missing.jpg: no such file" in err
    assert "line 10: name: 'Another name' differs from reference MP-1's recorded name 'Ana'" in err
    with (tmp_path / "refs.failures.csv").open() as fh:
        failures = list(csv.DictReader(fh))
    assert [f["line"] for f in failures] == ["5", "6", "7", "8", "9", "10"]
    assert failures[0]["reference_id"] == "MP-3"

    before = snapshot(ws_dir)
    code, out, _ = run(capsys, "reference", "import", manifest, "-w", ws_dir)
    assert "3 already present, 6 failed" in out
    assert snapshot(ws_dir) == before  # nothing added twice

    code, out, _ = run(capsys, "reference", "show", "MP-1", "-w", ws_dir, "--json")
    import json

    shown = json.loads(out)
    assert shown["birth_year"] == 1990
    assert len(shown["photos"]) == 2
    assert shown["photos"][0]["photo_date"] == "2020-01-01"


def test_manifest_with_missing_columns_is_refused_whole(ws_dir, tmp_path, faces_dir, capsys):
    manifest = write_manifest(
        tmp_path / "m.csv", [["MP-1", str(london(faces_dir, "001")), "Ana"]], ["reference_id", "photo", "name"]
    )
    before = snapshot(ws_dir)
    code, _, err = run(capsys, "reference", "import", manifest, "-w", ws_dir)
    assert code == 1
    assert_one_error_line(err, r"m\.csv: missing column\(s\) source, supplied_by, legal_basis")
    assert snapshot(ws_dir) == before


def test_manifest_with_unknown_column_or_no_rows(ws_dir, tmp_path, capsys):
    bad = write_manifest(tmp_path / "bad.csv", [], [*HEADER, "facebook_url"])
    code, _, err = run(capsys, "reference", "import", bad, "-w", ws_dir)
    assert code == 1
    assert_one_error_line(err, r"bad\.csv: unknown column\(s\) facebook_url")
    empty = write_manifest(tmp_path / "empty.csv", [])
    code, _, err = run(capsys, "reference", "import", empty, "-w", ws_dir)
    assert_one_error_line(err, r"empty\.csv: no rows")
    code, _, err = run(capsys, "reference", "import", tmp_path / "nope.csv", "-w", ws_dir)
    assert_one_error_line(err, r"nope\.csv: no such file")


def _lines(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _row(ident: str, photo: Path, name: str = "Ana", extra: str = "") -> str:
    return f"{ident},{photo},{name},family,sister,consent{extra}"


def test_a_quote_left_open_refuses_the_manifest_and_names_its_line(ws_dir, tmp_path, faces_dir, capsys):
    """It used to swallow the rows after it: 3 rows in the file, "2 rows" in the summary, one lost unsaid."""
    head = ",".join(HEADER[:6])
    manifest = _lines(
        tmp_path / "m.csv",
        head,
        _row("MP-1", london(faces_dir, "001")),
        _row("MP-2", london(faces_dir, "002"), name='"Ben'),
        _row("MP-3", london(faces_dir, "003")),
    )
    before = snapshot(ws_dir)
    code, out, err = run(capsys, "reference", "import", manifest, "-w", ws_dir)
    assert code == 1 and out == ""
    assert_one_error_line(err, r"m\.csv: line 3: .*a quote not closed\?")
    assert snapshot(ws_dir) == before


def test_a_repeated_column_refuses_the_manifest(ws_dir, tmp_path, faces_dir, capsys):
    head = ",".join(HEADER[:6])
    manifest = _lines(tmp_path / "m.csv", head + ",name", _row("MP-1", london(faces_dir, "001"), extra=",Other"))
    code, _, err = run(capsys, "reference", "import", manifest, "-w", ws_dir)
    assert code == 1
    assert_one_error_line(err, r"m\.csv: line 1: column name appears more than once")


def test_every_line_is_accounted_for(ws_dir, tmp_path, faces_dir, capsys):
    """Extra or missing cells and control characters fail their own row, reported with its line; the good
    rows are kept; blank lines are skipped; the summary counts every row."""
    head = ",".join(HEADER[:6])
    manifest = _lines(
        tmp_path / "m.csv",
        head,
        _row("MP-1", london(faces_dir, "001")),
        _row("MP-2", london(faces_dir, "002"), extra=",surplus"),
        "",
        "MP-3," + str(london(faces_dir, "003")) + ",Cai,family,mother",
        _row("MP-4", london(faces_dir, "004"), name="D\0e"),
        _row("MP-5", london(faces_dir, "005"), name="E\x1b[2Je"),
        _row("MP-6", london(faces_dir, "006"), name="Fa\u0301y"),  # decomposed: stored composed
        _row("MP\u20107", london(faces_dir, "007")),  # a hyphen lookalike: stored as MP-7
    )
    code, out, err = run(capsys, "reference", "import", manifest, "-w", ws_dir)
    assert code == 1
    assert "7 rows: 3 photo(s) added (3 new reference(s)), 0 already present, 4 failed." in out
    assert "line 3: 7 cells, but the header (line 1) names 6 columns" in err
    assert "line 5: 5 cells, but the header (line 1) names 6 columns" in err
    assert "line 6: name: holds U+0000" in err
    assert "line 7: name: holds U+001B" in err
    assert "\x1b" not in err and "\0" not in err
    with (tmp_path / "m.failures.csv").open() as fh:
        assert [f["line"] for f in csv.DictReader(fh)] == ["3", "5", "6", "7"]
    code, out, _ = run(capsys, "reference", "list", "--json", "-w", ws_dir)
    import json

    assert {r["reference_id"]: r["name"] for r in json.loads(out)} == {
        "MP-1": "Ana",
        "MP-6": "F\u00e1y",
        "MP-7": "Ana",
    }


@pytest.mark.slow  # about a second
def test_failures_written_nowhere_still_reported(ws_dir, tmp_path, faces_dir, capsys):
    """When the default failures file cannot be written (here a folder is in its way), the failed rows are
    still printed and the command still exits 1; the good rows are kept."""
    head = ",".join(HEADER[:6])
    manifest = _lines(
        tmp_path / "m.csv", head, _row("MP-1", london(faces_dir, "001")), _row("MP-2", tmp_path / "none.jpg")
    )
    (tmp_path / "m.failures.csv").mkdir()
    code, out, err = run(capsys, "reference", "import", manifest, "-w", ws_dir)
    assert code == 1
    assert "2 rows: 1 photo(s) added" in out
    assert "line 3: " in err and "none.jpg: no such file" in err
    assert "1 row(s) failed; not written: --failures: " in err


def test_a_failures_file_that_cannot_be_written_is_refused_before_anything_is_imported(
    ws_dir, tmp_path, faces_dir, capsys
):
    head = ",".join(HEADER[:6])
    manifest = _lines(tmp_path / "m.csv", head, _row("MP-1", london(faces_dir, "001")), _row("MP-2", tmp_path / "x"))
    before = snapshot(ws_dir)
    for target, said in ((tmp_path, "is a folder"), (Path("/proc/x.csv"), "cannot be written")):
        code, out, err = run(capsys, "reference", "import", manifest, "--failures", target, "-w", ws_dir)
        assert code == 1 and out == ""
        assert_one_error_line(err, rf"--failures: {re.escape(str(target))}: {said}")
    assert snapshot(ws_dir) == before
    assert not (tmp_path / "ok.csv").exists()
    code, _, _ = run(capsys, "reference", "import", manifest, "--failures", tmp_path / "ok.csv", "-w", ws_dir)
    assert code == 1 and (tmp_path / "ok.csv").read_text().startswith("line,reference_id,photo,error")


@pytest.mark.slow
def test_an_import_stopped_by_its_user_being_disabled_says_what_it_imported(ws, tmp_path, faces_dir):
    """The batches written before the user was disabled stay; the error says so, since the summary that
    would have said it is never printed."""
    from nomina.errors import PermissionDenied

    ws.add_user("dan", "examiner")
    people = sorted(p.name for p in (faces_dir / "london").iterdir() if p.is_dir())[:40]
    rows = [[f"MP-{i}", str(london(faces_dir, i)), f"P {i}", "family", "x", "consent", "", ""] for i in people]
    manifest = write_manifest(tmp_path / "refs.csv", rows)
    dan = ws.as_user("dan")

    def progress(done: int, total: int) -> None:
        if done == 33:  # the first batch of 32 is written
            ws.disable_user("dan")

    with pytest.raises(PermissionDenied) as stopped:
        dan.import_references(manifest, progress=progress)
    assert re.fullmatch(
        r"user 'dan' is disabled; the import stopped there: 32 of 40 row\(s\) were imported before it "
        r"\(running the manifest again adds the rest\)",
        str(stopped.value),
    ), str(stopped.value)
    assert stopped.value.record == "user 'dan'"
    assert len(ws.references()) == 32


@pytest.mark.slow  # 32 photos analysed: about 2 s
def test_an_import_batch_reads_what_its_rows_need_at_once_not_row_by_row(ws, faces_dir, tmp_path):
    """Each row more costs two statements (its photo link and face, whose ids come back from the database):
    existing records, erased ids, lookalike ids and stored photos are read for the whole batch. The photos
    are written with their rows in one flush, each row after its photo's (a foreign key)."""
    people = sorted(p.name for p in (faces_dir / "london").iterdir())[:32]
    statements: list[int] = []

    def counted(*_: object) -> None:
        statements[-1] += 1

    event.listen(Engine, "before_cursor_execute", counted)
    try:
        for first, last in ((0, 8), (8, 32)):  # one batch of 8 rows, one of 24
            rows = [(f"P-{ident}", london(faces_dir, ident)) for ident in people[first:last]]
            statements.append(0)
            report = ws.import_references(write_sample_manifest(rows, tmp_path / f"rows{first}.csv"))
            assert (report.added, report.failures) == (last - first, [])
    finally:
        event.remove(Engine, "before_cursor_execute", counted)
    assert (statements[1] - statements[0]) / 16 <= 2
    assert len(ws.references()) == 32


def test_a_photo_shared_by_rows_of_one_batch_or_stored_before_is_stored_once(ws, faces_dir, tmp_path):
    """The batch reads which of its photos are stored already, once: rows of two references with the same
    bytes in one batch, and a row with bytes an earlier import stored, each get their link, and each photo one
    row and one file."""
    ws.import_references(write_sample_manifest([("A-1", london(faces_dir, "001"))], tmp_path / "a.csv"))
    rows = [("B-1", london(faces_dir, "002")), ("B-2", london(faces_dir, "002")), ("B-3", london(faces_dir, "001"))]
    report = ws.import_references(write_sample_manifest(rows, tmp_path / "b.csv"))
    assert (report.added, report.references_created, report.failures) == (3, 3, [])
    assert {r.reference_id: r.photos for r in ws.references()} == {"A-1": 1, "B-1": 1, "B-2": 1, "B-3": 1}
    with ws._shared.db.read() as s:
        assert s.scalar(select(func.count()).select_from(db.Photo)) == 2
    assert len([p for p in ws.photos.root.rglob("*") if p.is_file()]) == 2
