"""Face quality: the score falls with what harms recognition, the gate refuses poor reference photos
unless overridden (and records the override), and case faces below the gate are searched with a warning."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import PROV, assert_one_error_line, london, run, snapshot

from nomina import CaseFields, FaceAnalyzer, PhotoInput, Provenance, ReferenceFields
from nomina.errors import QualityTooLow
from nomina.imaging import decode_image
from nomina.quality import GATE_MODES, RESPONSE_BOUNDS, Quality, assess, gate

GOOD = Quality(
    detector_score=0.95,
    inter_eye_px=62.0,
    sharpness=700.0,
    brightness=130.0,
    roll=0.0,
    yaw=3.0,
    pitch=5.0,
    contrast=36.0,
    noise=2.0,
)


def test_a_clear_frontal_face_scores_100_with_no_reasons_and_passes_every_gate():
    a = assess(GOOD)
    assert a.score == pytest.approx(100.0)
    assert a.reasons == []
    assert all(gate(GOOD, mode) == [] for mode in GATE_MODES)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"inter_eye_px": 18.0}, r"small face: 18 px between the eyes"),
        ({"sharpness": 15.0}, r"blurred"),
        ({"noise": 12.0, "sharpness": 3500.0}, r"noisy: signal-to-noise 3\.0"),
        ({"contrast": 6.0, "sharpness": 30.0}, r"low contrast"),
        ({"brightness": 12.0}, r"too dark: mean grey level 12"),
        ({"brightness": 245.0}, r"too bright"),
        ({"yaw": -40.0}, r"turned 40 degrees to the side"),
        ({"pitch": 30.0}, r"tilted 30 degrees up or down"),
        ({"detector_score": 0.6}, r"uncertain face: detector score 0\.60"),
    ],
)
def test_each_defect_lowers_the_score_and_is_named(change, reason):
    import re

    q = dataclasses.replace(GOOD, **change)
    a = assess(q)
    assert a.score < 90
    assert any(re.search(reason, r) for r in a.reasons), a.reasons


def test_the_score_never_rises_as_a_defect_worsens():
    for field, values in {
        "inter_eye_px": [80, 48, 40, 30, 20, 12, 8, 4],
        "sharpness": [800, 200, 60, 20, 8, 2],
        "yaw": [0, 15, 25, 40, 55, 70],
        "noise": [1, 3, 6, 10, 20, 40],
    }.items():
        scores = [assess(dataclasses.replace(GOOD, **{field: float(v)})).score for v in values]
        assert scores == sorted(scores, reverse=True), (field, scores)


def test_strict_refuses_whatever_standard_refuses_and_more():
    rng = np.random.default_rng(5)
    for _ in range(300):
        q = dataclasses.replace(
            GOOD,
            inter_eye_px=float(rng.uniform(5, 80)),
            sharpness=float(rng.uniform(1, 900)),
            yaw=float(rng.uniform(-70, 70)),
            pitch=float(rng.uniform(-50, 50)),
            noise=float(rng.uniform(0.5, 20)),
        )
        if gate(q, "standard"):
            assert gate(q, "strict")
    assert gate(dataclasses.replace(GOOD, inter_eye_px=30.0), "standard") == []
    assert gate(dataclasses.replace(GOOD, inter_eye_px=30.0), "strict") == [
        "face too small: 30 px between the eyes (strict gate: at least 40)"
    ]
    assert gate(dataclasses.replace(GOOD, inter_eye_px=3.0), "off") == []


def test_a_face_marked_by_hand_says_so_and_is_scored_without_pose_or_detector():
    q = dataclasses.replace(GOOD, detector_score=None, yaw=None, pitch=None)
    a = assess(q)
    assert a.score == pytest.approx(100.0)
    assert a.reasons == ["marked by hand: no detector score or pose"]


def test_faces_stored_before_contrast_and_noise_were_measured_are_still_scored():
    old = dataclasses.replace(GOOD, contrast=None, noise=None)
    assert assess(old).score == pytest.approx(100.0)
    assert gate(dataclasses.replace(old, inter_eye_px=10.0), "standard")


@pytest.mark.parametrize("field", ["sface_norm", "arcface_norm"])
def test_the_models_response_lowers_the_score_on_a_log_scale_and_is_named_only_when_weak(field):
    low, high = RESPONSE_BOUNDS[field]
    middle = float(np.sqrt(low * high))  # half way on a log scale

    def with_length(v: float) -> Quality:
        return dataclasses.replace(GOOD, **{field: v})

    lengths = (2 * high, high, 0.95 * high, 1.02 * middle, 0.98 * middle, low, low / 2)
    scores = [assess(with_length(v)).score for v in lengths]
    assert scores[:2] == [pytest.approx(100.0)] * 2 and scores[-2:] == [0.0, 0.0]
    assert scores == sorted(scores, reverse=True) and len(set(scores[1:-1])) == 5
    assert assess(with_length(middle)).score == pytest.approx(50.0)
    assert assess(with_length(1.02 * middle)).reasons == []  # factor just above 0.5: no reason given
    weak = assess(with_length(0.98 * middle))
    assert weak.reasons == [f"weak response of the face model: output length {0.98 * middle:.1f}"]
    assert with_length(0.98 * middle).as_dict()[field] == round(0.98 * middle, 3)
    assert GOOD.as_dict()[field] is None  # other models, and faces stored before it was measured


def test_each_network_is_judged_by_its_own_bounds():
    """SFace's outputs are shorter than ArcFace's: a length that is strong for SFace is weak for ArcFace."""
    assert RESPONSE_BOUNDS["sface_norm"][1] < RESPONSE_BOUNDS["arcface_norm"][0]
    length = RESPONSE_BOUNDS["sface_norm"][1]
    assert assess(dataclasses.replace(GOOD, sface_norm=length)).factors["response"] == 1.0
    assert assess(dataclasses.replace(GOOD, arcface_norm=length)).factors["response"] == 0.0


def test_sface_and_arcface_models_measure_their_response_and_other_models_do_not(faces_dir, model, settings):
    from nomina.faces import embedding_crop
    from nomina.models import load_model

    path = london(faces_dir, "012")
    image = decode_image(path.read_bytes(), path.name, settings.max_pixels)
    face = FaceAnalyzer(model, settings).analyze(image)[0]
    crop = embedding_crop(face.aligned)
    assert face.quality.sface_norm == pytest.approx(float(np.linalg.norm(model.embedder.outputs([crop])[0])), rel=1e-5)
    assert 8 < face.quality.sface_norm < 25 and face.quality.arcface_norm is None
    fused = FaceAnalyzer(load_model("sface+dlib"), settings).analyze(image)[0]
    assert fused.quality.sface_norm == pytest.approx(face.quality.sface_norm, rel=1e-5)
    for name in ("yunet+arcface-mbf", "arcface-mbf"):
        arcface = load_model(name)
        other = FaceAnalyzer(arcface, settings).analyze(image)[0]
        raw = arcface.embedder.features([embedding_crop(other.aligned)])[0]
        assert other.quality.arcface_norm == pytest.approx(float(np.linalg.norm(raw)), rel=1e-5), name
        assert other.quality.sface_norm is None and 15 < other.quality.arcface_norm < 40
        assert np.dot(other.embedding, raw / np.linalg.norm(raw)) == pytest.approx(1.0, abs=1e-5)
        assert "response" in assess(other.quality).factors


def test_the_response_is_stored_with_the_face(ws, faces_dir):
    ws.add_reference(ReferenceFields("R12", "Person 12"), [PhotoInput(london(faces_dir, "012"))], PROV_API)
    [face] = ws.reference("R12").photos[0].faces
    assert 8 < face.quality["sface_norm"] < 25


def degraded(photo: np.ndarray, how: str) -> np.ndarray:
    if how == "blurred":
        return cv2.GaussianBlur(photo, (0, 0), 6)
    if how == "tiny":
        return cv2.resize(photo, None, fx=0.2, fy=0.2, interpolation=cv2.INTER_AREA)  # about 12 px between the eyes
    noise = np.random.default_rng(1).normal(0, 15, photo.shape)
    return np.clip(photo * 0.15 + noise, 0, 255).astype(np.uint8)  # very dark and noisy


@pytest.mark.slow
def test_real_photos_score_lower_when_degraded(faces_dir, model, settings):
    analyzer = FaceAnalyzer(model, settings)
    for ident in ("012", "020", "033"):
        clean = decode_image(london(faces_dir, ident, "smiling").read_bytes(), "clean.jpg", settings.max_pixels)
        clean_score = assess(analyzer.analyze(clean)[0].quality).score
        assert clean_score > 70
        for how in ("blurred", "tiny", "dark"):
            image = dataclasses.replace(clean, pixels=degraded(clean.pixels, how))
            faces = analyzer.analyze(image, any_orientation=True)
            if faces:  # a face the detector cannot find has no quality to compare
                assert assess(faces[0].quality).score < clean_score / 2, (ident, how)


@pytest.fixture()
def tiny_photo(tmp_path: Path, faces_dir: Path) -> Path:
    photo = cv2.imread(str(london(faces_dir, "005")))
    path = tmp_path / "tiny.png"
    cv2.imwrite(str(path), degraded(photo, "tiny"))
    return path


def test_a_poor_reference_photo_is_refused_with_reasons_and_the_workspace_is_unchanged(cli_ws, tiny_photo, capsys):
    before = snapshot(cli_ws)
    code, _, err = run(capsys, "reference", "add", "R5", tiny_photo, "--name", "Bo", *PROV, "-w", cli_ws)
    assert code == 1
    assert_one_error_line(
        err, r"tiny\.png: the face fails the standard quality gate: face too small: \d+ px .*--accept-quality"
    )
    assert snapshot(cli_ws) == before


def test_an_override_is_enrolled_and_recorded_with_its_reason(cli_ws, tiny_photo, capsys):
    reason = "the only photo the family has"
    code, _, err = run(
        capsys, "reference", "add", "R5", tiny_photo, "--name", "Bo", *PROV, "--accept-quality", reason, "-w", cli_ws
    )
    assert code == 0, err
    code, out, _ = run(capsys, "reference", "show", "R5", "--json", "-w", cli_ws)
    photo = json.loads(out)["photos"][0]
    assert photo["quality_override"]["reason"] == reason and photo["quality_override"]["by"]
    assert any("small face" in r for r in photo["faces"][0]["quality"]["reasons"])
    code, out, _ = run(capsys, "reference", "show", "R1", "--json", "-w", cli_ws)
    assert json.loads(out)["photos"][0]["quality_override"] is None  # a good photo records no override


def test_the_gate_is_a_workspace_setting(cli_ws, tiny_photo, capsys):
    code, out, _ = run(capsys, "config", "--json", "-w", cli_ws)
    assert json.loads(out) == {
        "quality_gate": "standard",
        "retention_years": 20,
        "index": "auto",
        "duplicate_score": 0.5,
    }
    code, _, err = run(capsys, "config", "quality_gate", "lenient", "-w", cli_ws)
    assert code == 1
    assert_one_error_line(err, r"quality_gate: 'lenient' is not one of off, standard, strict")
    assert run(capsys, "config", "quality_gate", "off", "-w", cli_ws)[0] == 0
    code, _, err = run(capsys, "reference", "add", "R5", tiny_photo, "--name", "Bo", *PROV, "-w", cli_ws)
    assert code == 0, err
    code, out, _ = run(capsys, "reference", "show", "R5", "--json", "-w", cli_ws)
    assert json.loads(out)["photos"][0]["quality_override"] is None


@pytest.mark.slow  # about a second or more
def test_strict_gate_chosen_at_init_refuses_what_standard_accepts(tmp_path, faces_dir, capsys):
    photo = cv2.imread(str(london(faces_dir, "006")))
    half = tmp_path / "half.png"  # about 30 px between the eyes: standard accepts, strict does not
    cv2.imwrite(str(half), cv2.resize(photo, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
    ws = tmp_path / "strict"
    assert run(capsys, "init", ws, "--quality-gate", "strict")[0] == 0
    code, _, err = run(capsys, "reference", "add", "R6", half, "--name", "Cy", *PROV, "-w", ws)
    assert code == 1
    assert_one_error_line(err, r"fails the strict quality gate: face too small: \d+ px between the eyes \(strict gate")


def test_a_poor_case_face_is_searched_and_every_result_carries_the_warning(ws, faces_dir, tiny_photo):
    ws.add_reference(ReferenceFields("R005", "Person 005"), [PhotoInput(london(faces_dir, "005"))], PROV_API)
    ws.add_case(CaseFields("UP-9"), [PhotoInput(tiny_photo)])
    result = ws.search("UP-9")
    assert result.candidates[0].reference_id == "R005"
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("case face 1 fails the standard quality gate")
    assert ws.get_search(result.search_id).warnings == result.warnings
    assert result.settings["quality_gate"] == "standard"


def test_an_import_row_below_the_gate_fails_unless_it_gives_a_reason(ws, faces_dir, tiny_photo, tmp_path):
    manifest = tmp_path / "refs.csv"
    with manifest.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["reference_id", "photo", "name", "source", "supplied_by", "legal_basis", "quality_override"])
        w.writerow(["R1", tiny_photo.name, "Bo", "family", "a son", "family request", ""])
        w.writerow(["R2", tiny_photo.name, "Di", "family", "a son", "family request", "no other photo exists"])
    report = ws.import_references(manifest)
    assert report.added == 1 and len(report.failures) == 1
    assert report.failures[0].line == 2 and "quality gate" in report.failures[0].error
    assert ws.reference("R2").photos[0].quality_override.reason == "no other photo exists"
    with pytest.raises(QualityTooLow):
        ws.add_reference(ReferenceFields("R3", "Ed"), [PhotoInput(tiny_photo)], PROV_API)


PROV_API = Provenance("family", "a sister", "family request")
