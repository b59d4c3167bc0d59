"""The sface+dlib model: dlib's chip alignment from YuNet's landmarks, the fusion's file and its arithmetic.

The tests that run dlib's network on photos are marked slow (it takes 92 ms a face); CI runs them.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import USER, london

from nomina import CaseFields, FaceAnalyzer, PhotoInput, Provenance, ReferenceFields, Workspace, load_settings
from nomina.errors import ChecksumMismatch, ModelError, ModelMissing
from nomina.faces import parse_eyes, similarity_transform
from nomina.imaging import decode_image
from nomina.models import MODELS, FaceModel, load_model, locate_files
from nomina.models.dlib import DLIB_CHIP, DLIB_TEMPLATE, FusedEmbedder, load_fusion

PEOPLE = ["001", "002", "003", "004", "005", "006", "007", "008"]


@pytest.fixture(scope="module")
def fused() -> FaceModel:
    return load_model("sface+dlib")


@pytest.fixture(scope="module")
def analyzer(fused: FaceModel) -> FaceAnalyzer:
    return FaceAnalyzer(fused, load_settings(environ={}))


@pytest.fixture(scope="module")
def faces(faces_dir: Path, analyzer: FaceAnalyzer) -> dict[str, list]:
    """(decoded photo, its one face) of each of PEOPLE's neutral and smiling photos, analysed once."""
    out: dict[str, list] = {}
    for expression in ("neutral", "smiling"):
        out[expression] = []
        for ident in PEOPLE:
            path = london(faces_dir, ident, expression)
            image = decode_image(path.read_bytes(), path.name, analyzer.settings.max_pixels)
            found = analyzer.analyze(image)
            assert len(found) == 1, path
            out[expression].append((image, found[0]))
    return out


@pytest.mark.slow  # dlib takes 92 ms a face: run by CI's second step
def test_the_fused_vector_is_the_weighted_concatenation_of_the_two_models(fused, faces):
    embedder = fused.embedder
    assert isinstance(embedder, FusedEmbedder) and embedder.dim == 256
    fusion = load_fusion(str(locate_files(MODELS["sface+dlib"])["fusion"]))
    sface_part, dlib_part, scores = [], [], []
    for image, face in faces["neutral"][:4] + faces["smiling"][:4]:
        assert face.embedding.shape == (256,) and face.embedding.dtype == np.float32
        assert abs(float(np.linalg.norm(face.embedding)) - 1) < 1e-5
        s = embedder.sface.outputs([face.aligned])[0]  # these sample crops need no contrast stretch
        d = embedder.dlib.descriptors([embedder.dlib.chip(image.pixels, face.landmarks)])[0] - fusion["centre"]
        sface_part.append(s / np.linalg.norm(s))
        dlib_part.append(d / np.linalg.norm(d))
        scores.append(face.embedding)
    vectors = np.stack(scores)
    s, d = np.stack(sface_part), np.stack(dlib_part)
    expected = fusion["sface"] ** 2 * (s @ s.T) + fusion["dlib"] ** 2 * (d @ d.T)
    assert np.allclose(vectors @ vectors.T, expected, atol=1e-4)
    # both parts matter: the fused score is neither model's alone
    assert not np.allclose(vectors @ vectors.T, s @ s.T, atol=1e-2)
    assert not np.allclose(vectors @ vectors.T, d @ d.T, atol=1e-2)


@pytest.mark.slow  # dlib takes 92 ms a face: run by CI's second step
def test_the_fused_model_separates_people(faces):
    neutral = np.stack([f.embedding for _, f in faces["neutral"]])
    smiling = np.stack([f.embedding for _, f in faces["smiling"]])
    scores = neutral @ smiling.T
    genuine = np.diag(scores)
    impostor = scores[~np.eye(len(PEOPLE), dtype=bool)]
    assert genuine.min() > impostor.mean() + 3 * impostor.std(), (genuine.min(), impostor.mean(), impostor.std())
    assert (scores.argmax(axis=1) == np.arange(len(PEOPLE))).all()


@pytest.mark.slow  # dlib takes 92 ms a face: run by CI's second step
def test_dlibs_chip_puts_yunets_landmarks_on_dlibs_mean_face(fused, faces):
    image, face = faces["neutral"][0]
    chip = fused.embedder.dlib.chip(image.pixels, face.landmarks)
    assert chip.shape == (DLIB_CHIP, DLIB_CHIP, 3) and chip.dtype == np.uint8 and chip.flags.c_contiguous
    matrix = similarity_transform(face.landmarks, DLIB_TEMPLATE)
    moved = face.landmarks @ matrix[:, :2].T + matrix[:, 2]
    assert np.abs(moved - DLIB_TEMPLATE).max() < 6  # a similarity cannot fit five points exactly
    # RGB for dlib: the chip's channels are the photo's reversed (sampled at the left eye centre)
    x, y = (int(round(v)) for v in DLIB_TEMPLATE[0])
    bx, by = (int(round(v)) for v in np.linalg.solve(matrix[:, :2], DLIB_TEMPLATE[0] - matrix[:, 2]))
    assert np.abs(chip[y, x].astype(int) - image.pixels[by, bx, ::-1].astype(int)).max() < 40


@pytest.mark.slow  # dlib takes 92 ms a face: run by CI's second step
def test_eyes_marked_by_hand_give_a_fused_face_near_the_detected_one(faces_dir, analyzer):
    path = london(faces_dir, "003")
    image = decode_image(path.read_bytes(), path.name, analyzer.settings.max_pixels)
    detected = analyzer.analyze(image)[0]
    eyes = ",".join(f"{v:.1f}" for v in detected.landmarks[:2].reshape(-1))
    marked = analyzer.from_eyes(image, parse_eyes(eyes))
    assert marked.embedding.shape == (256,) and marked.manual
    assert float(marked.embedding @ detected.embedding) > 0.8


