"""Every bad input: one clear line naming the file or field, a non-zero exit, the workspace untouched."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from conftest import PROV, assert_one_error_line, london, raw_database, run, snapshot
from PIL import Image


def png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge image (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def bad_photo(kind: str, tmp: Path, faces_dir: Path) -> Path:
    good = london(faces_dir, "002").read_bytes()
    if kind == "text renamed .jpg":
        (tmp / "letter.jpg").write_text("Dear family, this is not a photo.\n")
        return tmp / "letter.jpg"
    if kind == "zero bytes":
        (tmp / "empty.jpg").write_bytes(b"")
        return tmp / "empty.jpg"
    if kind == "truncated jpeg":
        (tmp / "cut.jpg").write_bytes(good[: len(good) // 2])
        return tmp / "cut.jpg"
    if kind == "unsupported format":
        Image.open(london(faces_dir, "002")).save(tmp / "anim.gif")
        return tmp / "anim.gif"
    if kind == "decompression bomb":
        (tmp / "bomb.png").write_bytes(png_bomb(100_000, 100_000))
        return tmp / "bomb.png"
    if kind == "does not exist":
        return tmp / "nowhere" / "missing.jpg"
    if kind == "no face":
        return faces_dir / "noface" / "poppy-2447327_640.jpg"
    raise AssertionError(kind)


EXPECTED = {
    "text renamed .jpg": r"letter\.jpg: not an image",
    "zero bytes": r"empty\.jpg: empty file \(0 bytes\)",
    "truncated jpeg": r"cut\.jpg: damaged or truncated image",
    "unsupported format": r"anim\.gif: unsupported image format GIF",
    "decompression bomb": r"bomb\.png: image too large",
    "does not exist": r"missing\.jpg: no such file",
    "no face": r"poppy-2447327_640\.jpg: no face detected",
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_bad_reference_photo(kind, cli_ws, tmp_path, faces_dir, capsys):
    photo = bad_photo(kind, tmp_path, faces_dir)
    before = snapshot(cli_ws)
    # a good photo first: the whole command is refused, nothing of it is kept
    code, _, err = run(
        capsys, "reference", "add", "R2", london(faces_dir, "003"), photo, "--name", "B", *PROV, "-w", cli_ws
    )
    assert code == 1
    assert_one_error_line(err, EXPECTED[kind])
    assert snapshot(cli_ws) == before


@pytest.mark.parametrize("kind", sorted(set(EXPECTED) - {"no face"}))
def test_bad_case_photo(kind, cli_ws, tmp_path, faces_dir, capsys):
    photo = bad_photo(kind, tmp_path, faces_dir)
    before = snapshot(cli_ws)
    code, _, err = run(capsys, "case", "add", "C2", photo, "-w", cli_ws)
    assert code == 1
    assert_one_error_line(err, EXPECTED[kind])
    assert snapshot(cli_ws) == before


def test_photo_over_the_pixel_limit(cli_ws, faces_dir, capsys, monkeypatch):
    monkeypatch.setenv("NOMINA_MAX_PIXELS", "100000")
    before = snapshot(cli_ws)
    code, _, err = run(capsys, "reference", "add", "R2", london(faces_dir, "003"), "--name", "B", *PROV, "-w", cli_ws)
    assert code == 1
    assert_one_error_line(err, r"003_neutral\.jpg: image too large, 400x400 = 160,000 pixels \(limit 100,000")
    assert snapshot(cli_ws) == before


def test_case_photo_without_a_face_is_kept_and_flagged(cli_ws, faces_dir, capsys):
    code, out, err = run(capsys, "case", "add", "C2", faces_dir / "noface" / "poppy-2447327_640.jpg", "-w", cli_ws)
    assert code == 0
    assert "no face detected; photo kept and flagged" in err
    assert "mark-eyes C2 --photo 1" in err
    code, out, _ = run(capsys, "case", "show", "C2", "-w", cli_ws)
    assert "[no face detected]" in out


def test_several_faces_without_face_option(cli_ws, two_faces, capsys):
    before = snapshot(cli_ws)
    code, _, err = run(capsys, "reference", "add", "R2", two_faces, "--name", "B", *PROV, "-w", cli_ws)
    assert code == 1
    assert_one_error_line(err, r"two_people\.jpg: 2 faces found; choose one with --face N")
    code, _, err = run(capsys, "case", "add", "C2", two_faces, "-w", cli_ws)
    assert code == 1
    assert_one_error_line(err, r"two_people\.jpg: 2 faces found")
    assert snapshot(cli_ws) == before
    assert run(capsys, "case", "add", "C2", two_faces, "--face", "2", "-w", cli_ws)[0] == 0


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["reference", "add", "R1", "{photo}", "--name", "X", *PROV], r"reference R1: already exists"),
        (["case", "add", "C1", "{photo}"], r"case C1: already exists"),
        (["reference", "show", "R9"], r"reference R9: no such reference"),
        (["reference", "update", "R9", "--name", "Y"], r"reference R9: no such reference"),
        (["reference", "delete", "R9", "--reason", "duplicate"], r"reference R9: no such reference"),
        (["case", "show", "C9"], r"case C9: no such case"),
        (["case", "delete", "C9", "--reason", "duplicate"], r"case C9: no such case"),
        (["search", "C9"], r"case C9: no such case"),
        (["search", "show", "99"], r"search 99: no such search"),
        (["search", "C1", "--face", "5"], r"--face: case C1 has 1 face\(s\); got 5"),
        (["case", "mark-eyes", "C1", "--photo", "3", "--eyes", "1,2,30,2"], r"--photo: case C1 has 1 photo"),
        (["case", "mark-eyes", "C1", "--eyes", "1,2,3"], r"--eyes: expected X1,Y1,X2,Y2"),
        (
            [
                "reference",
                "add",
                "R2",
                "{photo}",
                "--name",
                "X",
                "--source",
                "family",
                "--supplied-by",
                "Y",
                "--legal-basis",
                " ",
            ],
            r"--legal-basis: required",
        ),
        (
            [
                "reference",
                "add",
                "R2",
                "{photo}",
                "--name",
                "X",
                "--source",
                "internet",
                "--supplied-by",
                "Y",
                "--legal-basis",
                "Z",
            ],
            r"--source: 'internet' is not one of family, official-record, other",
        ),
        (
            ["reference", "add", "R2", "{photo}", "--name", "X", *PROV, "--last-seen-on", "31/12/2020"],
            r"--last-seen-on: '31/12/2020' is not a date \(expected YYYY-MM-DD\)",
        ),
        (["case", "add", "C2", "{photo}", "--kind", "unknown"], r"--kind: 'unknown' is not one of deceased, living"),
        (["case", "add", "C2", "{photo}", "--found-on", "2024-02-30"], r"--found-on: '2024-02-30' is not a date"),
    ],
)
def test_bad_ids_and_fields(args, pattern, cli_ws, faces_dir, capsys):
    photo = str(london(faces_dir, "005"))
    before = snapshot(cli_ws)
    code, _, err = run(capsys, *[a.replace("{photo}", photo) for a in args], "-w", cli_ws)
    assert code == 1
    assert_one_error_line(err, pattern)
    assert snapshot(cli_ws) == before


def test_missing_provenance_option_is_a_usage_error(cli_ws, faces_dir, capsys):
    before = snapshot(cli_ws)
    code, _, err = run(capsys, "reference", "add", "R2", london(faces_dir, "005"), "--name", "X", "-w", cli_ws)
    assert code == 2
    assert "--source" in err or "--legal-basis" in err or "--supplied-by" in err
    assert "Traceback" not in err
    assert snapshot(cli_ws) == before


def test_folder_that_is_not_a_workspace(tmp_path, capsys):
    (tmp_path / "holiday.txt").write_text("x")
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "reference", "list", "-w", tmp_path)
    assert code == 1
    assert_one_error_line(err, r"not a Nomina workspace \(no nomina.db; create one with `nomina init`\)")
    assert snapshot(tmp_path) == before


def test_workspace_made_with_another_model(cli_ws, faces_dir, capsys):
    with raw_database(cli_ws) as con:
        con.execute(
            "UPDATE workspace_info SET value = ? WHERE key = 'model'",
            (
                '{"files": {"w600k_mbf.onnx": "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f"}, '
                '"name": "other"}',
            ),
        )
    before = snapshot(cli_ws)
    code, _, err = run(capsys, "case", "add", "C2", london(faces_dir, "003"), "-w", cli_ws)
    assert code == 1
    assert_one_error_line(err, r"built with model 'other', which this version of Nomina does not know")
    assert snapshot(cli_ws) == before
