"""Detection at the right scale, alignment and quality measures."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import london

from nomina import FaceAnalyzer
from nomina.faces import TEMPLATE, align, similarity_transform


@pytest.mark.slow
def test_small_face_in_a_big_photo_is_found_where_it_is(faces_dir, model, settings):
    face = cv2.imread(str(london(faces_dir, "010")))
    small = cv2.resize(face, None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA)  # ~19 px between the eyes
    rng = np.random.default_rng(0)
    canvas = (rng.random((3000, 4000, 3)) * 40 + 100).astype(np.uint8)
    canvas[1000 : 1000 + small.shape[0], 2000 : 2000 + small.shape[1]] = small
    found = FaceAnalyzer(model, settings).detect(canvas)
    assert len(found) == 1
    x, y, w, h = found[0].box
    assert 2000 <= x + w / 2 <= 2000 + small.shape[1] and 1000 <= y + h / 2 <= 1000 + small.shape[0]


def test_face_filling_the_frame_is_found(faces_dir, model, settings):
    photo = cv2.imread(str(london(faces_dir, "010")))
    close_up = cv2.resize(photo[120:330, 110:290], (1200, 1400), interpolation=cv2.INTER_CUBIC)
    assert len(FaceAnalyzer(model, settings).detect(close_up)) == 1


def test_quality_measures_respond_to_blur_size_and_light(faces_dir, model, settings):
    from nomina.imaging import decode_image

    analyzer = FaceAnalyzer(model, settings)
    data = london(faces_dir, "011").read_bytes()
    clean = decode_image(data, "clean.jpg", settings.max_pixels)

    def measured(pixels: np.ndarray):
        image = type(clean)(pixels=pixels, format="JPEG", sha256="-", size_bytes=0)
        return analyzer.analyze(image)[0].quality

    q = measured(clean.pixels)
    blurred = measured(cv2.GaussianBlur(clean.pixels, (0, 0), 3))
    half = measured(cv2.resize(clean.pixels, (200, 200), interpolation=cv2.INTER_AREA))
    dark = measured((clean.pixels * 0.3).astype(np.uint8))
    assert blurred.sharpness < q.sharpness / 3
    assert abs(half.inter_eye_px - q.inter_eye_px / 2) < 3
    assert dark.brightness < q.brightness / 2
    turned = cv2.warpAffine(clean.pixels, cv2.getRotationMatrix2D((200, 200), 20, 1.0), (400, 400))
    assert abs(measured(turned).roll - (q.roll - 20)) < 4  # OpenCV's positive angle turns anticlockwise


def test_alignment_puts_the_eyes_where_the_model_expects_them():
    rng = np.random.default_rng(3)
    angle, scale, shift = 0.4, 2.5, np.array([100.0, 50.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = (TEMPLATE @ rot.T) * scale + shift
    m = similarity_transform(src, TEMPLATE)
    back = src @ m[:, :2].T + m[:, 2]
    assert np.allclose(back, TEMPLATE, atol=1e-6)
    two = similarity_transform(src[:2], TEMPLATE[:2])  # eyes marked by hand: exact from two points
    assert np.allclose(src[:2] @ two[:, :2].T + two[:, 2], TEMPLATE[:2], atol=1e-6)
    crop = align(rng.integers(0, 255, (400, 400, 3), dtype=np.uint8), src)
    assert crop.shape == (112, 112, 3)


def test_landmarks_of_a_tilted_face_are_measured_upright(faces_dir, model, settings):
    """The detector's landmarks drift towards upright on tilted heads; levelling corrects them."""
    analyzer = FaceAnalyzer(model, settings)
    errors_raw, errors_levelled = [], []
    for ident in ("011", "020", "030", "041"):
        photo = cv2.imread(str(london(faces_dir, ident)))
        truth = analyzer.detect(photo)[0].landmarks
        for angle in (-30, 30, 45):
            m = cv2.getRotationMatrix2D((200, 200), angle, 1.0)
            turned = cv2.warpAffine(photo, m, (400, 400), borderMode=cv2.BORDER_REPLICATE)
            expected = truth @ m[:, :2].T + m[:, 2]
            raw = analyzer.detect(turned)[0]
            errors_raw.append(np.linalg.norm(raw.landmarks - expected, axis=1).mean())
            errors_levelled.append(np.linalg.norm(analyzer.level(turned, raw).landmarks - expected, axis=1).mean())
    assert np.mean(errors_levelled) < 0.75 * np.mean(errors_raw)


def test_dark_noisy_photo_is_found_and_normal_photos_are_not_smoothed_into_faces(faces_dir, model, settings):
    analyzer = FaceAnalyzer(model, settings)
    photo = cv2.imread(str(london(faces_dir, "020", "smiling")))
    noise = np.random.default_rng(7).normal(0, 15, photo.shape)
    dark = np.clip(photo * 0.15 + noise, 0, 255).astype(np.uint8)
    assert len(analyzer.detect(dark)) == 1
    for name in ("fox-715588_640.jpg", "poppy-2447327_640.jpg", "road-1072821_640.jpg"):
        assert analyzer.detect(cv2.imread(str(faces_dir / "noface" / name)), any_orientation=True) == []
