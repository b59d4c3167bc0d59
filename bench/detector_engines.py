"""YuNet on onnxruntime (what Nomina runs) against OpenCV's ``FaceDetectorYN`` on the same file: detections
and speed, in one run.

1. Detections: every sample photo, the no-face photos, and the first ``--probes`` London smiling probes in
   every derived set of bench/degrade.py and bench/postmortem.py, given to both detectors as they are. For
   each photo, the number of faces (floor 0.3) must agree; for each face, the largest landmark and box
   difference and the score difference are kept.
2. The network alone: both detectors on the 102 London neutral photos (400 x 400), one thread, in turn
   ``--rounds`` times; milliseconds a photo, median and interquartile range.
3. A case photo's analysis: ``FaceAnalyzer.analyze(..., any_orientation=True)`` (the photo searched turned
   four ways, as case photos are by default) of 40 London smiling photos, one thread, ``--rounds`` times in
   turn; milliseconds a photo, median.
4. Enrolment: ``Workspace.import_references`` of the 244 sample photos (as bench/enrolment.py, 2 workers),
   ``--imports`` times with each detector, taken in turn: photos a second and CPU milliseconds a photo.
   OpenCV's detector is put in place of Nomina's for its imports; nothing else changes.

    python bench/detector_engines.py [--probes 25] [--rounds 5] [--imports 5] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from degrade import GROUPS as DEGRADE_GROUPS
from enrolment import run_nomina
from postmortem import POSTMORTEM_VARIANTS

import nomina
import nomina.models.yunet as yunet
from nomina import FaceAnalyzer, load_model, load_settings
from nomina.demo import sample_sets
from nomina.imaging import decode_image, read_photo
from nomina.models import Detection

HERE = Path(__file__).resolve().parent
FACES = HERE.parent.parent / "shared" / "faces"
FLOOR, NMS, TOP_K = 0.3, 0.3, 5000


class OpenCVYuNet:
    """OpenCV's own detector for the file, with Nomina's floor, suppression and number of faces."""

    def __init__(self, path: str) -> None:
        self._net = cv2.FaceDetectorYN.create(path, "", (320, 320), FLOOR, NMS, TOP_K)

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        self._net.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, rows = self._net.detect(bgr)
        rows = np.zeros((0, 15), np.float32) if rows is None else rows
        return [
            Detection(box=tuple(map(float, r[:4])), landmarks=r[4:14].reshape(5, 2).copy(), score=float(r[14]))
            for r in rows
        ]


def photos_to_compare(probes: int) -> dict[str, np.ndarray]:
    images = {str(p.relative_to(FACES)): cv2.imread(str(p)) for p in sorted(FACES.glob("*/*/*.jpg"))}
    images |= {str(p.relative_to(FACES)): cv2.imread(str(p)) for p in sorted((FACES / "noface").iterdir())}
    images = {k: v for k, v in images.items() if v is not None}
    detector = OpenCVYuNet(str(load_model("sface").paths["detector"]))
    variants = {name: v for group in DEGRADE_GROUPS.values() for name, v in group.items()} | POSTMORTEM_VARIANTS
    rng = np.random.default_rng(20240611)
    for path in sorted(FACES.glob("london/*/*_smiling.jpg"))[:probes]:
        image = cv2.imread(str(path))
        found = detector.detect(image)
        if not found:
            continue
        marks = max(found, key=lambda d: d.score).landmarks.astype(np.float64)
        for name, variant in variants.items():
            data, _ = variant(image, marks, rng)
            images[f"{path.name} {name}"] = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return images


def compare(images: dict[str, np.ndarray], ours: yunet.YuNetDetector, theirs: OpenCVYuNet) -> dict:
    differ, faces = [], 0
    worst = {"landmarks_px": 0.0, "box_px": 0.0, "score": 0.0}
    for name, image in images.items():
        a = sorted(theirs.detect(image), key=lambda d: -d.score)
        b = sorted(ours.detect(image), key=lambda d: -d.score)
        if len(a) != len(b):
            differ.append(name)
            continue
        for x, y in zip(a, b, strict=True):
            faces += 1
            worst["landmarks_px"] = max(worst["landmarks_px"], float(np.abs(x.landmarks - y.landmarks).max()))
            worst["box_px"] = max(worst["box_px"], float(np.abs(np.subtract(x.box, y.box)).max()))
            worst["score"] = max(worst["score"], abs(x.score - y.score))
    return {"photos": len(images), "faces": faces, "photos_with_other_face_counts": differ, "largest_difference": worst}


def network_speed(ours: yunet.YuNetDetector, theirs: OpenCVYuNet, rounds: int) -> dict:
    images = [cv2.imread(str(p)) for p in sorted(FACES.glob("london/*/*_neutral.jpg"))]
    times: dict[str, list[float]] = {"onnxruntime": [], "opencv": []}
    for _ in range(rounds):
        for name, detector in (("opencv", theirs), ("onnxruntime", ours)):
            for image in images:
                start = time.perf_counter()
                detector.detect(image)
                times[name].append((time.perf_counter() - start) * 1e3)
    return {
        name: {"median_ms": round(statistics.median(t), 2), "iqr_ms": [round(q, 2) for q in np.percentile(t, [25, 75])]}
        for name, t in times.items()
    }


def case_analysis(ours: yunet.YuNetDetector, theirs: OpenCVYuNet, rounds: int) -> dict:
    model, settings = load_model("sface"), load_settings()
    paths = sorted(FACES.glob("london/*/*_smiling.jpg"))[:40]
    images = [decode_image(read_photo(p), str(p), settings.max_pixels) for p in paths]
    analyzers = {
        name: FaceAnalyzer(model, settings, parts=(d, model.embedder))
        for name, d in (("opencv", theirs), ("onnxruntime", ours))
    }
    times: dict[str, list[float]] = {name: [] for name in analyzers}
    for _ in range(rounds):
        for name, analyzer in analyzers.items():
            for image in images:
                start = time.perf_counter()
                analyzer.analyze(image, any_orientation=True)
                times[name].append((time.perf_counter() - start) * 1e3)
    return {name: {"median_ms": round(statistics.median(t), 1)} for name, t in times.items()}


def enrolment_by_engine(imports: int, module: Any, name: str, engines: dict[str, Any]) -> dict:
    """``imports`` imports of the 244 sample photos with each engine in turn: ``module.name`` is set to the
    engine's class for its imports (what the model's builder makes, for the workers' networks too), and put
    back to the last engine, Nomina's own, after each."""
    refs, cases = sample_sets(FACES)
    gallery, probes = [p for _, p in refs], [p for _, p in cases]
    runs: dict[str, list[dict]] = {engine: [] for engine in engines}
    own = list(engines.values())[-1]
    for _ in range(imports):
        for engine, made in engines.items():
            setattr(module, name, made)
            try:
                run = run_nomina(gallery, probes, load_model("sface"))
            finally:
                setattr(module, name, own)
            assert run["failed"] == 0, run
            runs[engine].append({key: run[key] for key in ("photos_per_second", "cpu_ms_per_photo")})
            print(engine, runs[engine][-1], flush=True)
    summary = {
        engine: {key: statistics.median(r[key] for r in rs) for key in ("photos_per_second", "cpu_ms_per_photo")}
        for engine, rs in runs.items()
    }
    return {"photos": len(gallery) + len(probes), "runs": runs, "median": summary}


