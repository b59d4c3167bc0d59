"""bench/postmortem.py: the post-mortem-like variants of the sample photos decode, repeat for a seed, leave
their input alone, and change the photo where each says it does (and not elsewhere)."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest
from conftest import REPO, london

from nomina import FaceAnalyzer, load_settings

sys.path.insert(0, str(REPO / "bench"))  # the bench scripts import each other as top-level modules

import postmortem  # noqa: E402
from degrade import SEED, clean_landmarks, iod  # noqa: E402

MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "jpg": b"\xff\xd8\xff"}


@pytest.fixture(scope="module")
def sample(faces_dir, model, tmp_path_factory):
    """One clean sample photo and its landmarks, found by Nomina as the benchmarks find them."""
    photo = london(faces_dir, "001", "smiling")
    settings = load_settings(environ={}, home=tmp_path_factory.mktemp("postmortem"))
    marks = clean_landmarks(FaceAnalyzer(model, settings), [("001", photo)], settings.max_pixels)["001"]
    return cv2.imread(str(photo), cv2.IMREAD_COLOR), marks


@pytest.fixture(scope="module")
def made(sample):
    """Every variant of the sample, each made with a generator seeded as degrade.make_variant seeds it."""
    img, marks = sample
    before = img.copy(), marks.copy()
    out = {name: fn(img, marks, np.random.default_rng(SEED)) for name, fn in postmortem.POSTMORTEM_VARIANTS.items()}
    return out, before


def rng(seed: int = SEED) -> np.random.Generator:
    return np.random.default_rng(seed)


def patch(pixels: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    x, y, r = int(round(centre[0])), int(round(centre[1])), int(round(radius))
    return pixels[y - r : y + r + 1, x - r : x + r + 1].astype(np.float64)


def change(a: np.ndarray, b: np.ndarray, centre: np.ndarray, radius: float) -> float:
    """Mean absolute difference of two photos of one size in a square about ``centre``."""
    return float(np.abs(patch(a, centre, radius) - patch(b, centre, radius)).mean())


def test_every_variant_returns_decodable_bytes_of_its_extension(made, sample):
    out, _ = made
    assert set(out) >= {"closed_eyes", "swelling", "pallor", "flash", "from_above", "cloth", "hand"}
    assert {"pm_combined", "pm_hard"} <= set(out)
    for name, (data, ext) in out.items():
        assert data.startswith(MAGIC[ext]), name
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        assert pixels is not None and pixels.ndim == 3 and pixels.shape[2] == 3, name
        assert min(pixels.shape[:2]) >= 100, name  # a photo, not a sliver


def test_no_variant_changes_its_input(made, sample):
    _, (img, marks) = made
    assert np.array_equal(sample[0], img) and np.array_equal(sample[1], marks)


@pytest.mark.slow  # about a second
def test_each_variant_is_the_same_for_the_same_seed_and_the_chance_parts_follow_the_seed(made, sample):
    out, _ = made
    img, marks = sample
    for name, fn in postmortem.POSTMORTEM_VARIANTS.items():
        assert fn(img, marks, rng()) == out[name], name
    for name in ("closed_eyes", "pallor", "from_above", "cloth", "hand", "pm_combined", "pm_hard"):
        assert postmortem.POSTMORTEM_VARIANTS[name](img, marks, rng(1)) != out[name], name


def test_closed_eyes_covers_each_eye_with_skin_and_touches_nothing_far_from_the_eyes(sample):
    img, marks = sample
    out = postmortem.closed_eyes(img, marks, rng())
    e = iod(marks)
    ys, xs = np.nonzero(np.any(out != img, axis=2))
    assert len(xs) > 0.3 * e * e  # both lids: about 0.6 x 0.4 IOD each
    nearest_eye = np.min([np.hypot(xs - x, ys - y) for x, y in marks[:2]], axis=0)
    assert nearest_eye.max() < 0.45 * e
    grey, closed = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
    for eye in marks[:2]:
        assert patch(closed, eye, 0.08 * e).min() > patch(grey, eye, 0.08 * e).min() + 25  # the dark iris is gone
        assert patch(closed, eye, 0.15 * e).std() < 0.6 * patch(grey, eye, 0.15 * e).std()  # and the white


def test_swelling_moves_features_outward_by_a_moderate_amount_and_leaves_the_background(sample):
    img, marks = sample
    e, centre = iod(marks), marks.mean(axis=0)
    out = postmortem.swelling(img, marks, rng())
    assert out.shape == img.shape and np.array_equal(out[:40, :40], img[:40, :40])
    chin = marks[3:].mean(axis=0) + np.array([0, e])
    for name, point in [("eye", marks[0]), ("eye", marks[1]), ("mouth", marks[3]), ("mouth", marks[4]), ("chin", chin)]:
        dot = np.zeros_like(img)  # a white dot there, swollen, lands further out
        cv2.circle(dot, (int(round(point[0])), int(round(point[1]))), 2, (255, 255, 255), -1)
        ys, xs = np.nonzero(postmortem.swelling(dot, marks, rng())[..., 0] > 64)
        shift = np.array([xs.mean(), ys.mean()]) - np.round(point)
        assert 0.05 * e < np.hypot(*shift) < 0.25 * e, name
        assert shift @ (point - centre) > 0, name


def test_pallor_makes_the_face_paler_greyer_and_green_tinged(sample):
    img, marks = sample
    out = postmortem.pallor(img, marks, rng())
    e = iod(marks)
    face_before, face_after = patch(img, marks[2], 0.6 * e), patch(out, marks[2], 0.6 * e)
    saturation = [cv2.cvtColor(p.astype(np.uint8), cv2.COLOR_BGR2HSV)[..., 1].mean() for p in (face_before, face_after)]
    assert saturation[1] < 0.5 * saturation[0]
    assert face_after.mean() > face_before.mean() + 10
    b, g, r = face_before.reshape(-1, 3).mean(axis=0)
    assert r > g  # living skin is redder than it is green; the pale skin is the other way round
    b, g, r = face_after.reshape(-1, 3).mean(axis=0)
    assert g > r


def test_flash_blows_out_the_forehead_and_darkens_the_sides_and_the_neck(sample):
    img, marks = sample
    out = postmortem.flash(img, marks, rng())
    e, mid = iod(marks), marks[:2].mean(axis=0)
    assert patch(out, mid + np.array([0, -0.75 * e]), 0.05 * e).min() >= 250  # clipped highlight
    sides = np.s_[:, : img.shape[1] // 8]
    assert out[sides].mean() < 0.5 * img[sides].mean()
    neck = mid + np.array([0, 2.4 * e])
    assert patch(out, neck, 0.2 * e).mean() < 0.5 * patch(img, neck, 0.2 * e).mean()


def test_from_above_turns_the_face_and_foreshortens_it_without_tearing(sample):
    img, marks = sample
    e = iod(marks)
    eye_to_mouth = np.hypot(*(marks[3:].mean(axis=0) - marks[:2].mean(axis=0)))
    turns = set()
    for seed in range(6):
        out, matrix = postmortem._from_above(img, marks, rng(seed))
        assert out.shape != img.shape
        moved = cv2.perspectiveTransform(marks.reshape(-1, 1, 2), matrix).reshape(-1, 2)
        angle = np.degrees(np.arctan2(*(moved[1] - moved[0])[::-1])) % 360
        turn = int(round(angle / 90)) % 4
        assert turn != 0 and abs(angle - 90 * round(angle / 90)) < 15, angle
        turns.add(turn)
        ratio = np.hypot(*(moved[3:].mean(axis=0) - moved[:2].mean(axis=0))) / iod(moved)
        assert abs(ratio / (eye_to_mouth / e) - 1) > 0.08  # the pitch foreshortens the face's height
        for k in range(5):  # each landmark's surroundings came along
            assert abs(patch(out, moved[k], 2).mean() - patch(img, marks[k], 2).mean()) < 25, (seed, k)
    assert len(turns) > 1
    assert np.array_equal(postmortem.from_above(img, marks, rng(4)), postmortem._from_above(img, marks, rng(4))[0])


@pytest.mark.parametrize("variant", [postmortem.cloth, postmortem.hand])
def test_cloth_and_hand_cover_the_mouth_and_leave_the_eyes_and_background(sample, variant):
    img, marks = sample
    e = iod(marks)
    for seed in range(4):
        out = variant(img, marks, rng(seed))
        assert all(change(out, img, eye, 0.25 * e) < 3 for eye in marks[:2]), seed
        assert max(change(out, img, corner, 0.1 * e) for corner in marks[3:]) > 20, seed
        assert np.array_equal(out[:10], img[:10]), seed


def test_pm_hard_is_small_and_still_a_face(made, model):
    out, _ = made
    pixels = cv2.imdecode(np.frombuffer(out["pm_hard"][0], np.uint8), cv2.IMREAD_COLOR)
    faces = FaceAnalyzer(model, load_settings(environ={})).detect(pixels, any_orientation=True)
    assert faces, "the face should still be there to find"
    assert 24 < iod(faces[0].landmarks.astype(np.float64)) < 36  # scaled to about 30 px between the eyes
