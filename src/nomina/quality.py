"""Face quality: measures of one aligned face, a quality score with named reasons, and the enrolment gate.

The measures (:class:`Quality`) are taken on the 112 x 112 aligned crop and the five landmarks, before
any contrast stretching. :func:`assess` turns them into a score from 0 to 100 and the reasons that lowered
it; :func:`gate` says whether a face passes the workspace's quality gate.

How the score is made. Each aspect of the face that bears on recognition gives a factor from 0 (unusable)
to 1 (no harm), rising between two bounds; the score is 100 times the product of the factors, so two
moderate defects count more than one. Sizes and image measures that act multiplicatively (pixels between
the eyes, fine detail, signal-to-noise, contrast) rise on a log scale, angles linearly.

======================  ==========================================  ===========  ============
factor                  measure                                     0 at         1 from
======================  ==========================================  ===========  ============
size                    pixels between the eye centres              8 px         48 px
focus                   fine detail (see below)                     0.004        0.1
noise                   contrast / noise (signal-to-noise)          1            8
exposure: contrast      standard deviation of grey levels           4            24
exposure: level         mean grey level (dark; bright)              5; 250       30; 225
pose: yaw               turn to the side (from landmarks)           60 deg       15 deg
pose: pitch             tilt up or down (from landmarks)            45 deg       15 deg
detection               detector score                              0.5          0.9
response                length of the network's output before       SFace: 9     SFace: 14
                        normalisation (SFace and ArcFace models)    ArcFace:     ArcFace: 26
                                                                    16.5
======================  ==========================================  ===========  ============

Fine detail is the variance of the crop's Laplacian less what noise of the measured level contributes
to it (20 sigma^2 for the 3 x 3 Laplacian), divided by the grey-level variance, so that a dark but sharp
face is not called blurred and a noisy one is not called sharp. Noise is estimated as in J. Immerkaer,
"Fast noise variance estimation", Computer Vision and Image Understanding 64 (1996) 300-302. 48 px between
the eyes is 80% of the 60 px of the ISO/IEC 19794-5 token face image; below 8 px the detector itself
finds little. The angles are rough (the landmarks give them within about 10 degrees); a face marked by
hand has no pose or detector score, which leaves those factors out.

The response factor is the one measure that comes from the face model itself: a face recognition network
trained with a margin-based loss gives a shorter output for a face it finds less distinctive (occluded,
compressed, blurred or small faces; P. Terhorst et al., "SER-FIQ", CVPR 2020, and Q. Meng et al.,
"MagFace", CVPR 2021, use this). It is measured for the models built on SFace (``sface`` and
``sface+dlib``: SFace's output, ``sface_norm``) and on ArcFace (``arcface-mbf`` and ``yunet+arcface-mbf``:
ArcFace's output, ``arcface_norm``); None for other models, which leaves the factor out. The two
networks scale their outputs differently, so each has its bounds. It rises on a log scale, and its bounds
are the only ones fitted on data: they minimise the area under the error-versus-reject curve on the
genuine comparisons of one half of the London sample identities, degraded every way ``bench/`` knows (with
``sface``'s errors for SFace's bounds, ``yunet+arcface-mbf``'s for ArcFace's), and every figure of the
score is reported on the other half (``bench/quality_erc.py``). Many clear faces score 0.8-1 on it (clean
sample portraits: median length 13.3 for SFace, 25.1 for ArcFace), so its reason is given only below 0.5
(a length under about 11.2 for SFace, 20.7 for ArcFace).

The bounds belong to the network files Nomina ships (the int8 SFace, ArcFace's ``w600k_mbf``); another file
given with ``NOMINA_MODEL_DIR`` may scale its output differently.

What the score does not see: changes to the face itself that leave a sharp, well-lit, frontal face the
model responds to strongly (swelling, injuries, decomposition, closed eyes, make-up, expression).
Occlusion and heavy compression lower it through the response factor, but not always enough. A high
score says the photo is technically good and the model sees a face in it, not that the face can be
recognised.

The gate (workspace setting ``quality_gate``): ``off`` accepts every face; ``standard`` refuses a face
with fewer than 20 px between the eyes, turned more than 45 degrees, tilted more than 40 degrees, or
scoring below 15; ``strict`` asks for 40 px, 20 and 20 degrees, a score of 40 and, for a detected face,
a detector score of 0.8. A reference photo that fails is refused with the reasons unless the user
overrides the gate, which is recorded; a case face that fails is searched, and the search carries a
warning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

__all__ = ["GATE_MODES", "Assessment", "Quality", "assess", "gate", "measure", "stored"]

GATE_MODES = ("off", "standard", "strict")

# The inner part of the aligned crop (eyes to chin, cheek to cheek), where grey levels are measured.
_INNER = (slice(16, 100), slice(16, 96))
# Variance that white noise of standard deviation 1 adds to the 3 x 3 Laplacian (1+1+1+1+16).
_LAPLACIAN_NOISE_GAIN = 20.0
# Reasons are given for factors below this (a factor of 0.9-1 harms recognition little).
_REASON_BELOW = 0.9
# The response factor's bounds for each network's output length (fitted, see the module's docstring; keyed by
# the Quality field that holds the length) and the factor below which it gives its reason.
RESPONSE_BOUNDS: dict[str, tuple[float, float]] = {"sface_norm": (9.0, 14.0), "arcface_norm": (16.5, 26.0)}
_RESPONSE_REASON_BELOW = 0.5


@dataclass(frozen=True)
class Quality:
    """Measures of one face that bear on recognition. Angles are rough, from landmarks.

    ``contrast`` and ``noise`` are None on faces stored before they were measured. ``sface_norm`` and
    ``arcface_norm`` are the length of the embedding network's output before normalisation, the first for
    SFace-based models (since schema 0012), the second for ArcFace models (since 0013); at most one is
    set, and neither for other models or on faces stored before.
    """

    detector_score: float | None
    inter_eye_px: float
    sharpness: float  # variance of the Laplacian of the aligned grey crop
    brightness: float  # mean grey level of the aligned crop's inner part, 0-255
    roll: float  # degrees, eye line against the horizontal
    yaw: float | None  # degrees, + when the nose points to the image's right
    pitch: float | None  # degrees, + when the face tilts down
    contrast: float | None = None  # standard deviation of the inner part's grey levels
    noise: float | None = None  # estimated standard deviation of the noise, grey levels
    sface_norm: float | None = None  # length of SFace's output before normalisation (SFace-based models)
    arcface_norm: float | None = None  # length of ArcFace's output before normalisation (ArcFace models)

    def as_dict(self) -> dict[str, Any]:
        """The measures, rounded, with the quality score they give and the reasons it is below 100."""
        assessment = assess(self)
        return {
            "detector_score": _round(self.detector_score, 4),
            "inter_eye_px": _round(self.inter_eye_px, 1),
            "sharpness": _round(self.sharpness, 1),
            "brightness": _round(self.brightness, 1),
            "contrast": _round(self.contrast, 1),
            "noise": _round(self.noise, 2),
            "sface_norm": _round(self.sface_norm, 3),
            "arcface_norm": _round(self.arcface_norm, 3),
            "roll": _round(self.roll, 1),
            "yaw": _round(self.yaw, 1),
            "pitch": _round(self.pitch, 1),
            "score": round(assessment.score, 1),
            "reasons": assessment.reasons,
        }


@dataclass(frozen=True)
class Assessment:
    """A face's quality score (0-100), the factors it is the product of, and why it is below 100."""

    score: float
    factors: dict[str, float]
    reasons: list[str]


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


