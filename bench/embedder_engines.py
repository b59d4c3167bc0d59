"""SFace on OpenVINO (what Nomina runs) against OpenCV's DNN module on the same file: vectors and speed, in
one run.

1. Vectors: every face Nomina's detector finds in the photos bench/detector_engines.py compares (every
   sample photo, the no-face photos, and the first ``--probes`` London smiling probes in every derived set),
   aligned on its landmarks and given to both. Kept: the largest difference of the two outputs relative to
   the output's length (that length is a quality measure, so it must agree too) and the lowest cosine.
2. The network alone: the 102 London neutral faces, one thread, both engines in turn ``--rounds`` times;
   milliseconds a face, median and interquartile range.
3. Enrolment, measured as bench/detector_engines.py measures it, OpenCV's embedder put in place of Nomina's
   for its imports.

    python bench/embedder_engines.py [--probes 25] [--rounds 5] [--imports 5] [--out FILE.json]
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import cv2
import numpy as np
from detector_engines import arguments, enrolment_by_engine, finish, header, photos_to_compare

import nomina
import nomina.models.sface as sface
from nomina import load_model
from nomina.faces import align

HERE = Path(__file__).resolve().parent
FACES = HERE.parent.parent / "shared" / "faces"


class OpenCVSFace(sface.SFaceEmbedder):
    """The same file on OpenCV's DNN module, fed as Nomina feeds OpenVINO (as Nomina ran it before)."""

    def __init__(self, path: str) -> None:
        self._net = cv2.dnn.readNetFromONNX(path)

    def outputs(self, aligned: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(aligned), self.dim), np.float32)
        for i, crop in enumerate(aligned):
            self._net.setInput(cv2.dnn.blobFromImage(crop, 1.0, (112, 112), (0, 0, 0), swapRB=True), "data")
            out[i] = self._net.forward().reshape(-1)
        return out


def faces_to_compare(model: nomina.FaceModel, probes: int) -> list[np.ndarray]:
    return [
        align(image, found.landmarks)
        for image in photos_to_compare(probes).values()
        for found in model.detector.detect(image)
    ]


def neutral_faces(model: nomina.FaceModel) -> list[np.ndarray]:
    images = [cv2.imread(str(p)) for p in sorted(FACES.glob("london/*/*_neutral.jpg"))]
    return [align(image, max(model.detector.detect(image), key=lambda d: d.score).landmarks) for image in images]


def compare(faces: list[np.ndarray], ours: sface.SFaceEmbedder, theirs: OpenCVSFace) -> dict:
    a, b = theirs.outputs(faces), ours.outputs(faces)
    length = np.linalg.norm(a, axis=1)
    cosine = np.sum(a * b, axis=1) / (length * np.linalg.norm(b, axis=1))
    return {
        "faces": len(faces),
        "largest_relative_difference": float((np.linalg.norm(a - b, axis=1) / length).max()),
        "lowest_cosine": float(cosine.min()),
    }


def network_speed(ours: sface.SFaceEmbedder, theirs: OpenCVSFace, faces: list[np.ndarray], rounds: int) -> dict:
    times: dict[str, list[float]] = {"openvino": [], "opencv": []}
    for _ in range(rounds):
        for name, engine in (("opencv", theirs), ("openvino", ours)):
            for face in faces:
                start = time.perf_counter()
                engine.outputs([face])
                times[name].append((time.perf_counter() - start) * 1e3)
    return {
        name: {"median_ms": round(statistics.median(t), 2), "iqr_ms": [round(q, 2) for q in np.percentile(t, [25, 75])]}
        for name, t in times.items()
    }


def main() -> None:
    args = arguments(__doc__)
    cv2.setNumThreads(1)
    model = load_model("sface")
    ours, theirs = sface.SFaceEmbedder(model.paths["embedder"]), OpenCVSFace(model.paths["embedder"])
    import openvino  # only to name its version (Nomina has made its telemetry unimportable first)

    result = header() | {
        "openvino": openvino.get_version(),
        "vectors": compare(faces_to_compare(model, args.probes), ours, theirs),
        "network_ms_a_face": network_speed(ours, theirs, neutral_faces(model), args.rounds),
    }
    engines = {"opencv": OpenCVSFace, "openvino": sface.SFaceEmbedder}
    finish(result, args, lambda imports: enrolment_by_engine(imports, sface, "SFaceEmbedder", engines))


if __name__ == "__main__":
    main()
