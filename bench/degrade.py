"""Degraded copies of the sample photos, shared by the accuracy and evaluation benchmarks.

Every variant is derived from an original (clean, frontal, studio) photo; sizes and positions come from
the face's five landmarks, detected by Nomina on the clean photo. The variants are described in
``bench/accuracy.py``. Noise uses a fixed seed, so every run sees the same photos. Figures from these
photos must be reported as coming from derived (degraded) sample photos.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

import nomina
from nomina.imaging import decode_image, read_photo

SEED = 20240611

Image = np.ndarray  # H x W x 3, uint8, BGR
Marks = np.ndarray  # 5 x 2 landmarks of the clean photo: eyes, nose, mouth corners (image left first)


def iod(marks: Marks) -> float:
    return float(np.hypot(*(marks[1] - marks[0])))


def gaussian_blur(img: Image, sigma: float) -> Image:
    return cv2.GaussianBlur(img, (0, 0), sigma)


def jpeg(img: Image, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def png(img: Image) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def darken(img: Image, factor: float) -> Image:
    return np.clip(img.astype(np.float32) * factor, 0, 255).round().astype(np.uint8)


def rotate(img: Image, degrees: float) -> Image:
    """Turned anticlockwise about the centre on a canvas that holds the whole photo."""
    h, w = img.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w, new_h = int(round(w * cos + h * sin)), int(round(w * sin + h * cos))
    matrix[:, 2] += np.array([(new_w - w) / 2, (new_h - h) / 2])
    return cv2.warpAffine(img, matrix, (new_w, new_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def dark_noisy(img: Image, rng: np.random.Generator, factor: float, sigma: float) -> Image:
    noisy = img.astype(np.float32) * factor + rng.normal(0.0, sigma, img.shape)
    return np.clip(noisy, 0, 255).round().astype(np.uint8)


def scaled(img: Image, marks: Marks, target_iod: float) -> Image:
    """Scaled down (never up) so that the eyes are ``target_iod`` px apart."""
    scale = min(1.0, target_iod / iod(marks))
    return cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def band(img: Image, corners: tuple[float, float, float, float], grey: int) -> Image:
    """A filled rectangle (x0, y0, x1, y1) of one grey level over a copy of the photo."""
    x0, y0, x1, y1 = (int(round(v)) for v in corners)
    out = img.copy()
    cv2.rectangle(out, (x0, y0), (x1, y1), (grey, grey, grey), thickness=-1)
    return out


def eyes_bar(img: Image, marks: Marks) -> Image:
    e, eye_y = iod(marks), marks[:2, 1].mean()
    left, right = marks[:2, 0].min(), marks[:2, 0].max()
    return band(img, (left - 0.6 * e, eye_y - 0.3 * e, right + 0.6 * e, eye_y + 0.3 * e), 0)


def mask(img: Image, marks: Marks) -> Image:
    e, eye_y, nose_y = iod(marks), marks[:2, 1].mean(), marks[2, 1]
    mouth_x, mouth_y = marks[3:, 0].mean(), marks[3:, 1].mean()
    return band(img, (mouth_x - 1.1 * e, (eye_y + nose_y) / 2, mouth_x + 1.1 * e, mouth_y + e), 200)


def hard_combined(img: Image, marks: Marks) -> bytes:
    small = scaled(darken(rotate(img, 15.0), 0.5), marks, 24.0)  # rotation keeps the IOD
    return jpeg(gaussian_blur(small, 1.0), 20)


# name -> function(original pixels, clean landmarks, rng) -> (file bytes, extension)
Variant = Callable[[Image, Marks, np.random.Generator], tuple[bytes, str]]
ISSUE_VARIANTS: dict[str, Variant] = {
    "blur": lambda img, lm, rng: (png(gaussian_blur(img, 3.0)), "png"),
    "lowres": lambda img, lm, rng: (png(scaled(img, lm, 40.0)), "png"),
    "jpeg10": lambda img, lm, rng: (jpeg(img, 10), "jpg"),
    "rotate20": lambda img, lm, rng: (png(rotate(img, 20.0)), "png"),
    "dark_noisy": lambda img, lm, rng: (png(dark_noisy(img, rng, 0.3, 10.0)), "png"),
    "combined": lambda img, lm, rng: (jpeg(gaussian_blur(darken(img, 0.5), 1.5), 30), "jpg"),
}
HARD_VARIANTS: dict[str, Variant] = {
    "tiny20": lambda img, lm, rng: (png(scaled(img, lm, 20.0)), "png"),
    "tiny12": lambda img, lm, rng: (png(scaled(img, lm, 12.0)), "png"),
    "rotate45": lambda img, lm, rng: (png(rotate(img, 45.0)), "png"),
    "rotate90": lambda img, lm, rng: (png(rotate(img, 90.0)), "png"),
    "blur6": lambda img, lm, rng: (png(gaussian_blur(img, 6.0)), "png"),
    "eyes_bar": lambda img, lm, rng: (png(eyes_bar(img, lm)), "png"),
    "mask": lambda img, lm, rng: (png(mask(img, lm)), "png"),
    "very_dark_noisy": lambda img, lm, rng: (png(dark_noisy(img, rng, 0.15, 15.0)), "png"),
    "hard_combined": lambda img, lm, rng: (hard_combined(img, lm), "jpg"),
}
GROUPS = {"issue": ISSUE_VARIANTS, "harder": HARD_VARIANTS}


def clean_landmarks(analyzer: nomina.FaceAnalyzer, probes: list[tuple[str, Path]], max_pixels: int) -> dict[str, Marks]:
    """The first face's landmarks in each clean probe photo (the others' mean where none is found)."""
    marks: dict[str, Marks] = {}
    for person, photo in probes:
        faces = analyzer.analyze(decode_image(read_photo(photo), str(photo), max_pixels))
        if faces:
            marks[person] = faces[0].landmarks.astype(np.float64)
    typical: Marks = np.mean(list(marks.values()), axis=0)
    return {person: marks.get(person, typical) for person, _ in probes}


def make_variant(
    variant: Variant, probes: list[tuple[str, Path]], marks: dict[str, Marks], folder: Path
) -> list[tuple[str, Path]]:
    """Write the degraded probe photos of one variant into ``folder``."""
    rng = np.random.default_rng(SEED)
    folder.mkdir()
    out = []
    for person, photo in probes:
        data, ext = variant(cv2.imread(str(photo), cv2.IMREAD_COLOR), marks[person], rng)
        path = folder / f"{person}.{ext}"
        path.write_bytes(data)
        out.append((person, path))
    return out
