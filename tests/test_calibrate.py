"""`nomina calibrate` on real photos, and the likelihood ratios it puts into searches, compare and evaluate."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import PROV, assert_one_error_line, build_once, copy_workspace, london, run, snapshot

from nomina import Workspace, calibration
from nomina.errors import ModelMismatch

pytestmark = pytest.mark.slow  # calibrations fitted on the sample photos: about 4 s; CI runs them


def people(faces_dir: Path, first: int, count: int) -> list[str]:
    """London identities (their numbers have gaps), from the first-th in sorted order."""
    return sorted(p.name for p in (faces_dir / "london").iterdir() if p.is_dir())[first : first + count]


def make_dataset(root: Path, faces_dir: Path) -> Path:
    for ident in people(faces_dir, 0, 24):
        folder = root / f"P{ident}"
        folder.mkdir(parents=True)
        (folder / "a.jpg").symlink_to(london(faces_dir, ident))
        (folder / "b.jpg").symlink_to(london(faces_dir, ident, "smiling"))
    return root


@pytest.fixture()
def dataset(tmp_path: Path, faces_dir: Path) -> Path:
    return make_dataset(tmp_path / "calibration-photos", faces_dir)


@pytest.fixture(scope="session")
def calibrated_template(tmp_path_factory, faces_dir: Path) -> Path:
    dataset = make_dataset(tmp_path_factory.mktemp("calibrate") / "calibration-photos", faces_dir)

    def build(ws: Path) -> None:
        with pytest.MonkeyPatch.context() as monkeypatch:
            monkeypatch.setenv("NOMINA_ORIENTATION_SEARCH", "off")  # as in the tests (see calibrated)
            assert run(None, "init", ws)[0] == 0
            code, out, err = run(None, "calibrate", dataset, "--json", "-w", ws)
            assert code == 0, err
            stored = json.loads(out)
            assert stored["id"] == 1
            c = stored["calibration"]
            assert (c["genuine"], c["impostor"]) == (24, 48 * 47 // 2 - 24)
            assert c["data"]["dataset"] == str(dataset.resolve()) and c["data"]["identities"] == 24
            assert c["cllr"] < 0.5 and c["cllr_min"] <= c["cllr"] + 1e-9
            assert c["bounds"][1] <= math.log10(c["impostor"] + 1)  # no LR stronger than the data can support
            for ident, born in (("061", "1990"), ("062", "1990"), ("063", "2001")):
                code, _, err = run(
                    None,
                    *("reference", "add", f"MP-{ident}", london(faces_dir, ident), "--name", f"Person {ident}", *PROV),
                    *("--birth-year", born, "--photo-date", "2008-06-01", "-w", ws),
                )
                assert code == 0, err
            smiling = london(faces_dir, "063", "smiling")
            assert run(None, "case", "add", "UP-1", smiling, "--found-on", "2026-03-02", "-w", ws)[0] == 0

    return build_once(tmp_path_factory, "calibrated", build)


@pytest.fixture()
def calibrated(calibrated_template: Path, tmp_path: Path, monkeypatch) -> Path:
    """A workspace calibrated on 24 people, holding three references of other people and one case; made
    with the command line once per session, copied for each test (tmp_path / "ws")."""
    monkeypatch.setenv("NOMINA_ORIENTATION_SEARCH", "off")  # upright studio photos: a quicker analysis
    return copy_workspace(calibrated_template, tmp_path)


def test_searches_give_calibrated_likelihood_ratios_with_their_verbal_equivalent(calibrated, capsys):
    code, out, _ = run(capsys, "search", "UP-1", "--json", "-w", calibrated)
    data = json.loads(out)
    assert data["calibration"]["id"] == 1 and "24 same-person" in data["calibration"]["description"]
    first, second = data["candidates"][:2]
    assert first["reference_id"] == "MP-063"
    assert first["evidence"]["log10_lr"] > 1
    assert first["evidence"]["verbal"].endswith("support for the same person rather than different people")
    assert second["evidence"]["log10_lr"] < 0
    assert second["evidence"]["verbal"].endswith("for different people rather than the same person")
    assert math.isclose(first["evidence"]["lr"], 10 ** first["evidence"]["log10_lr"], rel_tol=0.05)
    code, table, _ = run(capsys, "search", "show", str(data["search_id"]), "-w", calibrated)
    assert "LR: likelihood ratio" in table and "Calibration 1:" in table and "%" not in table


def test_results_warn_of_years_between_photos_and_of_childrens_photos(calibrated, capsys):
    code, out, _ = run(capsys, "search", "UP-1", "--json", "-w", calibrated)
    warnings = {c["reference_id"]: c["warnings"] for c in json.loads(out)["candidates"]}
    assert any(w.startswith("age gap: the reference photo was taken 18 years before") for w in warnings["MP-061"])
    assert not any(w.startswith("child") for w in warnings["MP-061"])  # 18 at the time of the photo
    assert any(w.startswith("child: the reference photo shows the person at about 7") for w in warnings["MP-063"])


def test_compare_gives_the_likelihood_ratio_with_a_calibrated_workspace_only(calibrated, faces_dir, capsys):
    a, b = london(faces_dir, "064"), london(faces_dir, "064", "smiling")
    code, out, _ = run(capsys, "compare", a, b, "-w", calibrated, "--json")
    data = json.loads(out)
    assert data["evidence"]["log10_lr"] > 0 and data["calibration"]["id"] == 1
    code, out, _ = run(capsys, "compare", a, b)  # no workspace here: a similarity only
    assert "LR" not in out and "Uncalibrated" in out


@pytest.mark.slow
def test_evaluate_with_a_calibrated_workspace_measures_the_calibration(calibrated, tmp_path, faces_dir, capsys):
    other = tmp_path / "other-people"
    for ident in people(faces_dir, 60, 20):
        (other / ident).mkdir(parents=True)
        (other / ident / "a.jpg").symlink_to(london(faces_dir, ident))
        (other / ident / "b.jpg").symlink_to(london(faces_dir, ident, "smiling"))
    out_dir = tmp_path / "eval"
    code, out, err = run(capsys, "evaluate", other, "-w", calibrated, "--json", "--out", out_dir)
    assert code == 0, err
    c = json.loads(out)["calibration"]
    assert c["id"] == 1 and c["same_dataset"] is False and c["notes"] == []
    assert (c["genuine_pairs"], c["impostor_pairs"]) == (20, 40 * 39 // 2 - 20)
    assert 0 <= c["cllr_min"] <= c["cllr"] < 1
    assert 0 <= c["misleading"]["genuine_lr_below_1"] <= 0.1
    assert (out_dir / "tippett.png").stat().st_size > 1000
    assert "Calibrated evidence" in (out_dir / "report.html").read_text()


def test_bad_calibrate_inputs_leave_the_workspace_unchanged(calibrated, dataset, tmp_path, capsys):
    before = snapshot(calibrated)
    for args, pattern in [
        (("--method", "bayes"), r"--method: 'bayes' is not one of logistic, pav"),
        (("--folds", "1"), r"--folds: 1 must be at least 2"),
    ]:
        code, _, err = run(capsys, "calibrate", dataset, *args, "-w", calibrated)
        assert code == 1
        assert_one_error_line(err, pattern)
    code, _, err = run(capsys, "calibrate", tmp_path / "nowhere", "-w", calibrated)
    assert code == 1
    assert_one_error_line(err, r"nowhere: no such folder")
    few = tmp_path / "few"
    for ident in ("001", "002"):
        (few / ident).mkdir(parents=True)
        (few / ident / "a.jpg").symlink_to(dataset / f"P{ident}" / "a.jpg")
        (few / ident / "b.jpg").symlink_to(dataset / f"P{ident}" / "b.jpg")
    code, _, err = run(capsys, "calibrate", few, "-w", calibrated)
    assert code == 1
    assert_one_error_line(err, r"few: too few genuine \(same-person\) scores to calibrate: 2")
    assert snapshot(calibrated) == before


def test_a_calibration_of_another_model_is_refused(ws):
    rng_scores = [0.1 * i for i in range(20)]
    fitted = calibration.fit(rng_scores[10:], rng_scores[:10], data={"model": {"name": "other", "files": {}}})
    with pytest.raises(ModelMismatch, match="calibration: fitted on scores of model other"):
        ws.add_calibration(fitted)
    assert ws.calibration() is None


def test_the_newest_calibration_is_used(ws: Workspace):
    identity = ws.model_identity
    one = calibration.fit([0.6, 0.7, 0.8, 0.9] * 3, [0.1, 0.2, 0.3, 0.4] * 3, data={"model": identity})
    two = calibration.fit([0.5, 0.6, 0.7, 0.8] * 3, [0.2, 0.3, 0.4, 0.5] * 3, method="pav", data={"model": identity})
    assert ws.add_calibration(one).id == 1
    assert ws.add_calibration(two).id == 2
    current = ws.calibration()
    assert current is not None and current[0] == 2 and current[1] == two
    assert [c.id for c in ws.calibrations()] == [1, 2]
