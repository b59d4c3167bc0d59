"""Reading LFW-style pairs files against a dataset folder built from the sample photos."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from nomina.errors import FileMissing, InvalidField, ManifestError
from nomina.evaluation.pairs import Pair, read_pairs

# Six people in LFW layout; the last two names carry the hyphens and dots real names have.
PEOPLE = {
    "Person_001": "001",
    "Person_002": "002",
    "Person_003": "003",
    "Person_004": "004",
    "Anne-Marie_Doe": "005",
    "A.B._Smith_Jr.": "006",
}

# Two folds of two same-person and two different-person pairs; file line numbers on the right.
LINES = [
    "2\t2",  # 1
    "Person_001\t1\t2",  # 2  fold 0, same
    "Person_002\t1\t2",  # 3
    "Person_001\t1\tPerson_003\t2",  # 4  fold 0, different
    "Person_002\t2\tPerson_004\t1",  # 5
    "Person_003\t1\t2",  # 6  fold 1, same
    "Person_004\t1\t2",  # 7
    "Anne-Marie_Doe\t1\tA.B._Smith_Jr.\t2",  # 8  fold 1, different
    "A.B._Smith_Jr.\t1\tPerson_003\t1",  # 9
]


@pytest.fixture()
def dataset(tmp_path: Path, faces_dir: Path) -> Path:
    """NAME/NAME_0001.jpg (neutral) and NAME_0002.jpg (smiling), as symlinks to the sample photos."""
    root = tmp_path / "lfw"
    for name, ident in PEOPLE.items():
        folder = root / name
        folder.mkdir(parents=True)
        for number, expression in ((1, "neutral"), (2, "smiling")):
            target = faces_dir / "london" / ident / f"{ident}_{expression}.jpg"
            assert target.is_file()
            (folder / f"{name}_{number:04d}.jpg").symlink_to(target)
    return root


def write(folder: Path, lines: list[str], end: str = "\n") -> Path:
    path = folder / "pairs.txt"
    path.write_text(end.join(lines) + end)
    return path


def photo(dataset: Path, name: str, number: int) -> Path:
    return dataset / name / f"{name}_{number:04d}.jpg"


def test_a_correct_file_parses_into_the_expected_pairs(tmp_path, dataset):
    path = write(tmp_path, [*LINES, "", "  "])  # blank lines at the end are ignored
    protocol = read_pairs(path, dataset)
    assert (protocol.path, protocol.folds, protocol.pairs_per_class) == (path, 2, 2)

    def p(name: str, number: int) -> Path:
        return photo(dataset, name, number)

    assert protocol.pairs == [
        Pair(0, p("Person_001", 1), p("Person_001", 2), True, 2),
        Pair(0, p("Person_002", 1), p("Person_002", 2), True, 3),
        Pair(0, p("Person_001", 1), p("Person_003", 2), False, 4),
        Pair(0, p("Person_002", 2), p("Person_004", 1), False, 5),
        Pair(1, p("Person_003", 1), p("Person_003", 2), True, 6),
        Pair(1, p("Person_004", 1), p("Person_004", 2), True, 7),
        Pair(1, p("Anne-Marie_Doe", 1), p("A.B._Smith_Jr.", 2), False, 8),
        Pair(1, p("A.B._Smith_Jr.", 1), p("Person_003", 1), False, 9),
    ]
    assert all(pair.a.is_file() and pair.b.is_file() for pair in protocol.pairs)
    # The photos are the sample photos the symlinks point to.
    assert protocol.pairs[0].b.resolve().name == "001_smiling.jpg"


def test_spaces_and_windows_line_ends_read_the_same(tmp_path, dataset):
    expected = read_pairs(write(tmp_path, LINES), dataset).pairs
    spaced = [" ".join(line.split("\t")) for line in LINES]
    assert read_pairs(write(tmp_path, spaced, end="\r\n"), dataset).pairs == expected


def test_a_photo_with_another_image_extension_is_found(tmp_path, dataset):
    old = photo(dataset, "Person_002", 2)
    png = old.with_suffix(".PNG")
    old.rename(png)
    protocol = read_pairs(write(tmp_path, LINES), dataset)
    assert protocol.pairs[1].b == png  # line 3: Person_002 1 2
    assert protocol.pairs[3].a == png  # line 5: Person_002 2 Person_004 1


def test_two_candidate_files_for_one_photo_are_refused(tmp_path, dataset):
    old = photo(dataset, "Person_002", 2)
    old.rename(old.with_suffix(".png"))
    (dataset / "Person_002" / "Person_002_0002.webp").symlink_to(old.with_suffix(".png"))
    path = write(tmp_path, LINES)
    with pytest.raises(InvalidField) as error:
        read_pairs(path, dataset)
    assert str(error.value).startswith(f"{path} line 3: photo Person_002_0002 is ambiguous")


def replace(line: int, text: str) -> Callable[[list[str]], list[str]]:
    def edit(lines: list[str]) -> list[str]:
        out = list(lines)
        out[line - 1] = text
        return out

    return edit


@pytest.mark.parametrize(
    ("edit", "error", "line", "words"),
    [
        pytest.param(replace(1, "2 two"), ManifestError, 1, "FOLDS PAIRS_PER_CLASS", id="bad header"),
        pytest.param(replace(1, "10"), ManifestError, 1, "FOLDS PAIRS_PER_CLASS", id="header of one number"),
        pytest.param(replace(1, "2 0"), ManifestError, 1, "at least 1", id="zero pairs per class"),
        pytest.param(lambda lines: ["1\t2", *lines[1:5]], ManifestError, 1, "needs at least 2 folds", id="one fold"),
        pytest.param(lambda lines: lines[:-1], ManifestError, 9, "ends after 7 pair lines", id="too few lines"),
        pytest.param(lambda lines: [*lines, LINES[2]], ManifestError, 10, "more pair lines", id="too many lines"),
        pytest.param(replace(3, "Person_002\t1\ttwo"), InvalidField, 3, "'two' is not a whole number", id="word"),
        pytest.param(replace(3, "Person_002\t1.0\t2"), InvalidField, 3, "'1.0' is not a whole number", id="float"),
        pytest.param(replace(3, "Person_002\t0\t2"), InvalidField, 3, "'0' is not a whole number", id="zero"),
        pytest.param(replace(3, "Person_002\t-1\t2"), InvalidField, 3, "'-1'", id="negative"),
        pytest.param(replace(7, "Person_004\t1\t3"), InvalidField, 7, "photo Person_004_0003 not found", id="photo"),
        pytest.param(replace(6, "Nobody\t1\t2"), InvalidField, 6, "photo Nobody_0001 not found", id="person"),
        pytest.param(
            replace(5, "Person_002\t1\t2"), InvalidField, 5, "a same-person line where", id="same among different"
        ),
        pytest.param(
            replace(2, "Person_001\t1\tPerson_002\t1"),
            InvalidField,
            2,
            "a different-person line where fold 1's same-person lines",
            id="different among same",
        ),
        pytest.param(replace(2, "Person_001\t1"), InvalidField, 2, "got 2 fields", id="too few fields"),
        pytest.param(replace(9, "A B C D E"), InvalidField, 9, "got 5 fields", id="too many fields"),
        pytest.param(replace(8, ""), InvalidField, 8, "got 0 fields", id="blank line inside"),
        pytest.param(
            replace(4, "Person_001\t1\tPerson_001\t2"), InvalidField, 4, "names Person_001 twice", id="same names"
        ),
        pytest.param(replace(6, "Person_003\t2\t2"), InvalidField, 6, "with itself", id="photo with itself"),
        pytest.param(replace(6, "..\t1\t2"), InvalidField, 6, "cannot be the name", id="parent folder"),
    ],
)
def test_malformed_files_name_the_file_and_the_line(tmp_path, dataset, edit, error, line, words):
    path = write(tmp_path, edit(LINES))
    with pytest.raises(error) as raised:
        read_pairs(path, dataset)
    message = str(raised.value)
    assert message.startswith(f"{path} line {line}: "), message
    assert words in message
    assert "\n" not in message


def test_a_missing_photo_names_the_folder_searched(tmp_path, dataset):
    path = write(tmp_path, replace(7, "Person_004\t1\t3")(LINES))
    with pytest.raises(InvalidField) as raised:
        read_pairs(path, dataset)
    assert str(raised.value) == f"{path} line 7: photo Person_004_0003 not found in {dataset / 'Person_004'}"


def test_a_missing_file(tmp_path, dataset):
    path = tmp_path / "nowhere.txt"
    with pytest.raises(FileMissing, match="no such file") as raised:
        read_pairs(path, dataset)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"", "empty"), (b"\n\n", "empty"), (b"2\t1\n\xff\xfe bad bytes\n", "not a UTF-8 text file")],
)
def test_unreadable_files(tmp_path, dataset, content, words):
    path = tmp_path / "pairs.txt"
    path.write_bytes(content)
    with pytest.raises(ManifestError) as raised:
        read_pairs(path, dataset)
    assert str(raised.value).startswith(f"{path}: ") and words in str(raised.value)