def test_a_photo_without_faces_gives_no_vectors(fused):
    vectors, norms = fused.embedder.embed_faces(np.zeros((50, 50, 3), np.uint8), [], [])
    assert vectors.shape == (0, 256) and norms.shape == (0,)
    with pytest.raises(TypeError, match="embed_faces"):
        fused.embedder.embed([np.zeros((112, 112, 3), np.uint8)])


# -- the fusion file ---------------------------------------------------------------------------------


def test_the_shipped_fusion_file_was_fitted_off_the_reported_photos():
    data = json.loads(locate_files(MODELS["sface+dlib"])["fusion"].read_text())
    assert "Canada" in data["about"] and "never from the London" in data["about"]
    ws, wd = data["weights"]["sface"], data["weights"]["dlib"]
    assert abs(ws * ws + wd * wd - 1) < 1e-5 and ws > 0 and wd > 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(dlib_centre=d["dlib_centre"][:-1]), "dlib_centre is not 128 finite numbers"),
        (lambda d: d["dlib_centre"].__setitem__(3, float("nan")), "dlib_centre is not 128 finite numbers"),
        (lambda d: d.update(weights={"sface": 0.9, "dlib": 0.9}), "squares summing to 1"),
        (lambda d: d.update(weights={"sface": 1.0, "dlib": -0.0}), "squares summing to 1"),
        (lambda d: d.update(weights={"sface": float("nan"), "dlib": 0.5}), "squares summing to 1"),
        (lambda d: d.pop("weights"), "not a fusion file \\(KeyError: 'weights'\\)"),
        (lambda d: d.update(dlib_centre="centre"), "not a fusion file \\(ValueError"),
        (lambda d: d.update(weights=[1, 2]), "not a fusion file \\(TypeError"),
    ],
)
def test_a_fusion_file_of_the_wrong_shape_is_refused_from_a_model_folder(tmp_path, change, message):
    folder = tmp_path / "models"
    folder.mkdir()
    for path in locate_files(MODELS["sface+dlib"]).values():
        shutil.copy(path, folder / path.name)
    fusion = folder / "sface_dlib_fusion.json"
    data = json.loads(fusion.read_text())
    change(data)
    fusion.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=f"model sface\\+dlib: cannot load its files from .*{message}"):
        load_model("sface+dlib", str(folder))


def test_a_tampered_fusion_file_is_refused_from_the_package(tmp_path, monkeypatch):
    package = tmp_path / "tampered_nomina"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    original = locate_files(MODELS["sface+dlib"])["fusion"]
    data = json.loads(original.read_text())
    data["weights"] = {"sface": 0.6, "dlib": 0.8}  # valid, and not what the manifest vouches for
    (package / "models" / original.name).write_text(json.dumps(data))
    monkeypatch.syspath_prepend(str(tmp_path))
    manifest = MODELS["sface+dlib"]
    files = tuple(
        dataclasses.replace(f, package="tampered_nomina") if f.role == "fusion" else f for f in manifest.files
    )
    monkeypatch.setitem(MODELS, "tampered", dataclasses.replace(manifest, name="tampered", files=files))
    with pytest.raises(ChecksumMismatch, match=r"sface_dlib_fusion.json: SHA-256 [0-9a-f]{64} differs"):
        load_model("tampered")


def test_without_dlib_the_model_names_the_extra_that_installs_it(monkeypatch):
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "dlib" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(
        ModelMissing, match=r"^model sface\+dlib: Python module dlib is not installed \(pip install 'nomina\[dlib\]'\)$"
    ):
        load_model("sface+dlib")


# -- in a workspace ---------------------------------------------------------------------------------


@pytest.mark.slow  # dlib takes 92 ms a face: run by CI's second step
def test_workspace_with_the_fused_model_enrols_and_searches(tmp_path, faces_dir, fused):
    settings = load_settings(environ={}, home=tmp_path / "ws")
    prov = Provenance("family", "a sister", "family request under national missing-persons law")
    with Workspace.create(settings.home, settings, model=fused, admin=USER) as ws:
        for ident in ("001", "002", "003"):
            ws.add_reference(
                ReferenceFields(f"R{ident}", f"Person {ident}"), [PhotoInput(london(faces_dir, ident))], prov
            )
        ws.add_case(CaseFields("C1"), [PhotoInput(london(faces_dir, "003", "smiling"))])
        result = ws.search("C1")
        assert result.candidates[0].reference_id == "R003"
        assert result.candidates[0].score > result.candidates[1].score + 0.2
        assert result.model == fused.identity and result.model["name"] == "sface+dlib"
    with Workspace.open(settings.home, settings, user=USER) as ws:  # the recorded model is loaded again
        ws.add_case(CaseFields("C2"), [PhotoInput(london(faces_dir, "001", "smiling"))])
        assert ws.search("C2").candidates[0].reference_id == "R001"


def test_the_models_doc_lists_every_models_files_with_their_hashes():
    text = (Path(__file__).resolve().parents[1] / "docs" / "models.md").read_text(encoding="utf-8")
    for manifest in MODELS.values():
        assert f"| `{manifest.name}`" in text, manifest.name
        for f in manifest.files:
            assert f"{f.name}` | `{f.sha256}`" in text, (manifest.name, f.name)
