"""`nomina evaluate` end to end on real photos with the real model: the numbers, the files, the cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import assert_one_error_line, london, run

from nomina import FaceAnalyzer, load_settings
from nomina.evaluation.cache import Analysis
from nomina.evaluation.dataset import scan
from nomina.evaluation.protocols import impostor_pairs
from nomina.imaging import decode_image, read_photo

PEOPLE = [f"{i:03d}" for i in range(1, 13)]  # 12 London identities, two photos each
TOP_KEYS = {"dataset", "model", "detection", "verification", "pairs", "identification", "groups", "timing"}


def lfw_name(ident: str) -> str:
    return f"Person_{ident}"


@pytest.fixture()
def dataset(tmp_path: Path, faces_dir: Path) -> Path:
    """An LFW-layout folder of symlinks: 12 people with 2 photos, 3 Canada people with 1, and one
    photo without a face as the third photo of the first person."""
    root = tmp_path / "data"
    for ident in PEOPLE:
        folder = root / lfw_name(ident)
        folder.mkdir(parents=True)
        (folder / f"{lfw_name(ident)}_0001.jpg").symlink_to(london(faces_dir, ident))
        (folder / f"{lfw_name(ident)}_0002.jpg").symlink_to(london(faces_dir, ident, "smiling"))
    for photo in sorted((faces_dir / "canada").glob("*/*.jpg"))[:3]:
        folder = root / f"Canada_{photo.parent.name}"
        folder.mkdir()
        (folder / f"Canada_{photo.parent.name}_0001.jpg").symlink_to(photo)
    noface = sorted((faces_dir / "noface").iterdir())[0]
    (root / lfw_name(PEOPLE[0]) / f"{lfw_name(PEOPLE[0])}_0003.jpg").symlink_to(noface)
    (root / lfw_name(PEOPLE[0]) / "notes.txt").write_text("not a photo")
    return root


def pairs_file(folder: Path) -> Path:
    """Two folds of three same-person and three different-person pairs, in LFW's format."""
    lines = ["2\t3"]
    for fold in range(2):
        people = PEOPLE[fold * 6 : fold * 6 + 6]
        lines += [f"{lfw_name(p)}\t1\t2" for p in people[:3]]
        lines += [f"{lfw_name(a)}\t1\t{lfw_name(b)}\t2" for a, b in zip(people[:3], people[3:], strict=True)]
    path = folder / "pairs.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def evaluate(capsys, *args) -> tuple[int, dict, str]:
    code, out, err = run(capsys, "evaluate", *args, "--json")
    return code, (json.loads(out) if out.strip() else {}), err


@pytest.mark.slow  # 3-4 s
def test_evaluate_measures_the_whole_pipeline_and_writes_the_report(dataset, tmp_path, faces_dir, capsys):
    out_dir = tmp_path / "out"
    code, m, err = evaluate(
        capsys, dataset, "--pairs", pairs_file(tmp_path), "--labels", faces_dir / "labels.csv", "--out", out_dir
    )
    assert code == 0, err
    assert set(m) == TOP_KEYS
    assert m["dataset"]["identities"] == 15 and m["dataset"]["photos"] == 28 and m["dataset"]["ignored_files"] == 1
    assert m["model"]["name"] == "sface" and len(m["model"]["files"]) == 2

    d = m["detection"]
    assert (d["photos"], d["failures"], d["no_face"]) == (28, 1, 1)
    assert d["failed_photos"][0]["photo"] == "Person_001/Person_001_0003.jpg"

    v = m["verification"]
    # genuine: 11 people x 1 pair + person 001's 3 photos -> 3 pairs; impostor: every other pair, none sampled
    assert v["genuine_pairs"] == 14
    assert v["impostor_pairs"] == 28 * 27 // 2 - 14 and v["impostor_sampling"]["all"]
    assert v["pairs_with_failures"] == {"genuine": 2, "impostor": 25}
    # 12 clean genuine pairs beat all 364 impostors; the 2 with the failed photo (-1) tie with the 25 failed
    # impostors and lose to the rest: AUC = (12 * 364 + 2 * 12.5) / (14 * 364)
    assert v["auc"] == pytest.approx((12 * 364 + 2 * 12.5) / (14 * 364), abs=1e-6)
    assert v["excluding_failures"]["auc"] == 1.0
    assert v["tar_at_far"]["0.01"] is not None and v["tar_at_far"]["0.0001"] is None  # 364 impostor pairs
    assert any("0.0001" in note for note in v["notes"])

    # Two folds of clean studio pairs are separated perfectly.
    assert m["pairs"]["folds"] == 2 and m["pairs"]["accuracy_mean"] == 1.0

    i = m["identification"]
    assert (i["gallery"], i["probes"]) == (15, 13)  # 13 = 12 smiling photos + the photo without a face
    assert i["rank"]["1"] == pytest.approx(12 / 13)  # the failed probe is a miss at every rank
    assert i["excluding_failures"]["rank"]["1"] == 1.0 and i["excluding_failures"]["probes"] == 12

    g = m["groups"]
    assert set(g) >= {"gender", "ethnicity"} and "identity" not in g and "licence" not in g
    # person 001's photo without a face has no label: 12 labelled genuine pairs, each within one gender
    assert sum(r["genuine_pairs"] for r in g["gender"].values()) == 12

    assert m["timing"]["photos_analysed"] == 28 and m["timing"]["photos_per_second"] > 0

    written = {p.name for p in out_dir.iterdir()}
    assert written == {"metrics.json", "report.html", "det.png", "scores.png", "cmc.png"}
    assert json.loads((out_dir / "metrics.json").read_text())["verification"] == v
    for png in ("det.png", "scores.png", "cmc.png"):
        assert cv2.imread(str(out_dir / png)) is not None
    html = (out_dir / "report.html").read_text()
    assert "Person_001/Person_001_0003.jpg" in html and "data:image/jpeg;base64," in html  # failure thumbnail
    assert html.count("data:image/png;base64,") == 3
    assert "never an identification" in html


