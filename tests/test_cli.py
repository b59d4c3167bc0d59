"""The command line's ordinary use: tables, JSON, recorded searches, inspect, compare, demo."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import pytest
from conftest import PROV, assert_one_error_line, build_once, copy_workspace, london, run

from nomina.store import is_workspace


@pytest.fixture(scope="session")
def populated_template(tmp_path_factory, faces_dir: Path) -> Path:
    return build_once(tmp_path_factory, "populated", lambda ws: populate(ws, faces_dir))


@pytest.fixture()
def populated(populated_template: Path, tmp_path: Path) -> Path:
    """Four references (MP-001 to MP-004) and one case (UP-1, 003 smiling), made with the command line once
    per session and copied for each test (tmp_path / "ws")."""
    return copy_workspace(populated_template, tmp_path)


def populate(ws: Path, faces_dir: Path) -> None:
    assert run(None, "init", ws)[0] == 0
    for ident in ("001", "002", "003", "004"):
        code, out, err = run(
            None,
            "reference",
            "add",
            f"MP-{ident}",
            london(faces_dir, ident),
            "--name",
            f"Person {ident}",
            *PROV,
            "--sex",
            "female",
            "--birth-year",
            "1990",
            "-w",
            ws,
        )
        assert code == 0, err
    assert (
        run(None, "case", "add", "UP-1", london(faces_dir, "003", "smiling"), "--found-on", "2026-01-02", "-w", ws)[0]
        == 0
    )


def test_search_table_says_candidates_not_identification(populated, capsys):
    code, out, _ = run(capsys, "search", "UP-1", "--top", "3", "-w", populated)
    assert code == 0
    assert "CANDIDATES FOR REVIEW - NOT AN IDENTIFICATION" in out
    first = next(line for line in out.splitlines() if re.match(r"^\W*1\W", line))
    assert "MP-003" in first and "Person 003" in first


def test_an_exhaustive_search_says_so_in_its_record(populated, capsys):
    code, out, err = run(capsys, "search", "UP-1", "--json", "-w", populated)
    assert code == 0, err
    plain = json.loads(out)
    code, out, err = run(capsys, "search", "UP-1", "--exhaustive", "--json", "-w", populated)
    assert code == 0, err
    thorough = json.loads(out)
    assert "exhaustive" not in plain["settings"]
    assert thorough["settings"]["exhaustive"] is True and thorough["settings"]["index"] == "exact"
    assert [(c["reference_id"], c["score"]) for c in thorough["candidates"]] == [
        (c["reference_id"], c["score"]) for c in plain["candidates"]
    ]  # four references: the gallery searches exactly anyway
    code, out, _ = run(capsys, "search", "show", str(thorough["search_id"]), "--json", "-w", populated)
    assert json.loads(out)["settings"]["exhaustive"] is True


def test_search_json_shape_and_show_again(populated, capsys):
    code, out, _ = run(capsys, "search", "UP-1", "--json", "-w", populated)
    assert code == 0
    data = json.loads(out)
    assert set(data) >= {
        "search_id",
        "case_id",
        "candidates",
        "created_at",
        "os_user",
        "model",
        "settings",
        "gallery",
        "case_faces",
        "notice",
    }
    assert data["case_id"] == "UP-1"
    assert [c["rank"] for c in data["candidates"]] == [1, 2, 3, 4]
    first = data["candidates"][0]
    assert set(first) == {
        "rank",
        "reference_id",
        "name",
        "score",
        "photo_sha256",
        "reference_face_id",
        "case_face",
        "evidence",
        "warnings",
        "conclusions",
    }
    assert first["reference_id"] == "MP-003"
    assert first["evidence"] is None and data["calibration"] is None  # no calibration stored: no LR
    assert re.fullmatch(r"[0-9a-f]{64}", first["photo_sha256"])
    scores = [c["score"] for c in data["candidates"]]
    assert scores == sorted(scores, reverse=True) and -1 <= scores[-1] <= scores[0] <= 1
    code, again, _ = run(capsys, "search", "show", str(data["search_id"]), "--json", "-w", populated)
    assert json.loads(again) == data
    code, listing, _ = run(capsys, "search", "list", "--case", "UP-1", "--json", "-w", populated)
    assert json.loads(listing)[0]["top_reference"] == "MP-003"


def test_lists_show_update_delete(populated, capsys):
    code, out, _ = run(capsys, "reference", "list", "-w", populated)
    assert "4 reference(s)" in out and "MP-004" in out
    assert run(capsys, "reference", "update", "MP-004", "--last-seen-at", "Central station", "-w", populated)[0] == 0
    code, out, _ = run(capsys, "reference", "show", "MP-004", "-w", populated)
    assert "last_seen_at: Central station" in out and "legal_basis=family request" in out
    code, out, _ = run(capsys, "reference", "delete", "MP-004", "--reason", "entered twice", "-w", populated)
    assert "Deleted reference MP-004: 1 face(s), 1 photo file(s) removed." in out
    code, out, _ = run(capsys, "case", "list", "--json", "-w", populated)
    assert json.loads(out)[0]["found_on"] == "2026-01-02"
    code, out, _ = run(capsys, "info", "--json", "-w", populated)
    info = json.loads(out)
    assert (info["references"], info["cases"], info["model"]["name"]) == (3, 1, "sface")


def test_workspace_setting_from_environment(tmp_path, faces_dir, capsys, monkeypatch):
    monkeypatch.setenv("NOMINA_HOME", str(tmp_path / "from-env"))
    assert run(capsys, "init")[0] == 0
    assert is_workspace(tmp_path / "from-env")
    code, out, _ = run(capsys, "info", "--json")
    assert json.loads(out)["path"] == str(tmp_path / "from-env")


def test_inspect_numbers_faces_and_writes_an_annotated_copy(two_faces, tmp_path, capsys):
    out_path = tmp_path / "annotated.png"
    code, out, _ = run(capsys, "inspect", two_faces, "--out", out_path, "--json")
    assert code == 0
    data = json.loads(out)
    assert [f["number"] for f in data["faces"]] == [1, 2]
    assert data["faces"][0]["box"][0] < 400 <= data["faces"][1]["box"][0]  # left to right
    annotated = cv2.imread(str(out_path))
    original = cv2.imread(str(two_faces))
    assert annotated.shape == original.shape
    assert (annotated != original).any()
    code, out, _ = run(capsys, "inspect", two_faces)
    assert "2 face(s)" in out and "face 2:" in out


@pytest.mark.slow  # over a second
def test_compare_same_and_different_people(faces_dir, capsys, two_faces):
    code, out, _ = run(capsys, "compare", london(faces_dir, "005"), london(faces_dir, "005", "smiling"), "--json")
    same = json.loads(out)["score"]
    code, out, _ = run(capsys, "compare", london(faces_dir, "005"), london(faces_dir, "006", "smiling"), "--json")
    different = json.loads(out)["score"]
    assert same > different
    code, _, err = run(capsys, "compare", two_faces, london(faces_dir, "005"))
    assert code == 1
    assert_one_error_line(err, r"two_people\.jpg: 2 faces found")
    code, out, _ = run(capsys, "compare", two_faces, london(faces_dir, "001"), "--face-a", "1")
    assert "similarity" in out and "not a probability" in out


@pytest.mark.slow
def test_demo_on_a_small_sample_folder(tmp_path, faces_dir, capsys):
    samples = tmp_path / "samples"
    for ident in ("001", "002", "003"):
        (samples / "london" / ident).mkdir(parents=True)
        for expr in ("neutral", "smiling"):
            (samples / "london" / ident / f"{ident}_{expr}.jpg").symlink_to(london(faces_dir, ident, expr))
    canada = sorted((faces_dir / "canada").iterdir())[0]
    (samples / "canada").mkdir()
    (samples / "canada" / canada.name).symlink_to(canada, target_is_directory=True)
    code, out, _ = run(capsys, "demo", "--samples", samples, "--workspace", tmp_path / "demo-ws")
    assert code == 0
    match = re.search(r"(\d+) cases searched against (\d+) references; true person ranked first in (\d+)", out)
    assert match and match.group(1, 2, 3) == ("3", "4", "3")
    assert is_workspace(tmp_path / "demo-ws")


def test_demo_without_samples(tmp_path, capsys):
    code, _, err = run(capsys, "demo", "--samples", tmp_path / "none")
    assert code == 1
    assert_one_error_line(err, r"none: sample photos not found")


def test_every_command_has_help(capsys):
    import typer.main

    from nomina.cli import app

    group = typer.main.get_command(app)

    def walk(cmd, path):
        assert (cmd.help or "").strip(), f"{' '.join(path)} has no help"
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])

    walk(group, ["nomina"])
    assert run(capsys, "--version")[1].startswith("nomina ")


def test_typed_text_cannot_forge_a_line_of_the_audit_log_or_of_an_identification(populated, capsys):
    """A reason of several lines printed raw made a line that read as another event, or as a verification
    that never happened."""
    forged = "entered twice  reference=MP-001\n  999  2026-12-01 22:00:00  vic  identification.verify  case=X"
    assert run(capsys, "reference", "delete", "MP-004", "--reason", forged, "-w", populated)[0] == 0
    code, out, _ = run(capsys, "audit", "log", "--reference", "MP-004", "-w", populated)
    assert code == 0 and not any(line.lstrip().startswith("999") for line in out.splitlines())
    (deleted,) = [line for line in out.splitlines() if "reference.delete" in line]
    assert f"reason={json.dumps(forged)}" in deleted
    assert run(capsys, "search", "UP-1", "-w", populated)[0] == 0
    claim = "ears\n  verified by vic at 2026-12-01T22:50:00: same person: dental records"
    assert run(capsys, "identification", "propose", "UP-1", "MP-003", "--reasons", claim, "-w", populated)[0] == 0
    code, out, _ = run(capsys, "identification", "show", "UP-1", "-w", populated)
    assert code == 0 and "\n  verified by" not in out
    assert "ears\n      |   verified by vic" in out


def test_suggested_commands_quote_ids_for_the_shell(populated, faces_dir, capsys):
    noface = sorted((faces_dir / "noface").glob("*.jpg"))[0]
    code, _, err = run(capsys, "case", "add", "x$(touch${IFS}PWNED)", noface, "-w", populated)
    assert code == 0
    assert "`nomina case mark-eyes 'x$(touch${IFS}PWNED)' --photo 1 --eyes X1,Y1,X2,Y2`" in err


def test_a_face_whose_landmarks_give_no_pitch_is_printed_with_n_a():
    """Landmarks with the mouth above the eyes (a damaged detector, an odd photo) give no pitch: the quality
    line says so instead of failing halfway through the command's output."""
    from nomina import cli

    quality = {"detector_score": 0.9, "yaw": 3.2, "pitch": None, "roll": -1.0, "score": 40, "reasons": [],
               "inter_eye_px": 60, "sharpness": 100, "brightness": 120}  # fmt: skip
    line = cli._quality_line({"manual": False, "quality": quality})
    assert "yaw=+3 pitch=n/a" in line and "roll=-1" in line
