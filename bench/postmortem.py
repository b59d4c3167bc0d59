"""Post-mortem-like copies of the sample photos: what photos of the dead and of people found look like.

Each variant takes an original (clean, frontal, studio) photo and its five landmarks, as the variants of
``bench/degrade.py`` do, and imitates one thing that makes such photos hard, with fixed parameters:

* ``closed_eyes``: eyelids closed. Each eye (an ellipse 0.64 x 0.4 IOD about the eye centre) is covered
  by the skin tone sampled just below the lower lid, darker towards the lid crease, with a feathered edge,
  a little grain and a thin dark lash line curving along the lid.
* ``swelling``: a swollen face (oedema, bloating). A smooth geometric bulge (``cv2.remap`` with radial
  displacement fields) of both cheeks and of the lower face, which moves the eyes, nose, mouth and chin
  outward by about 0.1-0.2 IOD, and a slight puffiness under each eye.
* ``pallor``: the colour of a dead body's skin. Desaturated (35% of the colour kept), paler, with a
  grey-green cast over the photo and low-frequency blue-purple blotches on the face (livor mortis,
  discolouration) from smoothed noise.
* ``flash``: a harsh on-camera flash. A multiplicative light map that is brightest between the eyes and
  the nose and falls off strongly to the sides and into the jaw's shadow on the neck, raised contrast,
  and blown-out specular highlights on the forehead and the nose tip (clipped at white). The light map
  knows nothing of depth: the background next to the face is lit as the face is.
* ``from_above``: a face photographed from above while the body lies down. A homography as if the face's
  plane were pitched 30-40 degrees (either way) from the camera's axis, seen from about 8 IOD (50 cm),
  then the photo turned by 90, 180 or 270 degrees (the body may lie in any direction), on a canvas that
  keeps the whole photo (uncovered corners repeat the edge pixels).
* ``cloth``: a sheet, drape or blanket over the lower face (its edge between the nose and the mouth) or
  over one side of the face below the eye; a polygon with a woven texture, folds and a soft shadow on
  the skin along its edge. The eyes stay visible.
* ``hand``: a hand over one cheek and the mouth (someone holding the head, or the person's own hand): a
  palm ellipse, four finger capsules, a thumb under the jaw and the wrist leaving the photo, shaded as
  rounded shapes, in a skin tone near the face's own (0.8-1.05 times as bright, a little redder).
* ``pm_combined``: closed_eyes, swelling and pallor, saved as JPEG quality 40.
* ``pm_hard``: closed_eyes, cloth, flash and from_above, scaled down to an IOD of 30 px, JPEG quality 30.

Choices left to chance (the cloth's colour and place, which side the hand is on, the pitch and the turn)
and the noise come from the generator the caller passes: ``degrade.make_variant`` seeds it with
``degrade.SEED``, so every run sees the same photos. Lossless variants are saved as PNG.

Limits: these are synthetic approximations of post-mortem appearance, made from photos of living people
in a studio; they are not real post-mortem photos, and say nothing direct about how Nomina does on them
(no decomposition, injuries, real lividity patterns, flattened or distorted features, or real lighting).
The parameters were fixed by looking at what each effect looks like, never tuned on a recognition
result. Report any figure from them as coming from derived (post-mortem-like) sample photos.
"""

from __future__ import annotations

import cv2
import degrade
import numpy as np
from degrade import Image, Marks, Variant, iod, jpeg, png, scaled

#: Cloth colours (BGR): a white sheet, a pale blue sheet, a green surgical drape, a grey blanket.
CLOTHS = ((232, 234, 236), (205, 178, 150), (135, 158, 118), (88, 90, 96))


# -- helpers ----------------------------------------------------------------------------------------------
def _frame(marks: Marks) -> tuple[float, np.ndarray, np.ndarray]:
    """The inter-ocular distance, the unit vector along the eye line and the unit vector down the face."""
    e = iod(marks)
    u = (marks[1] - marks[0]) / e
    return e, u, np.array([-u[1], u[0]])