@pytest.mark.slow
def test_second_run_comes_from_the_cache_and_gives_the_same_numbers(dataset, capsys):
    code, first, _ = evaluate(capsys, dataset)
    assert code == 0
    code, second, _ = evaluate(capsys, dataset)
    assert code == 0
    assert second["timing"]["photos_analysed"] == 0 and second["timing"]["photos_from_cache"] == 28
    for block in ("detection", "verification", "identification"):
        assert second[block] == first[block]
    # A changed setting is another pipeline: nothing is reused.
    code, third, _ = evaluate(capsys, dataset, "--no-cache")
    assert third["timing"]["photos_analysed"] == 28 and third["timing"]["cache"] is None


@pytest.mark.slow
def test_impostor_sample_is_seeded_and_counted(dataset, capsys):
    code, a, _ = evaluate(capsys, dataset, "--impostors", "100", "--seed", "7")
    _, b, _ = evaluate(capsys, dataset, "--impostors", "100", "--seed", "7")
    assert code == 0
    s = a["verification"]["impostor_sampling"]
    assert a["verification"]["impostor_pairs"] == 100 and s == {"available": 364, "all": False, "seed": 7}
    assert a["verification"] == b["verification"]


def test_impostor_sample_is_uniform_without_repeats(dataset):
    ds = scan(dataset)
    i7, j7, available = impostor_pairs(ds, 100, seed=7)
    i8, j8, _ = impostor_pairs(ds, 100, seed=8)
    every_i, every_j, _ = impostor_pairs(ds, 10_000, seed=7)
    assert available == 364 and len(every_i) == 364
    for i, j in ((i7, j7), (i8, j8)):
        pairs = set(zip(i.tolist(), j.tolist(), strict=True))
        assert len(pairs) == 100  # no pair twice
        assert all(a < b and ds.photos[a].identity != ds.photos[b].identity for a, b in pairs)
    assert set(zip(i7.tolist(), j7.tolist(), strict=True)) != set(zip(i8.tolist(), j8.tolist(), strict=True))


@pytest.mark.slow
def test_an_unreadable_photo_is_listed_counted_and_exits_non_zero(dataset, capsys):
    (dataset / "Person_002" / "Person_002_0003.jpg").write_bytes(b"\xff\xd8 truncated")
    code, m, err = evaluate(capsys, dataset)
    assert code == 1
    assert m["detection"]["unreadable"] == 1 and m["detection"]["failures"] == 2
    assert "Person_002/Person_002_0003.jpg" in err and "could not be read" in err


@pytest.mark.slow
def test_a_broken_link_or_a_pipe_is_a_photo_that_cannot_be_read_not_a_silent_gap(dataset, tmp_path, capsys):
    (dataset / "Person_003" / "Person_003_0003.jpg").symlink_to(tmp_path / "moved-away.jpg")
    os.mkfifo(dataset / "Person_003" / "Person_003_0004.jpg")  # never opened: it would wait for a writer
    code, m, err = evaluate(capsys, dataset)
    assert code == 1
    assert m["detection"]["unreadable"] == 2 and m["dataset"]["photos"] == 30
    assert "Person_003_0003.jpg" in err and "Person_003_0004.jpg: not a file" in err