# -- measuring -------------------------------------------------------------------------------------------


def noise_sigma(grey: np.ndarray) -> float:
    """Standard deviation of additive noise in a grey image (Immerkaer 1996), robust to edges."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    response = cv2.filter2D(grey.astype(np.float64), -1, kernel)[1:-1, 1:-1]
    if response.size == 0:
        return 0.0
    return float(math.sqrt(math.pi / 2) * np.abs(response).sum() / (6 * response.size))


def measure(
    aligned: np.ndarray,
    landmarks: np.ndarray,
    score: float | None,
    sface_norm: float | None = None,
    arcface_norm: float | None = None,
) -> Quality:
    """The measures of an aligned face crop (BGR) and its landmarks in the photo (5 x 2, or 2 x 2 eyes), with
    the length of the network's output for the face when the model gives it (SFace's or ArcFace's)."""
    grey = cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY)
    inner = grey[_INNER]
    sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    left, right = landmarks[0], landmarks[1]
    eye_vec = right - left
    ied = float(np.hypot(*eye_vec))
    roll = math.degrees(math.atan2(eye_vec[1], eye_vec[0]))
    yaw, pitch = _pose(landmarks, ied)
    return Quality(
        detector_score=score,
        inter_eye_px=ied,
        sharpness=sharpness,
        brightness=float(inner.mean()),
        roll=roll,
        yaw=yaw,
        pitch=pitch,
        contrast=float(inner.std()),
        noise=noise_sigma(inner),
        sface_norm=sface_norm,
        arcface_norm=arcface_norm,
    )


