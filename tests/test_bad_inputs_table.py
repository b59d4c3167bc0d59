"""Bad inputs, one table: each gives one error line naming the file or field, exit code 1 (a Nomina error)
or 2 (a usage mistake), and leaves the workspace exactly as it was.

Bad files are made in the test's own folder from the sample photos; nothing is copied into the repository.
The workspace is `cli_ws` (reference R1, case C1), a fresh copy per row.
"""

from __future__ import annotations

import io
import os
import random
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from conftest import PROV, london, run, snapshot
from PIL import Image

from nomina.errors import InvalidField
from nomina.records import CaseFields, PhotoInput, Provenance, ReferenceFields, parse_date, parse_year

TOMORROW = (date.today() + timedelta(days=1)).isoformat()
LONG_ID = "R" * 10_000


# -- bad files, made in the test's folder ------------------------------------------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb when huge)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")
    )


def _encoded(img: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def _face(faces_dir: Path) -> Image.Image:
    return Image.open(london(faces_dir, "002")).convert("RGB")


def _png_chunk_offset(data: bytes, kind: bytes) -> tuple[int, int]:
    """Where chunk ``kind`` starts (its length field) and where its CRC starts."""
    at = data.index(kind) - 4
    (length,) = struct.unpack(">I", data[at : at + 4])
    return at, at + 8 + length


def _flip_crc(data: bytes, kind: bytes) -> bytes:
    _, crc = _png_chunk_offset(data, kind)
    return data[:crc] + bytes([data[crc] ^ 0xFF]) + data[crc + 1 :]


def _without_iend(data: bytes) -> bytes:
    at, _ = _png_chunk_offset(data, b"IEND")
    return data[:at]


def _damaged_tiff(faces_dir: Path) -> bytes:
    """A small TIFF with a few header bytes set at random (reproducibly): Pillow's reader then fails with a
    TypeError ("Missing dimensions"), not one of the errors a decoder usually raises."""
    damaged = bytearray(_encoded(_face(faces_dir).resize((64, 64)), "TIFF"))
    rng = random.Random("TIFF{}-107")
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(0, min(len(damaged), 400) if rng.random() < 0.7 else len(damaged))
        damaged[at] = rng.randrange(256)
    return bytes(damaged)


def _damaged_tiff_jpeg(faces_dir: Path) -> bytes:
    """A JPEG-compressed TIFF with damaged header bytes, whose damage libtiff reports on standard error."""
    damaged = bytearray(_encoded(_face(faces_dir), "TIFF", compression="jpeg"))
    rng = random.Random("tjpeg-9")
    for _ in range(rng.randint(1, 6)):
        damaged[rng.randrange(0, min(len(damaged), 400))] = rng.randrange(256)
    return bytes(damaged)


def _transparent(faces_dir: Path) -> bytes:
    pixels = np.asarray(_face(faces_dir).convert("RGBA")).copy()
    pixels[:, :, 3] = 0  # every pixel invisible: only the hidden colour values hold the face
    return _encoded(Image.fromarray(pixels), "PNG")


# name -> bytes of a bad photo (made from the sample photos)
PHOTOS: dict[str, Callable[[Path], bytes]] = {
    "letter.jpg": lambda _: b"Dear family, this is not a photo.\n",
    "empty.jpg": lambda _: b"",
    "cut.jpg": lambda f: london(f, "002").read_bytes()[:9000],
    "anim.gif": lambda f: _encoded(_face(f), "GIF"),
    "bomb.png": lambda _: _png_claiming(100_000, 100_000),
    "tall.png": lambda _: _encoded(Image.fromarray(np.full((1, 49_000), 128, np.uint8)), "PNG"),
    "wide.png": lambda _: _encoded(Image.fromarray(np.full((49_000, 1), 128, np.uint8)), "PNG"),
    "tiny.png": lambda f: _encoded(_face(f).resize((8, 8)), "PNG"),
    "pages.tif": lambda f: _encoded(_face(f), "TIFF", save_all=True, append_images=[_face(f).rotate(90)]),
    "frames.png": lambda f: _encoded(_face(f), "PNG", save_all=True, append_images=[_face(f).rotate(90)]),
    "frames.webp": lambda f: _encoded(_face(f), "WEBP", save_all=True, append_images=[_face(f).rotate(90)]),
    "clear.png": _transparent,
    "bad_idat.png": lambda f: _flip_crc(_encoded(_face(f), "PNG"), b"IDAT"),
    "bad_ihdr.png": lambda f: _flip_crc(_encoded(_face(f), "PNG"), b"IHDR"),
    "no_iend.png": lambda f: _without_iend(_encoded(_face(f), "PNG")),
    "half.png": lambda f: (lambda d: d[: len(d) // 2])(_encoded(_face(f), "PNG")),
    "half.tif": lambda f: (lambda d: d[: len(d) // 2])(_encoded(_face(f), "TIFF")),
    "junk.jpg": lambda _: b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8,
    "junk.bmp": lambda _: b"BM" + bytes(range(256)) * 8,
    # a damaged TIFF header that Pillow's TIFF reader fails on with a TypeError ("Missing dimensions"), and a
    # JPEG-compressed TIFF whose damage libtiff reports on the process's standard error itself
    "bad_header.tif": _damaged_tiff,
    "bad_jpeg.tif": _damaged_tiff_jpeg,
}


# -- bad manifests --------------------------------------------------------------------------------------
HEADER = "reference_id,photo,name,source,supplied_by,legal_basis"


def _row(ident: str, photo: str, name: str = "Bea") -> str:
    return f"{ident},{photo},{name},family,a sister,family request"


def _manifest(faces_dir: Path, *lines: str, header: str = HEADER) -> bytes:
    photo = str(london(faces_dir, "003"))
    return "\n".join([header, *(line.replace("{photo}", photo) for line in lines)]).encode() + b"\n"


MANIFESTS: dict[str, Callable[[Path], bytes]] = {
    # an opening quote never closed: it would swallow the rows after it
    "open_quote.csv": lambda f: _manifest(
        f, _row("R2", "{photo}", '"Bea'), _row("R3", "{photo}"), _row("R4", "{photo}")
    ),
    # ... closed by the quote of a later row
    "late_quote.csv": lambda f: _manifest(f, _row("R2", "{photo}", '"Bea'), _row("R3", "{photo}", '"Cai"')),
    "twice.csv": lambda f: _manifest(f, _row("R2", "{photo}") + ",Eve", header=HEADER + ",name"),
    "unnamed.csv": lambda f: _manifest(f, _row("R2", "{photo}") + ",", header=HEADER + ","),
    "missing.csv": lambda f: _manifest(f, "R2,{photo},Bea", header="reference_id,photo,name"),
    "unknown.csv": lambda f: _manifest(f, _row("R2", "{photo}") + ",x", header=HEADER + ",facebook_url"),
    "header_only.csv": lambda f: _manifest(f),
    "blank.csv": lambda _: b"",
    "latin1.csv": lambda f: _manifest(f, _row("R2", "{photo}", "Bea")).replace(b"Bea", "Béa".encode("latin-1")),
}


# -- the table ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bad:
    """One bad input: the command line (``{ws}``, ``{tmp}``, ``{good}`` and ``{noface}`` filled in), the
    exit code and a pattern the one error line must match. ``env`` sets environment variables."""

    args: tuple[str, ...]
    code: int
    pattern: str
    env: dict[str, str] = field(default_factory=dict)


def ref_add(*args: str, photo: str = "{good}") -> tuple[str, ...]:
    return ("reference", "add", "R2", photo, "--name", "Bea", *PROV, *args)


def case_add(*args: str, photo: str = "{good}", case_id: str = "C2") -> tuple[str, ...]:
    return ("case", "add", case_id, photo, *args)


def imported(manifest: str, *args: str) -> tuple[str, ...]:
    return ("reference", "import", f"{{tmp}}/{manifest}", *args)


TABLE: dict[str, Bad] = {
    # photo files: each names the file
    "text renamed .jpg": Bad(case_add(photo="{tmp}/letter.jpg"), 1, r"letter\.jpg: not an image"),
    "reference born after it was last seen, by an update": Bad(
        ("reference", "update", "R1", "--birth-year", "2020", "--last-seen-on", "2010-01-01"),
        1,
        r"--last-seen-on: 2010-01-01 is before the birth year 2020$",
    ),
    "escape in a conclusion's reasons": Bad(
        ("identification", "propose", "C1", "R1", "--reasons", "ok\x1b[31mRED"),
        1,
        r"--reasons: holds U\+001B, a control or format character$",
    ),
    "right-to-left override in an erasure's reason": Bad(
        ("case", "delete", "C1", "--reason", "r\u202eX"), 1, r"--reason: holds U\+202E RIGHT-TO-LEFT OVERRIDE"
    ),
    "escape in a photo's file name": Bad(
        case_add(photo="{tmp}/e\x1b[31mred.jpg"),
        1,
        r"e\\x1b\[31mred\.jpg': the file name holds U\+001B, a control or format character; rename the file$",
    ),
    # refused before any photo is analysed: the letter is not even looked at
    "the same photo twice": Bad(
        ("case", "add", "C2", "{tmp}/letter.jpg", "{good}", "{good}"),
        1,
        r"003_neutral\.jpg: the same photo is given twice$",
    ),
    "photo name not UTF-8": Bad(
        case_add(photo="{tmp}/bad\udcff.jpg"), 1, r"argument 4 \(.*bad\\xff\.jpg\) is not UTF-8 text: rename the file"
    ),
    "photo name too long": Bad(
        case_add(photo="{tmp}/" + "a" * 300 + ".jpg"), 1, r"a{300}\.jpg: cannot be read \(File name too long\)$"
    ),
    "tiff with a damaged header": Bad(case_add(photo="{tmp}/bad_header.tif"), 1, r"bad_header\.tif: (damaged|not a)"),
    "tiff with damaged jpeg data": Bad(case_add(photo="{tmp}/bad_jpeg.tif"), 1, r"bad_jpeg\.tif: (damaged|not a)"),
    "zero bytes": Bad(case_add(photo="{tmp}/empty.jpg"), 1, r"empty\.jpg: empty file \(0 bytes\)"),
    "truncated jpeg": Bad(ref_add(photo="{tmp}/cut.jpg"), 1, r"cut\.jpg: damaged or truncated image"),
    "gif": Bad(case_add(photo="{tmp}/anim.gif"), 1, r"anim\.gif: unsupported image format GIF"),
    "decompression bomb": Bad(case_add(photo="{tmp}/bomb.png"), 1, r"bomb\.png: image too large"),
    "49000x1 inspected": Bad(("inspect", "{tmp}/tall.png"), 1, r"tall\.png: 49000x1 pixels, too small to show a face"),
    "1x49000 inspected": Bad(("inspect", "{tmp}/wide.png"), 1, r"wide\.png: 1x49000 pixels, too small"),
    "49000x1 case photo": Bad(case_add(photo="{tmp}/tall.png"), 1, r"tall\.png: 49000x1 pixels, too small"),
    "8x8 photo": Bad(ref_add(photo="{tmp}/tiny.png"), 1, r"tiny\.png: 8x8 pixels, too small"),
    "multi-page tiff": Bad(ref_add(photo="{tmp}/pages.tif"), 1, r"pages\.tif: several images in one TIFF file"),
    "multi-page tiff inspected": Bad(("inspect", "{tmp}/pages.tif"), 1, r"pages\.tif: several images in one TIFF file"),
    "animated png": Bad(case_add(photo="{tmp}/frames.png"), 1, r"frames\.png: several images in one PNG file"),
    "animated webp": Bad(case_add(photo="{tmp}/frames.webp"), 1, r"frames\.webp: several images in one WEBP file"),
    "fully transparent png": Bad(ref_add(photo="{tmp}/clear.png"), 1, r"clear\.png: fully transparent"),
    "transparent case photo": Bad(case_add(photo="{tmp}/clear.png"), 1, r"clear\.png: fully transparent"),
    "png idat crc": Bad(ref_add(photo="{tmp}/bad_idat.png"), 1, r"bad_idat\.png: damaged image \(PNG chunk IDAT"),
    "png idat crc inspected": Bad(("inspect", "{tmp}/bad_idat.png"), 1, r"bad_idat\.png: damaged image"),
    "png ihdr crc": Bad(case_add(photo="{tmp}/bad_ihdr.png"), 1, r"bad_ihdr\.png: (not a readable|damaged) image"),
    "png without iend": Bad(case_add(photo="{tmp}/no_iend.png"), 1, r"no_iend\.png: damaged or truncated image"),
    "half a png": Bad(case_add(photo="{tmp}/half.png"), 1, r"half\.png: damaged or truncated image"),
    "half a tiff": Bad(case_add(photo="{tmp}/half.tif"), 1, r"half\.tif: (damaged or truncated|not a readable) image"),
    "jpeg marker then junk": Bad(case_add(photo="{tmp}/junk.jpg"), 1, r"junk\.jpg: not an image"),
    "bmp marker then junk": Bad(case_add(photo="{tmp}/junk.bmp"), 1, r"junk\.bmp: not a readable image"),
    "no such photo": Bad(case_add(photo="{tmp}/nowhere/x.jpg"), 1, r"x\.jpg: no such file"),
    "folder as photo": Bad(ref_add(photo="{tmp}"), 1, r": not a file"),
    "device as photo": Bad(case_add(photo="/dev/zero"), 1, r"/dev/zero: not a file"),
    "over the pixel limit": Bad(
        ref_add(), 1, r"003_neutral\.jpg: image too large, 400x400", env={"NOMINA_MAX_PIXELS": "100000"}
    ),
    "no face in a reference photo": Bad(ref_add(photo="{noface}"), 1, r"poppy-2447327_640\.jpg: no face detected"),
    "face number 0": Bad(ref_add("--face", "0"), 1, r"--face: 0 is not a face number"),
    "face number 7": Bad(ref_add("--face", "7"), 1, r"face 7 asked for, but 1 face\(s\) found"),
    "inspect --out gif": Bad(("inspect", "{good}", "--out", "{tmp}/x.gif"), 1, r"--out: .*x\.gif must end in"),
    # manifests refused whole: nothing imported
    "manifest quote never closed": Bad(imported("open_quote.csv"), 1, r"open_quote\.csv: line 2: .*quote not closed"),
    "manifest quote closed rows later": Bad(
        imported("late_quote.csv"), 1, r"late_quote\.csv: line 2: .*quote not closed"
    ),
    "manifest column twice": Bad(imported("twice.csv"), 1, r"twice\.csv: line 1: column name appears more than once"),
    "manifest unnamed column": Bad(imported("unnamed.csv"), 1, r"unnamed\.csv: line 1: column 7 has no name"),
    "manifest missing columns": Bad(imported("missing.csv"), 1, r"missing\.csv: missing column\(s\) source"),
    "manifest unknown column": Bad(imported("unknown.csv"), 1, r"unknown\.csv: unknown column\(s\) facebook_url"),
    "manifest header only": Bad(imported("header_only.csv"), 1, r"header_only\.csv: no rows"),
    "manifest empty": Bad(imported("blank.csv"), 1, r"blank\.csv: no rows"),
    "manifest not utf-8": Bad(imported("latin1.csv"), 1, r"latin1\.csv: not a UTF-8 text file"),
    "manifest missing": Bad(imported("nope.csv"), 1, r"nope\.csv: no such file"),
    "manifest is a folder": Bad(("reference", "import", "{tmp}"), 1, r": not a file"),
    "failures file in /proc": Bad(
        imported("good.csv", "--failures", "/proc/x.csv"), 1, r"--failures: /proc/x\.csv: cannot be written"
    ),
    "failures file a folder": Bad(imported("good.csv", "--failures", "{tmp}"), 1, r"--failures: .*: is a folder"),
    "failures file in no folder": Bad(
        imported("good.csv", "--failures", "{tmp}/no/x.csv"), 1, r"--failures: .*x\.csv: no such folder"
    ),
    "failures file a device": Bad(
        imported("good.csv", "--failures", "/dev/zero"), 1, r"--failures: /dev/zero: not a regular file"
    ),
    # fields: each names its option
    "birth year 1850": Bad(ref_add("--birth-year", "1850"), 1, r"--birth-year: 1850 is not a plausible year"),
    "birth year next year": Bad(
        ref_add("--birth-year", str(date.today().year + 1)), 1, r"--birth-year: \d+ is not a plausible year"
    ),
    "birth year huge": Bad(ref_add("--birth-year", "9" * 40), 1, r"--birth-year: 9+ is not a plausible year"),
    "last seen tomorrow": Bad(ref_add("--last-seen-on", TOMORROW), 1, r"--last-seen-on: .* is in the future"),
    "last seen as 20200101": Bad(ref_add("--last-seen-on", "20200101"), 1, r"--last-seen-on: '20200101' is not a date"),
    "last seen as ISO week": Bad(ref_add("--last-seen-on", "2020-W01-1"), 1, r"--last-seen-on: '2020-W01-1' is not a"),
    "last seen 31/12/2020": Bad(ref_add("--last-seen-on", "31/12/2020"), 1, r"'31/12/2020' is not a date \(expected"),
    "last seen before birth": Bad(
        ref_add("--birth-year", "1990", "--last-seen-on", "1985-06-01"),
        1,
        r"--last-seen-on: 1985-06-01 is before the birth year 1990",
    ),
    "photo taken tomorrow": Bad(ref_add("--photo-date", TOMORROW), 1, r"--photo-date: .* is in the future"),
    "case found tomorrow": Bad(case_add("--found-on", TOMORROW), 1, r"--found-on: .* is in the future"),
    "case found 30 February": Bad(case_add("--found-on", "2024-02-30"), 1, r"--found-on: '2024-02-30' is not a date"),
    "case found with a time": Bad(case_add("--found-on", "2020-01-01T10:00"), 1, r"--found-on: '2020-01-01T10:00' is"),
    "case found in Arabic digits": Bad(case_add("--found-on", "٢٠٢٠-٠١-٠١"), 1, r"--found-on: .* is not a date"),
    "retain until the past": Bad(ref_add("--retain-until", "2000-01-01"), 1, r"--retain-until: 2000-01-01 is in the"),
    "retain until 20990101": Bad(ref_add("--retain-until", "20990101"), 1, r"--retain-until: '20990101' is not a date"),
    "sex robot": Bad(ref_add("--sex", "robot"), 1, r"--sex: 'robot' is not one of female, male, other, unknown"),
    "case kind": Bad(case_add("--kind", "unknown"), 1, r"--kind: 'unknown' is not one of deceased, living"),
    "blank name": Bad(("reference", "add", "R2", "{good}", "--name", "  ", *PROV), 1, r"--name: required"),
    "name with an escape": Bad(
        ("reference", "add", "R2", "{good}", "--name", "Bea\x1b[2J", *PROV), 1, r"--name: holds U\+001B"
    ),
    "name with a right-to-left override": Bad(
        ("reference", "add", "R2", "{good}", "--name", "Bea\u202eaeB", *PROV), 1, r"--name: holds U\+202E"
    ),
    "supplied by with a bell": Bad(
        (
            "reference",
            "add",
            "R2",
            "{good}",
            "--name",
            "Bea",
            "--source",
            "family",
            "--supplied-by",
            "x\x07",
            "--legal-basis",
            "y",
        ),
        1,
        r"--supplied-by: holds U\+0007",
    ),
    "notes with a line separator": Bad(case_add("--notes", "a\u2028b"), 1, r"--notes: holds U\+2028 LINE SEPARATOR"),
    "place with a zero-width space": Bad(case_add("--found-at", "Ko\u200bs"), 1, r"--found-at: holds U\+200B"),
    # ids
    "id with a zero-width space": Bad(
        ("reference", "add", "R1\u200b", "{good}", "--name", "Bea", *PROV),
        1,
        r"reference_id: 'R1\\u200b' holds U\+200B",
    ),
    "id with a combining grapheme joiner": Bad(case_add(case_id="C2\u034f"), 1, r"case_id: .* holds U\+034F COMBINING"),
    "user name with a variation selector": Bad(
        ("user", "add", "vi\ufe0fc", "--role", "verifier"), 1, r"user: .* holds U\+FE0F VARIATION SELECTOR-16"
    ),
    "user name with a Hangul filler": Bad(
        ("user", "add", "vic\u3164tor", "--role", "verifier"), 1, r"user: .* holds U\+1160 HANGUL JUNGSEONG FILLER"
    ),
    "id with a slash": Bad(
        ("reference", "add", "MP/2024/17", "{good}", "--name", "Bea", *PROV),
        1,
        r"reference_id: 'MP/2024/17' holds '/', which a web address reads as a separator; write it as '-'",
    ),
    "id of two dots": Bad(
        case_add(case_id=".."), 1, r"case_id: '\.\.' is not an id \(a web address reads it as a folder\)"
    ),
    "id with a right-to-left override": Bad(case_add(case_id="C\u202e2"), 1, r"case_id: 'C\\u202e2' holds U\+202E"),
    "id with an ANSI escape": Bad(case_add(case_id="C\x1b[31m2"), 1, r"case_id: 'C\\x1b\[31m2' holds U\+001B"),
    "id with a space": Bad(case_add(case_id="C 2"), 1, r"case_id: 'C 2' must be a short id without spaces"),
    "id with a no-break space": Bad(case_add(case_id="C\u00a02"), 1, r"case_id: 'C 2' must be a short id without"),
    "id of 10,000 characters": Bad(
        ("reference", "add", LONG_ID, "{good}", "--name", "Bea", *PROV),
        1,
        r"reference_id: 'R{70,80}… is too long for an id \(10,000 characters; at most 200\)$",
    ),
    "id full-width lookalike": Bad(
        ("reference", "add", "\uff32\uff11", "{good}", "--name", "Bea", *PROV), 1, r"reference R1: already exists"
    ),
    "case id full-width lookalike": Bad(case_add(case_id="\uff23\uff11"), 1, r"case C1: already exists"),
    "case id taken": Bad(case_add(case_id="C1"), 1, r"case C1: already exists"),
    "user name with an escape": Bad(("user", "add", "b\x1b[0m", "--role", "examiner"), 1, r"user: 'b\\x1b\[0m' holds"),
    "search id too big for the database": Bad(
        ("search", "show", "1180591620717411303424"), 1, r"search_id: 1180591620717411303424 is not a record number"
    ),
    "search id 0": Bad(("search", "show", "0"), 1, r"search_id: 0 is not a record number"),
    "lookup of an id with an escape": Bad(("case", "show", "C\x1b[2J"), 1, r"^error: case C\\x1b\[2J: no such case$"),
    "lookup of an id with an override": Bad(
        ("reference", "show", "R\u202e9"), 1, r"^error: reference R\\u202e9: no such reference$"
    ),
    "lookup of a huge id": Bad(("case", "show", "C" * 10_000), 1, r"^error: case C+…$"),
    # options the command-line parser refuses (exit 2)
    "search id not a number": Bad(("search", "show", "abc"), 2, r"'search_id'.* valid integer"),
    "birth year not a number": Bad(ref_add("--birth-year", "abc"), 2, r"'--birth-year'.* valid integer"),
    "unknown option": Bad(case_add("--colour", "red"), 2, r"No such option: --colour"),
    "missing required option": Bad(("reference", "add", "R2", "{good}", "--name", "Bea"), 2, r"Missing option"),
    # workspace settings
    "retention of 100000 years": Bad(
        ("config", "retention_years", "100000"),
        1,
        r"retention_years: '100000' is more than the largest value accepted, 150",
    ),
    "retention of 151 years": Bad(("config", "retention_years", "151"), 1, r"retention_years: '151' is more than"),
    "retention not a number": Bad(
        ("config", "retention_years", "ten"), 1, r"retention_years: 'ten' is not a valid int"
    ),
    "retention of 5000 digits": Bad(
        ("config", "retention_years", "9" * 5000), 1, r"retention_years: '9{70,80}'\.\.\. is not a valid int$"
    ),
    "quality gate lax": Bad(("config", "quality_gate", "lax"), 1, r"quality_gate: 'lax' is not one of off, standard"),
    "no such workspace setting": Bad(("config", "colour", "red"), 1, r"colour: not a workspace setting"),
    # outputs that would destroy the workspace or what the command reads
    "failures over the database": Bad(
        ("reference", "import", "{tmp}/missing.csv", "--failures", "{ws}/nomina.db"),
        1,
        r"--failures: .*nomina\.db is inside the workspace folder .*; write it elsewhere$",
    ),
    "failures over the manifest": Bad(
        ("reference", "import", "{tmp}/missing.csv", "--failures", "{tmp}/missing.csv"),
        1,
        r"--failures: .*missing\.csv is the file this command reads; write it elsewhere$",
    ),
    "export over the database": Bad(
        ("export", "identifications", "--out", "{ws}/nomina.db"),
        1,
        r"--out: .*nomina\.db is inside the workspace folder",
    ),
    "annotated copy over the photo": Bad(
        ("inspect", "{tmp}/letter.jpg", "--out", "{tmp}/letter.jpg"), 1, r"--out: .*letter\.jpg is the file this"
    ),
    # machine settings and workspace folders
    "max pixels not a number": Bad(
        case_add(), 1, r"setting NOMINA_MAX_PIXELS: 'lots' is not a valid int", env={"NOMINA_MAX_PIXELS": "lots"}
    ),
    # a detection copy 1 px long would be searched in 160,000 tiles of 1 px: out of range, not a hang
    "detection size 1": Bad(
        case_add(),
        1,
        r"setting NOMINA_DETECTION_SIZE: '1' must be at least 160 and at most 8,192$",
        env={"NOMINA_DETECTION_SIZE": "1"},
    ),
    "detection threshold nan": Bad(
        case_add(),
        1,
        r"setting NOMINA_DETECTION_THRESHOLD: 'nan' must be at least 0.01 and at most 1$",
        env={"NOMINA_DETECTION_THRESHOLD": "nan"},
    ),
    "no workers": Bad(case_add(), 1, r"setting NOMINA_WORKERS: '0' must be at least 1", env={"NOMINA_WORKERS": "0"}),
    "negative age gap": Bad(
        case_add(), 1, r"setting NOMINA_AGE_GAP_YEARS: '-1' must be at least 0", env={"NOMINA_AGE_GAP_YEARS": "-1"}
    ),
    "orientation search sideways": Bad(
        case_add(),
        1,
        r"NOMINA_ORIENTATION_SEARCH: 'sideways' is not one of",
        env={"NOMINA_ORIENTATION_SEARCH": "sideways"},
    ),
    "no such workspace": Bad(("case", "list", "-w", "{tmp}/nowhere"), 1, r"nowhere: no such workspace folder"),
    "folder without a database": Bad(("case", "list", "-w", "{tmp}"), 1, r"not a Nomina workspace \(no nomina\.db"),
}


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> Path:
    """Every bad photo and manifest of the table, and one good manifest, made once for the module."""
    folder = tmp_path_factory.mktemp("bad_inputs")
    for name, make in {**PHOTOS, **MANIFESTS}.items():
        (folder / name).write_bytes(make(faces_dir))
    (folder / "good.csv").write_bytes(_manifest(faces_dir, _row("R2", "{photo}")))
    return folder


def _filled(args: tuple[str, ...], ws: Path, folder: Path, faces_dir: Path) -> list[str]:
    values = {
        "{ws}": str(ws),
        "{tmp}": str(folder),
        "{good}": str(london(faces_dir, "003")),
        "{noface}": str(faces_dir / "noface" / "poppy-2447327_640.jpg"),
    }
    filled = []
    for arg in args:
        for key, value in values.items():
            arg = arg.replace(key, value)
        filled.append(arg)
    return filled


def error_lines(err: str) -> list[str]:
    """The lines that report an error: Nomina's `error: ...`, the parser's `Error: ...`."""
    return [line for line in err.splitlines() if line.lower().startswith("error:")]


@pytest.mark.parametrize("name", list(TABLE))
def test_bad_input(name, cli_ws, bad_files, faces_dir, capsys, monkeypatch):
    bad = TABLE[name]
    for key, value in bad.env.items():
        monkeypatch.setenv(key, value)
    args = _filled(bad.args, cli_ws, bad_files, faces_dir)
    before = snapshot(cli_ws)
    if "-w" not in args and args[0] != "inspect":  # inspect reads a photo only
        args += ["-w", str(cli_ws)]
    code, out, err = run(capsys, *args)
    assert code == bad.code, err
    lines = error_lines(err)
    assert len(lines) == 1, err
    if bad.code == 1:  # Nomina's errors are one line and nothing else
        assert [line for line in err.splitlines() if line.strip()] == lines, err
    assert re.search(bad.pattern, lines[0]), lines[0]
    assert all(c.isprintable() for c in err.replace("\n", "")), repr(err)  # nothing raw reaches the terminal
    assert len(lines[0]) < 600
    assert snapshot(cli_ws) == before


def test_the_table_is_long_enough():
    assert len(TABLE) >= 60


# -- the holes, one test each -----------------------------------------------------------------------
def test_a_hyphen_lookalike_finds_the_existing_id(cli_ws, faces_dir, capsys):
    photo = london(faces_dir, "003")
    assert run(capsys, "case", "add", "PM-7", photo, "-w", cli_ws)[0] == 0
    before = snapshot(cli_ws)
    for lookalike in ("PM\u20107", "PM\u20117", "PM\u20137", "PM\u22127", "PM\uff0d7"):  # hyphen, dashes, minus
        code, _, err = run(capsys, "case", "add", lookalike, photo, "-w", cli_ws)
        assert code == 1
        assert error_lines(err) == ["error: case PM-7: already exists"]
    assert snapshot(cli_ws) == before


def test_a_read_only_workspace_says_so(cli_ws, capsys, monkeypatch, database_engine):
    before = snapshot(cli_ws)
    # the database file on SQLite; on PostgreSQL the folder keeps the photo store
    target = cli_ws / ("nomina.db" if database_engine == "sqlite" else "photos")
    if os.geteuid() == 0:  # root writes anywhere: make the check see what another user would
        real = os.access
        monkeypatch.setattr(
            os,
            "access",
            lambda p, mode, **kw: False if mode & os.W_OK and Path(p) == target else real(p, mode, **kw),
        )
    else:
        target.chmod(0o500 if target.is_dir() else 0o400)
    code, _, err = run(capsys, "case", "list", "-w", cli_ws)
    if target.is_dir() and os.geteuid() != 0:
        target.chmod(0o700)
    assert code == 1
    assert error_lines(err) == [f"error: {target}: read-only; Nomina must be able to write to its workspace"]
    assert snapshot(cli_ws) == before


def test_retention_years_up_to_150_is_kept(cli_ws, capsys):
    assert run(capsys, "config", "retention_years", "150", "-w", cli_ws)[0] == 0
    code, out, _ = run(capsys, "config", "retention_years", "--json", "-w", cli_ws)
    assert '"retention_years": 150' in out


def test_dates_are_exactly_year_month_day():
    assert parse_date("2020-01-31", "found_on") == date(2020, 1, 31)
    assert parse_date(" 2020-01-31 ", "found_on") == date(2020, 1, 31)
    for text in ("20200131", "2020-W05-5", "2020-031", "2020-01-31T00:00", "2020-1-31", "٢٠٢٠-٠١-٣١", "2020/01/31"):
        with pytest.raises(InvalidField, match="expected YYYY-MM-DD"):
            parse_date(text, "found_on")
    with pytest.raises(InvalidField, match="found_on: .* is in the future"):
        CaseFields("C9", found_on=TOMORROW)  # type: ignore[arg-type]
    assert CaseFields("C9", found_on=date.today()).found_on == date.today()
    with pytest.raises(InvalidField, match="photo_date: .* is in the future"):
        PhotoInput(Path("x.jpg"), photo_date=TOMORROW)  # type: ignore[arg-type]


def test_years_are_digits():
    assert parse_year("1990") == 1990 and parse_year(1990) == 1990
    for bad in ("1_990", "١٩٩٠", "1990.0", True, "9" * 5000):
        with pytest.raises(InvalidField, match="birth_year: .* is not a (plausible )?year") as caught:
            parse_year(bad)  # type: ignore[arg-type]
        assert len(str(caught.value)) < 120


def test_text_is_normalised_and_keeps_what_scripts_need():
    decomposed = "Zo\u0065\u0301"  # e + combining acute
    fields = ReferenceFields("R9", decomposed, notes="first line\r\nsecond line")
    assert fields.name == "Zo\u00e9"  # one composed character
    assert fields.notes == "first line\nsecond line"  # line breaks stay in notes
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # a zero-width non-joiner inside a word
    assert ReferenceFields("R9", persian).name == persian
    assert Provenance("family", "a brother", "family request", consent="given").consent == "given"
    with pytest.raises(InvalidField, match="last_seen_at: holds U\\+000A"):
        ReferenceFields("R9", "Bea", last_seen_at="two\nlines")
    with pytest.raises(InvalidField, match="name: holds U\\+2066"):
        ReferenceFields("R9", "Bea\u2066")


def test_ids_are_normalised():
    assert ReferenceFields("\uff32\uff19", "Bea").id == "R9"  # full-width letters
    assert CaseFields("PM\u20107").id == "PM-7"
    with pytest.raises(InvalidField, match="case_id: 'PM\\\\u200d7' holds U\\+200D"):
        CaseFields("PM\u200d7")  # a joiner is kept in names, never in ids