def _coords(shape: tuple[int, ...], marks: Marks, origin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pixel's position from ``origin`` in IODs: across the face (to the image right) and down it."""
    e, u, v = _frame(marks)
    yy, xx = np.indices(shape[:2], dtype=np.float32)
    dx, dy = xx - np.float32(origin[0]), yy - np.float32(origin[1])
    return (dx * u[0] + dy * u[1]) / e, (dx * v[0] + dy * v[1]) / e


def _point(marks: Marks, origin: np.ndarray, across: float, down: float) -> np.ndarray:
    """The pixel ``across`` and ``down`` IODs from ``origin`` in the face's frame."""
    e, u, v = _frame(marks)
    return origin + e * (across * u + down * v)


def _u8(pixels: np.ndarray) -> Image:
    return np.clip(pixels, 0, 255).round().astype(np.uint8)


def _skin(img: Image, point: np.ndarray, radius: float) -> np.ndarray:
    """The median colour of a square patch about ``point`` (the skin tone there)."""
    x, y, r = int(round(point[0])), int(round(point[1])), max(1, int(round(radius)))
    patch = img[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1].reshape(-1, 3)
    return np.median(patch, axis=0).astype(np.float32)


def _smooth_noise(shape: tuple[int, ...], rng: np.random.Generator, cell: float) -> np.ndarray:
    """Low-frequency noise of unit spread whose blobs are about ``cell`` px across."""
    h, w = shape[:2]
    coarse = rng.standard_normal((int(h / cell) + 2, int(w / cell) + 2)).astype(np.float32)
    smooth = cv2.GaussianBlur(cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC), (0, 0), cell / 4)
    return (smooth - smooth.mean()) / (smooth.std() + 1e-6)