# Depth of the nose tip in front of the eyes, as a fraction of the distance between the eyes
# (anthropometric average), used to turn landmark offsets into rough angles.
_NOSE_DEPTH = 0.55
# Where the nose tip sits between the eye line and the mouth in the aligned template (frontal face).
_TEMPLATE_NOSE_RATIO = (71.7366 - 51.59885) / (92.2848 - 51.59885)


def _pose(landmarks: np.ndarray, ied: float) -> tuple[float | None, float | None]:
    if len(landmarks) != 5 or ied <= 0:
        return None, None
    left, right = landmarks[0], landmarks[1]
    c, s = (right - left) / ied
    rot = np.array([[c, s], [-s, c]])  # into a frame where the eye line is horizontal
    pts = (landmarks - (left + right) / 2) @ rot.T / ied
    yaw = math.degrees(math.atan(pts[2, 0] / _NOSE_DEPTH))
    pitch = None
    mouth_y = pts[3:, 1].mean()
    if mouth_y > 0:
        ratio = pts[2, 1] / mouth_y
        pitch = math.degrees(math.atan((ratio - _TEMPLATE_NOSE_RATIO) * mouth_y / _NOSE_DEPTH))
    return yaw, pitch


def stored(face: Any) -> Quality:
    """The measures kept with a stored face (a ``nomina.store.schema.Face`` row)."""
    return Quality(
        detector_score=face.detector_score,
        inter_eye_px=face.inter_eye_px,
        sharpness=face.sharpness,
        brightness=face.brightness,
        roll=face.roll,
        yaw=face.yaw,
        pitch=face.pitch,
        contrast=face.contrast,
        noise=face.noise,
        sface_norm=face.sface_norm,
        arcface_norm=face.arcface_norm,
    )


# -- scoring -----------------------------------------------------------------------------------------------


def _rise(x: float, low: float, high: float) -> float:
    """0 at or below ``low``, 1 at or above ``high``, linear between."""
    return min(1.0, max(0.0, (x - low) / (high - low)))


def _log_rise(x: float, low: float, high: float) -> float:
    """As :func:`_rise` on a log scale (for sizes and ratios)."""
    return _rise(math.log(max(x, 1e-12)), math.log(low), math.log(high))


def focus_index(q: Quality) -> float | None:
    """Fine detail: Laplacian variance less the noise's share, over the grey-level variance."""
    if q.contrast is None or q.noise is None:
        return None
    return max(0.0, q.sharpness - _LAPLACIAN_NOISE_GAIN * q.noise**2) / max(q.contrast, 1.0) ** 2


