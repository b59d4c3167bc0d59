"""`nomina reference import`: good rows kept, failed rows reported, re-runs add nothing twice."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from conftest import assert_one_error_line, london, run, snapshot

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