def _blend(base: np.ndarray, layer: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return base * (1 - alpha[..., None]) + layer * alpha[..., None]


def _shadow(base: np.ndarray, alpha: np.ndarray, e: float, depth: float) -> np.ndarray:
    """``base`` darkened just outside the edge of what ``alpha`` covers (its soft shadow on the skin)."""
    spread = cv2.GaussianBlur(alpha, (0, 0), 0.12 * e)
    return base * (1 - depth * spread * (1 - alpha))[..., None]


def _round_part(
    a: np.ndarray, b: np.ndarray, start: tuple[float, float], end: tuple[float, float], radius: float
) -> np.ndarray:
    """Height (1 on the axis, 0 at the edge) of a rounded finger from ``start`` to ``end`` (a capsule)."""
    da, db = end[0] - start[0], end[1] - start[1]
    t = np.clip(((a - start[0]) * da + (b - start[1]) * db) / (da * da + db * db), 0, 1)
    dist = np.hypot(a - start[0] - t * da, b - start[1] - t * db)
    return np.sqrt(np.clip(1 - (dist / radius) ** 2, 0, 1))


# -- the effects ------------------------------------------------------------------------------------------
def closed_eyes(img: Image, marks: Marks, rng: np.random.Generator) -> Image:
    """Eyelids closed, as in most photos of the dead: skin over each eye, a thin lash line along the lid."""
    e = iod(marks)
    out = img.astype(np.float32)
    for eye in marks[:2]:
        tone = _skin(img, _point(marks, eye, 0.0, 0.32), 0.07 * e)  # the skin just below the lower lid
        a, b = _coords(img.shape, marks, eye)
        rho = np.hypot(a / 0.32, (b - 0.03) / 0.2)  # 1 on the edge of the lid's ellipse
        shade = 0.9 + 0.08 * np.clip(1 - rho**2, 0, 1) + 0.15 * np.clip(b, -0.17, 0.0)  # round, dark crease
        lid = tone * shade[..., None]
        lid += rng.normal(0, 2.0, img.shape).astype(np.float32)  # the skin's grain
        out = _blend(out, lid, np.clip((1.15 - rho) / 0.3, 0, 1))  # feathered edge
        curve = 0.03 + 0.05 * (1 - (a / 0.27) ** 2)  # the lid's edge curves down, lowest in the middle
        lash = np.clip(1 - np.abs(b - curve) / max(0.02, 0.7 / e), 0, 1) * (np.abs(a) < 0.27)
        out *= (1 - 0.6 * lash)[..., None]
    return _u8(out)


def swelling(img: Image, marks: Marks, rng: np.random.Generator) -> Image:
    """A swollen face (oedema, bloating): the cheeks and lower face bulge, the lower eyelids are puffy."""
    e = iod(marks)
    bulges = [  # centre, radius (px), strength: features within move outward by up to 0.6 radius x strength
        (_point(marks, (marks[0] + marks[3]) / 2, -0.3, 0.0), 0.55 * e, 0.45),  # cheek on the image's left
        (_point(marks, (marks[1] + marks[4]) / 2, 0.3, 0.0), 0.55 * e, 0.45),  # cheek on the image's right
        (_point(marks, marks[3:].mean(axis=0), 0.0, 0.45), 0.65 * e, 0.4),  # lower face and chin
        *((_point(marks, eye, 0.0, 0.22), 0.18 * e, 0.35) for eye in marks[:2]),  # puffy lower lids
    ]
    yy, xx = np.indices(img.shape[:2], dtype=np.float32)
    map_x, map_y = xx.copy(), yy.copy()
    for centre, radius, strength in bulges:
        dx, dy = xx - np.float32(centre[0]), yy - np.float32(centre[1])
        pull = strength * np.exp(-(dx * dx + dy * dy) / np.float32(2 * radius * radius))
        map_x -= pull * dx
        map_y -= pull * dy
    return cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def pallor(img: Image, marks: Marks, rng: np.random.Generator) -> Image:
    """Post-mortem pallor: pale, greyish skin with a grey-green cast and blue-purple mottled blotches."""
    f = img.astype(np.float32)
    grey = (f @ np.array([0.114, 0.587, 0.299], np.float32))[..., None]
    f = 255 - 0.8 * (255 - (grey + 0.35 * (f - grey)))  # most colour gone, then paler
    f *= np.array([0.98, 1.01, 0.93], np.float32)  # grey-green (BGR)
    a, b = _coords(img.shape, marks, marks[:2].mean(axis=0))
    face = np.clip((1.0 - np.hypot(a / 0.95, (b - 0.5) / 1.4)) / 0.25, 0, 1)  # forehead to chin, cheek to cheek
    blotches = np.clip(_smooth_noise(img.shape, rng, 0.4 * iod(marks)) - 0.3, 0, 1) * face
    purple = np.array([1.03, 0.88, 0.97], np.float32)  # blue-purple (BGR): less green and red, a little more blue
    return _u8(f * (1 + blotches[..., None] * (purple - 1)))


def flash(img: Image, marks: Marks, rng: np.random.Generator) -> Image:
    """A harsh on-camera flash: blown-out forehead and nose, strong fall-off to dark sides and neck."""
    a, b = _coords(img.shape, marks, marks[:2].mean(axis=0))
    light = 0.2 + 1.3 * np.exp(-(a**2 / (2 * 0.9**2) + (b - 0.4) ** 2 / (2 * 1.3**2)))  # nearest is brightest
    jaw = 1.75 - 0.6 * np.minimum(a**2, 1)  # the jaw line, from the chin up to below the ears
    light *= 1 - 0.8 * 0.5 * (1 + np.tanh((b - jaw) / 0.2))  # its shadow on the neck
    na, nb = _coords(img.shape, marks, marks[2])
    shine = 170 * np.exp(-((a / 0.35) ** 2 + ((b + 0.75) / 0.15) ** 2) / 2)  # forehead
    shine += 150 * np.exp(-((na / 0.09) ** 2 + ((nb + 0.05) / 0.09) ** 2) / 2)  # nose tip
    lit = (img.astype(np.float32) * light[..., None] - 128) * 1.3 + 128  # raised contrast
    return _u8(lit + shine[..., None])


def _from_above(img: Image, marks: Marks, rng: np.random.Generator) -> tuple[Image, np.ndarray]:
    """Seen from above while lying down, and the homography (3 x 3) that moved the pixels there."""
    e, u, v = _frame(marks)
    pitch = np.radians(rng.uniform(30.0, 40.0)) * rng.choice([-1.0, 1.0])
    turn = np.radians(rng.choice([90.0, 180.0, 270.0]))
    h, w = img.shape[:2]
    centre = marks.mean(axis=0)
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    across, down = (corners - centre) @ u, (corners - centre) @ v
    # the photo's plane turned about the face's horizontal axis, seen from 8 IOD in front of the face
    depth = 8.0 * e / (8.0 * e + down * np.sin(pitch))
    across, down = across * depth, down * np.cos(pitch) * depth
    across, down = across * np.cos(turn) - down * np.sin(turn), across * np.sin(turn) + down * np.cos(turn)
    moved = centre + np.outer(across, u) + np.outer(down, v)
    moved -= moved.min(axis=0)
    size = np.ceil(moved.max(axis=0)).astype(int)
    matrix = cv2.getPerspectiveTransform(corners, moved.astype(np.float32))
    out = cv2.warpPerspective(img, matrix, (int(size[0]), int(size[1])), borderMode=cv2.BORDER_REPLICATE)
    return out, matrix


def from_above(img: Image, marks: Marks, rng: np.random.Generator) -> Image:
    """A body's face photographed from above: pitched 30-40 degrees and turned 90, 180 or 270 degrees."""
    return _from_above(img, marks, rng)[0]


def _cloth_texture(
    shape: tuple[int, ...], colour: tuple[int, int, int], e: float, rng: np.random.Generator
) -> np.ndarray:
    """Woven cloth of one colour with threads, grain and soft folds."""
    yy, xx = np.indices(shape[:2], dtype=np.float32)
    period = max(4.0, 0.1 * e)  # thread spacing: a coarse weave, so that scaling down makes no moire
    weave = 0.04 * np.sin(2 * np.pi * xx / period) * np.sin(2 * np.pi * yy / period)
    angle = rng.uniform(0, np.pi)
    ridges = (xx * np.cos(angle) + yy * np.sin(angle)) / (1.5 * e) + 0.3 * _smooth_noise(shape, rng, 2.0 * e)
    folds = 0.1 * np.sin(2 * np.pi * ridges) + 0.06 * _smooth_noise(shape, rng, 1.0 * e)  # broad, uneven
    grain = 0.03 * rng.standard_normal(shape[:2]).astype(np.float32)
    return np.array(colour, np.float32) * (1 + weave + folds + grain)[..., None]


def cloth(img: Image, marks: Marks, rng: np.random.Generator) -> Image:
    """A cloth (sheet, drape or blanket) over the lower face or one side of it, the eyes left visible."""
    e = iod(marks)
    far = 20.0  # IODs: off the photo
    if rng.random() < 0.5:  # the lower face, the top edge between the nose tip and the mouth
        top = 0.75 + rng.uniform(-0.1, 0.1, 5)
        outline = [(-far, top[0]), (-1.0, top[1]), (0.0, top[2]), (1.0, top[3]), (far, top[4]), (far, far), (-far, far)]
    else:  # one side, from below the eye outward and down
        side, inner = rng.choice([-1.0, 1.0]), 0.15 + rng.uniform(-0.1, 0.1, 2)
        outline = [(side * a, b) for a, b in [(far, 0.45), (0.6, 0.45), (inner[0], 1.2), (inner[1], far), (far, far)]]
    mid = marks[:2].mean(axis=0)
    corners = np.array([_point(marks, mid, a, b) for a, b in outline])
    cover = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(cover, [np.round(corners * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    alpha = cv2.GaussianBlur(cover.astype(np.float32) / 255, (0, 0), 0.6)
    texture = _cloth_texture(img.shape, CLOTHS[rng.integers(len(CLOTHS))], e, rng)
    return _u8(_blend(_shadow(img.astype(np.float32), alpha, e, 0.4), texture, alpha))


def hand(img: Image, marks: Marks, rng: np.random.Generator) -> Image:
    """A hand over one cheek and the mouth: a palm, four fingers and a thumb in a skin tone, with its shadow."""
    e = iod(marks)
    side = rng.choice([-1.0, 1.0])  # -1: the cheek on the image's left
    tone = _skin(img, _point(marks, marks[0], 0.0, 0.5), 0.08 * e)  # the face's own cheek, and for the hand:
    tone = tone * rng.uniform(0.8, 1.05) * np.array([0.95, 1.0, 1.06], np.float32)  # darker or lighter, a little redder
    a, b = _coords(img.shape, marks, marks[:2].mean(axis=0))
    a = a * side  # the hand on the positive side
    palm = np.array([1.05, 1.25])  # on the cheek and jaw (an adult hand: a palm about 1.3 IOD wide)
    height = np.sqrt(np.clip(1 - ((a - palm[0]) / 0.65) ** 2 - ((b - palm[1]) / 0.6) ** 2, 0, 1))
    height = np.maximum(height, _round_part(a, b, tuple(palm), (3.5, 3.0), 0.45))  # the wrist and forearm
    d = np.array([-np.cos(np.radians(15)), -np.sin(np.radians(15))])  # the fingers point inward and a little up
    for k, length in zip((-1.5, -0.5, 0.5, 1.5), (0.8, 0.95, 0.9, 0.7), strict=True):
        base = palm + 0.45 * d + 0.28 * k * np.array([-d[1], d[0]])
        height = np.maximum(height, _round_part(a, b, tuple(base), tuple(base + length * d), 0.14))
    height = np.maximum(height, _round_part(a, b, (1.0, 1.7), (0.45, 1.95), 0.15))  # the thumb, under the jaw
    alpha = np.clip(height * 4, 0, 1)
    skin = tone * (0.65 + 0.4 * height)[..., None] + rng.normal(0, 2.0, img.shape).astype(np.float32)
    return _u8(_blend(_shadow(img.astype(np.float32), alpha, e, 0.35), skin, alpha))


# -- combinations -----------------------------------------------------------------------------------------
def pm_combined(img: Image, marks: Marks, rng: np.random.Generator) -> bytes:
    """Closed eyes, swelling and pallor, saved as a poor JPEG (quality 40)."""
    return jpeg(pallor(swelling(closed_eyes(img, marks, rng), marks, rng), marks, rng), 40)


def pm_hard(img: Image, marks: Marks, rng: np.random.Generator) -> bytes:
    """Closed eyes, a cloth, a flash, seen from above, small (an IOD of 30 px), JPEG quality 30."""
    lit = flash(cloth(closed_eyes(img, marks, rng), marks, rng), marks, rng)
    turned, matrix = _from_above(lit, marks, rng)
    moved = cv2.perspectiveTransform(marks.reshape(-1, 1, 2).astype(np.float64), matrix).reshape(-1, 2)
    return jpeg(scaled(turned, moved, 30.0), 30)


# name -> function(original pixels, clean landmarks, rng) -> (file bytes, extension), as in degrade.py
POSTMORTEM_VARIANTS: dict[str, Variant] = {
    "closed_eyes": lambda img, lm, rng: (png(closed_eyes(img, lm, rng)), "png"),
    "swelling": lambda img, lm, rng: (png(swelling(img, lm, rng)), "png"),
    "pallor": lambda img, lm, rng: (png(pallor(img, lm, rng)), "png"),
    "flash": lambda img, lm, rng: (png(flash(img, lm, rng)), "png"),
    "from_above": lambda img, lm, rng: (png(from_above(img, lm, rng)), "png"),
    "cloth": lambda img, lm, rng: (png(cloth(img, lm, rng)), "png"),
    "hand": lambda img, lm, rng: (png(hand(img, lm, rng)), "png"),
    "pm_combined": lambda img, lm, rng: (pm_combined(img, lm, rng), "jpg"),
    "pm_hard": lambda img, lm, rng: (pm_hard(img, lm, rng), "jpg"),
}

#: Every group of derived photos the accuracy benchmarks run: bench/degrade.py's and this one. (The search
#: benchmark's queries stay degrade.GROUPS.)
GROUPS = {**degrade.GROUPS, "postmortem": POSTMORTEM_VARIANTS}