def assess(q: Quality) -> Assessment:
    """The quality score and its reasons (see the module's docstring for every bound)."""
    factors: dict[str, float] = {}
    reasons: list[str] = []

    def factor(name: str, value: float, reason: str, below: float = _REASON_BELOW) -> None:
        factors[name] = value
        if value < below:
            reasons.append(reason)

    factor("size", _log_rise(q.inter_eye_px, 8, 48), f"small face: {q.inter_eye_px:.0f} px between the eyes")
    focus = focus_index(q)
    if focus is not None:
        factor("focus", _log_rise(focus, 0.004, 0.1), f"blurred: little fine detail (focus {focus:.3f})")
    if q.contrast is not None and q.noise is not None:
        snr = q.contrast / max(q.noise, 0.1)
        factor("noise", _log_rise(snr, 1, 8), f"noisy: signal-to-noise {snr:.1f}")
        factor("contrast", _log_rise(q.contrast, 4, 24), f"low contrast: grey levels spread {q.contrast:.1f}")
    if q.brightness < 30:
        factor("level", _rise(q.brightness, 5, 30), f"too dark: mean grey level {q.brightness:.0f} of 255")
    elif q.brightness > 225:
        factor("level", 1 - _rise(q.brightness, 225, 250), f"too bright: mean grey level {q.brightness:.0f} of 255")
    if q.yaw is not None:
        factor("yaw", 1 - _rise(abs(q.yaw), 15, 60), f"turned {abs(q.yaw):.0f} degrees to the side")
    if q.pitch is not None:
        factor("pitch", 1 - _rise(abs(q.pitch), 15, 45), f"tilted {abs(q.pitch):.0f} degrees up or down")
    for name, bounds in RESPONSE_BOUNDS.items():
        length = getattr(q, name)
        if length is not None:
            factor(
                "response",
                _log_rise(length, *bounds),
                f"weak response of the face model: output length {length:.1f}",
                below=_RESPONSE_REASON_BELOW,
            )
            break
    if q.detector_score is not None:
        factor("detection", _rise(q.detector_score, 0.5, 0.9), f"uncertain face: detector score {q.detector_score:.2f}")
    else:
        reasons.append("marked by hand: no detector score or pose")
    score = 100.0 * math.prod(factors.values())
    return Assessment(score, factors, reasons)


# mode -> (least pixels between the eyes, most yaw, most pitch, least score, least detector score)
_GATES: dict[str, tuple[float, float, float, float, float]] = {
    "standard": (20, 45, 40, 15, 0.0),
    "strict": (40, 20, 20, 40, 0.8),
}


def gate(q: Quality, mode: str) -> list[str]:
    """Why a face fails the quality gate in ``mode`` (off, standard, strict): empty when it passes."""
    if mode not in GATE_MODES:
        raise ValueError(f"quality gate {mode!r}: expected one of {', '.join(GATE_MODES)}")
    if mode == "off":
        return []
    min_ied, max_yaw, max_pitch, min_score, min_detector = _GATES[mode]
    failed = []
    if q.inter_eye_px < min_ied:
        failed.append(f"face too small: {q.inter_eye_px:.0f} px between the eyes ({mode} gate: at least {min_ied:.0f})")
    if q.yaw is not None and abs(q.yaw) > max_yaw:
        failed.append(f"face turned {abs(q.yaw):.0f} degrees to the side ({mode} gate: at most {max_yaw:.0f})")
    if q.pitch is not None and abs(q.pitch) > max_pitch:
        failed.append(f"face tilted {abs(q.pitch):.0f} degrees up or down ({mode} gate: at most {max_pitch:.0f})")
    if q.detector_score is not None and q.detector_score < min_detector:
        failed.append(f"uncertain face: detector score {q.detector_score:.2f} ({mode} gate: at least {min_detector})")
    a = assess(q)
    if a.score < min_score:
        why = "; ".join(a.reasons) or "several small defects"
        failed.append(f"quality {a.score:.0f} of 100 ({mode} gate: at least {min_score:.0f}): {why}")
    return failed