def test_the_face_nearest_the_centre_is_used(faces_dir, model):
    a = cv2.imread(str(london(faces_dir, "001")))
    b = cv2.imread(str(london(faces_dir, "002")))
    small = cv2.resize(b, (200, 200))
    canvas = np.full((800, 1400, 3), 200, np.uint8)
    canvas[200:600, 500:900] = a  # person 001 in the middle
    canvas[20:220, 20:220] = small  # person 002 in a corner
    ok, buf = cv2.imencode(".png", canvas)
    image = decode_image(buf.tobytes(), "group.png", 10**8)
    analyzer = FaceAnalyzer(model, load_settings(environ={}))
    face, found = analyzer.central_face(image)
    alone, _ = analyzer.central_face(decode_image(read_photo(london(faces_dir, "001")), "a", 10**8))
    assert found == 2 and face is not None and alone is not None
    assert float(face.embedding @ alone.embedding) > 0.8


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{missing}"], "no such folder"),
        (["{data}", "--pairs", "{missing}"], "no such file"),
        (["{data}", "--labels", "{bad_labels}"], "no photo column"),
        (["{data}", "--out", "{a_file}"], "exists and is not a folder"),
        (["{data}", "--impostors", "0"], "--impostors"),
    ],
)
def test_bad_evaluate_inputs_are_one_line_errors(dataset, tmp_path, capsys, args, message):
    (tmp_path / "labels.csv").write_text("who,gender\nx,female\n")
    (tmp_path / "file.txt").write_text("x")
    names = {
        "missing": tmp_path / "nowhere",
        "data": dataset,
        "bad_labels": tmp_path / "labels.csv",
        "a_file": tmp_path / "file.txt",
    }
    code, out, err = run(capsys, "evaluate", *[a.format(**names) for a in args])
    assert code == 1
    assert_one_error_line(err, message)
    assert out == ""


def test_a_bad_pairs_line_is_named_before_any_photo_is_analysed(dataset, tmp_path, capsys, monkeypatch):
    path = pairs_file(tmp_path)
    lines = path.read_text().splitlines()
    lines[3] = "Person_001\t1\t9"
    path.write_text("\n".join(lines) + "\n")
    import nomina.evaluation.runner as runner

    monkeypatch.setattr(runner, "analyse_dataset", lambda *a, **k: pytest.fail("analysed before checking pairs"))
    code, _, err = run(capsys, "evaluate", dataset, "--pairs", path)
    assert code == 1
    assert_one_error_line(err, "line 4")


@pytest.mark.slow
def test_evaluate_human_summary(dataset, capsys):
    code, out, err = run(capsys, "evaluate", dataset)
    assert code == 0, err
    assert "Verification: 14 genuine / 364 impostor pairs" in out
    assert "rank-1 92.31%" in out


def test_labels_that_say_not_known_are_no_group_and_ages_fall_in_bands(tmp_path, faces_dir):
    from nomina.evaluation.dataset import read_labels

    london = scan(faces_dir / "london")
    rows = ["path,age,gender"]
    for k, photo in enumerate(london.photos):
        age = "NA" if k % 7 == 0 else str(18 + k % 40)
        gender = "unknown" if k % 5 == 0 else ("female" if k % 2 else "male")
        rows.append(f"{photo.name},{age},{gender}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    labels = read_labels(tmp_path / "labels.csv", london)
    assert labels.columns == ["age", "gender"]
    values = {column: {v[column] for v in labels.values.values() if column in v} for column in labels.columns}
    assert values == {"age": {"10-19", "20-29", "30-39", "40-49", "50-59"}, "gender": {"female", "male"}}
    assert labels.notes == ["age: numbers grouped in ten-year bands"]


def test_the_embedding_cache_is_its_owners_alone_whatever_the_umask(tmp_path):
    """It holds embeddings of every photo evaluated: under umask 022 it was readable by every local user."""
    import os
    import stat

    from nomina.evaluation.cache import EmbeddingCache

    old = os.umask(0o022)
    try:
        cache = EmbeddingCache(tmp_path / "cache", "p")
        cache.put("ab" * 32, Analysis("no_face", 0, "no face"))
        cache.commit()
    finally:
        os.umask(old)
    made = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert "embeddings.sqlite" in made and any(n.endswith("-wal") for n in made)
    for p in [tmp_path / "cache", *(tmp_path / "cache").iterdir()]:
        assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, (p, oct(p.stat().st_mode))


def test_no_output_file_leads_into_a_workspace_or_is_a_pipe(ws, tmp_path):
    """``evaluate --out DIR`` writes six files: a link among them into a workspace (its database) or a pipe
    is refused before any photo is analysed."""
    from nomina.errors import InvalidField
    from nomina.evaluation.report import OUTPUT_FILES, check_out_dir
    from nomina.store import DB_NAME, DB_URL_NAME

    # the database file, or on PostgreSQL the file naming the database
    database = next(ws.settings.home / n for n in (DB_NAME, DB_URL_NAME) if (ws.settings.home / n).exists())
    kept = database.read_bytes()
    for name in OUTPUT_FILES:
        out = tmp_path / name.replace(".", "-")
        out.mkdir()
        (out / name).symlink_to(database)
        with pytest.raises(InvalidField, match="inside the workspace folder"):
            check_out_dir(out)
        (out / name).unlink()
        os.mkfifo(out / name)
        with pytest.raises(InvalidField, match="not a regular file"):
            check_out_dir(out)
    assert database.read_bytes() == kept
