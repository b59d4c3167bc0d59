"""Photo -> faces: detection at sensible scales, alignment, quality measures and embedding.

Faces in a photo are numbered from 1, left to right by the centre of their box (top to bottom where two
centres share a column). A photo input's ``face`` number picks one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import FaceNumberInvalid, InvalidField, NoFaceFound, SeveralFaces
from .imaging import DecodedImage, decode_image, read_photo
from .models import Detection, Detector, Embedder, FaceModel, MeasuringEmbedder
from .quality import Quality, measure
from .records import PhotoInput, check_eyes
from .settings import Settings

__all__ = [
    "ALIGNED_SIZE",
    "Face",
    "FaceAnalyzer",
    "Quality",
    "align",
    "compare_photos",
    "embedding_crop",
    "one_opencv_thread",
    "parse_eyes",
]

ALIGNED_SIZE = 112
#: Where the five landmarks sit in the 112 x 112 crop the ArcFace/SFace family is trained on.
TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
# Detection scales: the first pass sees the photo at `detection_size` on its long side; if it finds
# nothing, a large photo is searched in tiles at full resolution (small faces in big photos), then a
# small padded copy is tried (a face filling the whole frame is larger than YuNet's training range).
_SMALL_PASS = 320
_TILE_OVERLAP = 0.25
# YuNet's landmarks drift towards an upright face when the head is turned in the image plane (about
# 8 px mean error at 20-30 degrees on 400 px portraits). A face whose eye line is tilted by more than
# this is turned upright around its centre and its landmarks detected again, up to twice.
_LEVEL_ROLL = 5.0
_LEVEL_ROUNDS = 2
_LEVEL_FACE_PX = 160
# Smoothing (Gaussian sigma in pixels) applied after stretching the contrast of a dark photo, so that
# amplified sensor noise does not hide the face: stronger on the detector's copy, lighter on the
# 112 x 112 crop that is embedded.
_DETECT_SMOOTHING = 2.5
_EMBED_SMOOTHING = 1.5


@dataclass
class Face:
    """One face in a photo, in the upright photo's pixel coordinates."""

    number: int
    box: tuple[float, float, float, float]
    landmarks: np.ndarray  # 5 x 2 detected, or 2 x 2 (eye centres) when marked by hand
    manual: bool
    quality: Quality
    embedding: np.ndarray
    aligned: np.ndarray  # 112 x 112 BGR crop the embedding came from