def arguments(doc: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--probes", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--imports", type=int, default=5)
    parser.add_argument("--out", type=Path)
    return parser.parse_args()


def finish(result: dict, args: argparse.Namespace, enrolment: Callable[[int], dict]) -> None:
    """Print the figures, run the imports, and save it all."""
    print(json.dumps(result, indent=1), flush=True)
    if args.imports:
        result["enrolment"] = enrolment(args.imports)
        print(json.dumps(result["enrolment"]["median"], indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")


def header() -> dict:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.system()} {platform.machine()}, {len(os.sched_getaffinity(0))} cores",
        "nomina_version": nomina.__version__,
        "opencv": cv2.__version__,
    }


def main() -> None:
    args = arguments(__doc__)
    cv2.setNumThreads(1)
    path = str(load_model("sface").paths["detector"])
    ours, theirs = yunet.YuNetDetector(path), OpenCVYuNet(path)
    result = header() | {
        "onnxruntime": yunet.ort.__version__,
        "detections": compare(photos_to_compare(args.probes), ours, theirs),
        "network_ms_a_photo": network_speed(ours, theirs, args.rounds),
        "case_photo_analysis": case_analysis(ours, theirs, args.rounds),
    }
    engines = {"opencv": OpenCVYuNet, "onnxruntime": yunet.YuNetDetector}
    finish(result, args, lambda imports: enrolment_by_engine(imports, yunet, "YuNetDetector", engines))


if __name__ == "__main__":
    main()