@contextmanager
def one_opencv_thread() -> Iterator[None]:
    """OpenCV's own thread pool limited to one thread while workers analyse photos in parallel.

    Two workers each running OpenCV's two threads on two cores measured about 6% slower than two
    single-threaded workers. The previous setting is restored afterwards.
    """
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation taking src points to dst (Umeyama, 1991)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    fix = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        fix[1, 1] = -1
    rot = u @ fix @ vt
    var = (s0**2).sum() / len(src)
    scale = float((sig * np.diag(fix)).sum() / var)
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def align(
    bgr: np.ndarray, landmarks: np.ndarray, template: np.ndarray = TEMPLATE, size: int = ALIGNED_SIZE
) -> np.ndarray:
    """The ``size`` x ``size`` crop with five landmarks (or the two eye centres) moved to ``template``'s points:
    by default the 112 x 112 crop of the ArcFace/SFace family."""
    points = np.asarray(landmarks, dtype=np.float64)
    matrix = similarity_transform(points, template[: len(points)])
    return cv2.warpAffine(bgr, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def parse_eyes(text: str) -> np.ndarray:
    """``X1,Y1,X2,Y2`` (the two eye centres, in photo pixels) as a 2 x 2 array, image-left eye first."""
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise InvalidField(f"eyes: expected X1,Y1,X2,Y2 (four numbers), got {text!r}")
    return check_eyes(np.array(values).reshape(2, 2))


def _nms(dets: list[Detection]) -> list[Detection]:
    if len(dets) < 2:
        return dets
    boxes = [[int(d.box[0]), int(d.box[1]), int(d.box[2]), int(d.box[3])] for d in dets]
    keep = cv2.dnn.NMSBoxes(boxes, [d.score for d in dets], 0.0, 0.3)
    return [dets[int(i)] for i in np.asarray(keep).reshape(-1)]


def _rescale(det: Detection, scale: float, dx: float = 0.0, dy: float = 0.0) -> Detection:
    x, y, w, h = det.box
    return Detection(
        box=((x - dx) / scale, (y - dy) / scale, w / scale, h / scale),
        landmarks=(det.landmarks - np.array([dx, dy], dtype=np.float32)) / scale,
        score=det.score,
    )


def _grey_range(bgr: np.ndarray) -> tuple[float, float]:
    """1st and 99th percentile of the 8-bit values (from a histogram: ten times faster than sorting)."""
    sample = np.ascontiguousarray(bgr[:: max(1, bgr.shape[0] // 256), :: max(1, bgr.shape[1] // 256)])
    counts = cv2.calcHist([sample.reshape(-1, 1)], [0], None, [256], [0, 256]).ravel().cumsum()
    lo, hi = np.searchsorted(counts, (0.01 * counts[-1], 0.99 * counts[-1]))
    return float(lo), float(hi)


def _low_contrast(bgr: np.ndarray) -> bool:
    """Under-exposed or washed out: the 1st-99th percentile grey levels span less than half the scale."""
    lo, hi = _grey_range(bgr)
    return hi - lo < 128


def embedding_crop(aligned: np.ndarray) -> np.ndarray:
    """What the embedder is given for an aligned face crop: a dark or washed-out face contrast-stretched."""
    return _stretch_contrast(aligned, _EMBED_SMOOTHING) if _low_contrast(aligned) else aligned


def _stretch_contrast(bgr: np.ndarray, smoothing: float) -> np.ndarray:
    """Grey levels stretched from the 1st-99th percentile to 0-255, then smoothed against noise."""
    lo, hi = _grey_range(bgr)
    stretched = np.clip((bgr.astype(np.float32) - lo) * (255.0 / max(hi - lo, 1.0)), 0, 255)
    smoothed: np.ndarray = cv2.GaussianBlur(stretched.astype(np.uint8), (0, 0), smoothing)
    return smoothed


def _unturn(det: Detection, quarter: int, width: int, height: int) -> Detection:
    """A detection made on ``np.rot90(photo, quarter)`` in the photo's own coordinates."""
    x, y, w, h = det.box
    points = np.vstack([det.landmarks, [[x, y], [x + w, y], [x, y + h], [x + w, y + h]]]).astype(np.float64)
    sizes = [(width, height)]
    for _ in range(quarter):
        sizes.append((sizes[-1][1], sizes[-1][0]))
    for step in range(quarter, 0, -1):  # undo one counter-clockwise quarter turn at a time
        previous_width = sizes[step - 1][0]
        points = np.stack([previous_width - 1 - points[:, 1], points[:, 0]], axis=1)
    corners = points[5:]
    lo, hi = corners.min(0), corners.max(0)
    box = (float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))
    return Detection(box=box, landmarks=points[:5].astype(np.float32), score=det.score)


class FaceAnalyzer:
    """Finds, aligns, measures and embeds faces with one model. Not thread-safe: one per thread."""

    def __init__(
        self,
        model: FaceModel,
        settings: Settings,
        parts: tuple[Detector, Embedder] | None = None,
    ) -> None:
        self.model = model
        self.settings = settings
        self.detector, self.embedder = parts or (model.detector, model.embedder)

    def turns(self, reference_photo: bool) -> bool:
        """Whether a photo is also searched turned by quarter turns (setting NOMINA_ORIENTATION_SEARCH).

        ``cases``: every photo but a reference photo, which is taken as supplied; ``all``; ``off``.
        """
        mode = self.settings.orientation_search
        return mode == "all" or (mode == "cases" and not reference_photo)

    # -- detection --------------------------------------------------------------------------------
    def _detect_scaled(
        self, bgr: np.ndarray, long_side: int, pad: float = 0.0, enhance: bool = False
    ) -> list[Detection]:
        h, w = bgr.shape[:2]
        scale = min(1.0, long_side / max(h, w))
        if scale == 1.0:
            img = bgr
        elif min(h, w) * scale >= 1:
            img = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        else:  # a very thin photo (49000 x 1) would scale to nothing: keep at least 1 px
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            img = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        if enhance:
            img = _stretch_contrast(img, _DETECT_SMOOTHING)
        border = int(round(pad * max(img.shape[:2])))
        if border:
            img = cv2.copyMakeBorder(img, border, border, border, border, cv2.BORDER_CONSTANT, value=(127, 127, 127))
        return [_rescale(d, scale, border, border) for d in self.detector.detect(img)]

    def _detect_tiles(self, bgr: np.ndarray, tile: int) -> list[Detection]:
        h, w = bgr.shape[:2]
        step = max(1, int(tile * (1 - _TILE_OVERLAP)))
        found: list[Detection] = []
        for y0 in range(0, max(1, h - tile + step), step):
            for x0 in range(0, max(1, w - tile + step), step):
                part = bgr[y0 : y0 + tile, x0 : x0 + tile]
                found += [_rescale(d, 1.0, -x0, -y0) for d in self.detector.detect(part)]
        return found

    def _detect_upright(self, bgr: np.ndarray) -> list[Detection]:
        threshold = self.settings.detection_threshold
        size = self.settings.detection_size
        h, w = bgr.shape[:2]

        def kept(dets: list[Detection]) -> list[Detection]:
            return [d for d in dets if d.score >= threshold]

        dets = kept(self._detect_scaled(bgr, size))
        if not dets and max(h, w) > size:
            dets = kept(_nms(self._detect_tiles(bgr, size)))
        if not dets:
            dets = kept(self._detect_scaled(bgr, _SMALL_PASS, pad=0.25))
        if not dets and _low_contrast(bgr):
            dets = kept(self._detect_scaled(bgr, size, enhance=True))
        return _nms(dets)

    def detect(self, bgr: np.ndarray, any_orientation: bool = False) -> list[Detection]:
        """Faces scoring at least the detection threshold, in numbered order (left to right).

        Passes, each only when the one before found nothing: the photo at ``detection_size``; tiles at
        full resolution (small faces in a big photo); a small padded copy (a face filling the frame);
        a contrast-stretched, smoothed copy when the photo is dark or washed out. With
        ``any_orientation`` the photo is also searched turned by 90, 180 and 270 degrees and the
        orientation whose best face scores highest once levelled is kept: the detector finds sideways
        and upside-down faces but places their landmarks wrongly, which ruins alignment.
        """
        dets = self._detect_upright(bgr)
        if any_orientation:
            best, dets = self._level_best(bgr, dets)
            for quarter in (1, 2, 3):
                turned = self._detect_upright(np.ascontiguousarray(np.rot90(bgr, quarter)))
                score, turned = self._level_best(bgr, [_unturn(d, quarter, bgr.shape[1], bgr.shape[0]) for d in turned])
                if score > best:
                    best, dets = score, turned
        return sorted(dets, key=lambda d: (round(d.box[0] + d.box[2] / 2), d.box[1] + d.box[3] / 2))

    # -- faces ------------------------------------------------------------------------------------
    def _faces(
        self,
        bgr: np.ndarray,
        marks: Sequence[tuple[np.ndarray, tuple[float, float, float, float], float | None]],
        numbers: list[int],
        manual: bool,
    ) -> list[Face]:
        crops = [align(bgr, lm) for lm, _, _ in marks]
        prepared = [embedding_crop(c) for c in crops]
        # SFace and ArcFace models also give the length of their network's output (a quality measure, kept in
        # the Quality field the embedder names); the fused sface+dlib model aligns dlib's chip its own way and so
        # reads the faces from the photo.
        norms: Sequence[dict[str, float]]
        if isinstance(self.embedder, MeasuringEmbedder):
            vectors, measured = self.embedder.embed_faces(bgr, [np.asarray(lm) for lm, _, _ in marks], prepared)
            norms = [{self.embedder.norm_field: float(n)} for n in measured]
        else:
            vectors, norms = self.embedder.embed(prepared), [{}] * len(crops)
        return [
            Face(
                number=number,
                box=tuple(float(v) for v in box),  # type: ignore[arg-type]
                landmarks=np.asarray(lm, dtype=np.float32),
                manual=manual,
                quality=measure(crop, np.asarray(lm, dtype=np.float64), score, **norm),
                embedding=vec,
                aligned=crop,
            )
            for (lm, box, score), number, crop, vec, norm in zip(marks, numbers, crops, vectors, norms, strict=True)
        ]

    def _level_best(self, bgr: np.ndarray, dets: list[Detection]) -> tuple[float, list[Detection]]:
        """The best face levelled in place, and how surely it is a face once turned upright by its own
        landmarks (levelling it again later finds it level and costs nothing)."""
        if not dets:
            return 0.0, dets
        i = max(range(len(dets)), key=lambda k: dets[k].score)
        levelled = self.level(bgr, dets[i])
        return levelled.score, [*dets[:i], levelled, *dets[i + 1 :]]

    def level(self, bgr: np.ndarray, det: Detection) -> Detection:
        """Landmarks measured again on a copy of the face turned upright, when the face is tilted.

        The score becomes that of the face seen upright: landmarks that were wrong (an upside-down
        face read as upright) turn it the wrong way, and it then scores low.
        """
        for _ in range(_LEVEL_ROUNDS):
            eye_line = det.landmarks[1] - det.landmarks[0]
            roll = math.degrees(math.atan2(float(eye_line[1]), float(eye_line[0])))
            if abs(roll) < _LEVEL_ROLL:
                break
            x, y, w, h = det.box
            cx, cy = x + w / 2, y + h / 2
            side = max(w, h)
            scale = min(1.0, _LEVEL_FACE_PX / side)
            size = max(32, int(round(2.2 * side * scale)))
            matrix = cv2.getRotationMatrix2D((float(cx), float(cy)), roll, scale)
            matrix[:, 2] += np.array([size / 2 - cx, size / 2 - cy])
            patch = cv2.warpAffine(bgr, matrix, (size, size), borderMode=cv2.BORDER_REPLICATE)
            found = self.detector.detect(patch)
            if not found:
                break
            centre = np.array([size / 2, size / 2])
            best = min(found, key=lambda d: float(np.sum((d.landmarks[:2].mean(0) - centre) ** 2)))
            back = cv2.invertAffineTransform(matrix)
            landmarks = best.landmarks @ back[:, :2].T + back[:, 2]
            det = Detection(box=det.box, landmarks=landmarks.astype(np.float32), score=best.score)
        return det

    def describe(self, image: DecodedImage, detections: list[Detection], numbers: list[int]) -> list[Face]:
        """Align, measure and embed chosen detections (``numbers`` are their 1-based numbers)."""
        detections = [self.level(image.pixels, d) for d in detections]
        marks = [(d.landmarks, d.box, d.score) for d in detections]
        return self._faces(image.pixels, marks, numbers, manual=False)

    def analyze(self, image: DecodedImage, any_orientation: bool = False) -> list[Face]:
        """Every face in the photo, numbered, measured and embedded."""
        dets = self.detect(image.pixels, any_orientation)
        return self.describe(image, dets, list(range(1, len(dets) + 1)))

    def central_face(self, image: DecodedImage, any_orientation: bool = False) -> tuple[Face | None, int]:
        """The face nearest the photo's centre (the LFW convention), and how many faces were found."""
        dets = self.detect(image.pixels, any_orientation)
        if not dets:
            return None, 0
        centre = np.array([image.width / 2, image.height / 2])

        def distance(d: Detection) -> float:
            x, y, w, h = d.box
            return float(np.hypot(x + w / 2 - centre[0], y + h / 2 - centre[1]))

        i = min(range(len(dets)), key=lambda k: distance(dets[k]))
        return self.describe(image, [dets[i]], [i + 1])[0], len(dets)

    def from_eyes(self, image: DecodedImage, eyes: np.ndarray, name: str = "eyes") -> Face:
        """A face from eye centres marked by hand (for photos that defeat the detector)."""
        h, w = image.height, image.width
        if not ((eyes[:, 0] >= 0) & (eyes[:, 0] < w) & (eyes[:, 1] >= 0) & (eyes[:, 1] < h)).all():
            raise InvalidField(f"{name}: eye centres must lie inside the {w}x{h} photo", field="eyes")
        ied = float(np.hypot(*(eyes[1] - eyes[0])))
        centre = eyes.mean(0)
        # A box of the usual proportions around the eyes, for display only.
        box = (float(centre[0] - 1.2 * ied), float(centre[1] - 1.1 * ied), 2.4 * ied, 2.9 * ied)
        return self._faces(image.pixels, [(eyes, box, None)], [1], manual=True)[0]

    def choose(
        self, image: DecodedImage, photo: PhotoInput, name: str, require_face: bool, any_orientation: bool = False
    ) -> Face | None:
        """The one face a photo contributes: marked by hand, the ``face`` number, or the only face.

        Several faces without a number are refused (the user must say which person is meant); no face
        is refused when ``require_face``, else None.
        """
        if photo.eyes is not None:
            return self.from_eyes(image, photo.eyes, name=f"{name}: eyes")
        dets = self.detect(image.pixels, any_orientation)
        if not dets:
            if require_face:
                raise NoFaceFound(f"{name}: no face detected; a clear photo of the face is needed", field="photos")
            return None
        if photo.face is not None:
            if photo.face > len(dets):
                raise FaceNumberInvalid(
                    f"{name}: face {photo.face} asked for, but {len(dets)} face(s) found", field="face"
                )
            number = photo.face
        elif len(dets) > 1:
            raise SeveralFaces(f"{name}: {len(dets)} faces found; choose one by its number", field="face")
        else:
            number = 1
        return self.describe(image, [dets[number - 1]], [number])[0]


def compare_photos(analyzer: FaceAnalyzer, a: PhotoInput, b: PhotoInput) -> float:
    """Cosine similarity of the chosen faces of two photos."""
    vectors = []
    for photo in (a, b):
        name = str(photo.path)
        image = decode_image(read_photo(photo.path), name, analyzer.settings.max_pixels)
        face = analyzer.choose(
            image, photo, name, require_face=True, any_orientation=analyzer.turns(reference_photo=False)
        )
        assert face is not None
        vectors.append(face.embedding)
    return float(np.dot(vectors[0], vectors[1]))
