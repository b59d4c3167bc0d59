"""Would an int8 SFace make enrolment faster? Post-training quantisation measured against the shipped file.

SFace took 18-22 ms a face on one core of this machine with OpenCV (AMD EPYC with AVX-512 VNNI), about half of
enrolment's CPU time. The file Nomina ships (``face_recognition_sface_2021dec_int8bq.onnx``) holds int8
weights in blocks that OpenCV turns back into float32 when it loads them, so it runs in float. This script
quantises SFace properly (weights *and* activations in int8, onnxruntime's ``quantize_static``) and
measures, in one run:

- speed, one thread, one face at a time: the shipped file and a float32 copy in OpenCV's default engine,
  each int8 variant in OpenCV (the classic engine: the default one refuses them) and in onnxruntime,
  taken in turn (A, B, C, A, B, C, ...) so that the machine's drifting speed treats them alike;
- how far each variant's embeddings move from the shipped file's (cosine, the 204 London photos);
- verification (false non-matches at each variant's own FAR 0.001 threshold) and rank-1 errors of the
  102 London smiling photos, clean and derived (``hard_combined``, ``pm_combined``, ``pm_hard``),
  against the 102 neutral ones.

The quantisation is calibrated on faces the figures are not about: the 40 Canada photos and the lisa/
and zoom/ ones, with flips, darkening, blur, JPEG and noise (9 copies of each). Figures are on London
only.

Needs a Python with Nomina, ``onnx`` and ``onnxruntime`` (not dependencies of Nomina)::

    python3 -m venv /tmp/int8-venv
    /tmp/int8-venv/bin/pip install . onnx onnxruntime

Run from the repository root (about 10 minutes on 2 cores)::

    /tmp/int8-venv/bin/python bench/int8_sface.py [--rounds 220] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from degrade import HARD_VARIANTS, clean_landmarks, make_variant
from postmortem import POSTMORTEM_VARIANTS

import nomina
from nomina.faces import embedding_crop
from nomina.imaging import decode_image, read_photo
from nomina.models import onnx_graph
from nomina.models.manifest import MODELS, locate_files

FACES = Path(os.environ.get("NOMINA_TEST_FACES") or Path(__file__).resolve().parents[2] / "shared" / "faces")
DERIVED = {
    "hard_combined": HARD_VARIANTS["hard_combined"],
    "pm_combined": POSTMORTEM_VARIANTS["pm_combined"],
    "pm_hard": POSTMORTEM_VARIANTS["pm_hard"],
}


def dequantised(path: Path) -> bytes:
    """The shipped SFace file with its block-quantised weights turned into float32 initialisers, as OpenCV
    does at load time (onnxruntime's quantiser needs a float model)."""
    return bytes(onnx_graph.float_weights(onnx_graph.read(path.read_bytes())).SerializeToString())


def crops(analyzer: nomina.FaceAnalyzer, photos: list[Path], max_pixels: int, turned: bool = False) -> list[np.ndarray]:
    """SFace's input for the most central face of each photo, aligned by Nomina's own pipeline (``turned``:
    searched in the four orientations too, as a case photo is)."""
    out = []
    for photo in photos:
        image = decode_image(read_photo(photo), str(photo), max_pixels)
        face, _ = analyzer.central_face(image, any_orientation=turned)
        out.append(embedding_crop(face.aligned) if face is not None else np.zeros((112, 112, 3), np.uint8))
    return out


def augmented(faces: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for c in faces:
        f = cv2.flip(c, 1)
        out += [c, f, np.clip(c * 0.55, 0, 255).astype(np.uint8), np.clip(f * 1.3 + 10, 0, 255).astype(np.uint8)]
        out += [cv2.GaussianBlur(c, (0, 0), 1.5), cv2.GaussianBlur(f, (0, 0), 2.5)]
        for image, quality in ((c, 20), (f, 45)):
            out.append(cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], 1))
        out.append(np.clip(c * 0.7 + rng.normal(0, 6, c.shape), 0, 255).astype(np.uint8))
    return out


def blob(crop: np.ndarray) -> np.ndarray:
    return cv2.dnn.blobFromImage(crop, 1.0, (112, 112), (0, 0, 0), swapRB=True)


def quantise(float_model: Path, calibration: list[np.ndarray], folder: Path) -> dict[str, Path]:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.blobs = iter([{"data": blob(c)} for c in calibration])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.blobs, None)

    prepared = folder / "sface_pre.onnx"
    quant_pre_process(str(float_model), str(prepared), skip_symbolic_shape=True)  # folds batch norms
    variants = {
        "QDQ, per channel, u8 activations": (QuantFormat.QDQ, CalibrationMethod.MinMax),
        "QDQ, per channel, u8, percentile": (QuantFormat.QDQ, CalibrationMethod.Percentile),
        "QOperator, per channel, u8 activations": (QuantFormat.QOperator, CalibrationMethod.MinMax),
    }
    made = {}
    for n, (name, (form, method)) in enumerate(variants.items()):
        out = folder / f"sface_int8_{n}.onnx"
        extra = {"CalibPercentile": 99.999} if method == CalibrationMethod.Percentile else {}
        quantize_static(
            str(prepared), str(out), Reader(), quant_format=form, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=method,
            extra_options=extra,
        )  # fmt: skip
        made[name] = out
    return made


def runners(shipped: Path, float_model: Path, int8: dict[str, Path]) -> dict[str, Any]:
    import onnxruntime as ort

    def opencv(path: Path, engine: int) -> Any:
        net = cv2.dnn.readNetFromONNX(str(path), engine)

        def run(b: np.ndarray) -> np.ndarray:
            net.setInput(b, "data")
            return np.asarray(net.forward()).reshape(-1).copy()

        return run

    def onnxruntime(path: Path) -> Any:
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda b: np.asarray(session.run(None, {"data": b})[0]).reshape(-1)

    found = {
        "shipped file, OpenCV (as Nomina runs it)": opencv(shipped, cv2.dnn.ENGINE_AUTO),
        "float32, OpenCV": opencv(float_model, cv2.dnn.ENGINE_AUTO),
        "float32, onnxruntime": onnxruntime(float_model),
    }
    for name, path in int8.items():
        found[f"int8 {name}, OpenCV (classic engine)"] = opencv(path, cv2.dnn.ENGINE_CLASSIC)
        found[f"int8 {name}, onnxruntime"] = onnxruntime(path)
    return found


def accuracy(embed: Any, sets: dict[str, list[np.ndarray]]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    vectors = {}
    for name, faces in sets.items():
        e = np.array([embed(blob(c)) for c in faces])
        vectors[name] = e / np.linalg.norm(e, axis=1, keepdims=True)
    gallery, results = vectors["neutral"], {}
    for name in sets:
        if name == "neutral":
            continue
        scores = vectors[name] @ gallery.T
        genuine, impostor = np.diag(scores), scores[~np.eye(len(scores), dtype=bool)]
        threshold = np.quantile(impostor, 1 - 0.001, method="higher")
        results[name] = {
            "false_non_matches": int((genuine <= threshold).sum()),
            "rank1_errors": int((scores.argmax(1) != np.arange(len(scores))).sum()),
            "searches": len(scores),
        }
    return vectors, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=Path, default=FACES)
    parser.add_argument("--rounds", type=int, default=220, help="timed runs of each variant")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    settings = nomina.load_settings(environ={})
    model = nomina.load_model("sface")
    analyzer = nomina.FaceAnalyzer(model, settings)
    shipped = locate_files(MODELS["sface"])["embedder"]
    people = sorted(p.name for p in (args.faces / "london").iterdir() if p.is_dir())
    neutral = [args.faces / "london" / p / f"{p}_neutral.jpg" for p in people]
    smiling = [args.faces / "london" / p / f"{p}_smiling.jpg" for p in people]
    others = sorted((args.faces / "canada").glob("*/*.jpg")) + sorted((args.faces / "lisa").glob("*.jpg"))
    others += sorted((args.faces / "zoom").glob("*.jpg"))
    with tempfile.TemporaryDirectory(prefix="nomina-int8-") as tmp:
        folder = Path(tmp)
        probes = list(zip(people, smiling, strict=True))
        marks = clean_landmarks(analyzer, probes, settings.max_pixels)
        sets = {"neutral": crops(analyzer, neutral, settings.max_pixels)}
        sets["smiling"] = crops(analyzer, smiling, settings.max_pixels)
        for name, variant in DERIVED.items():
            made = make_variant(variant, probes, marks, folder / name)
            sets[name] = crops(analyzer, [path for _, path in made], settings.max_pixels, turned=True)
        calibration = augmented(crops(analyzer, others, settings.max_pixels), np.random.default_rng(0))
        float_model = folder / "sface_float32.onnx"
        float_model.write_bytes(dequantised(shipped))
        int8 = quantise(float_model, calibration, folder)
        run = runners(shipped, float_model, int8)

        reference, _ = accuracy(run["shipped file, OpenCV (as Nomina runs it)"], sets)
        report: dict[str, Any] = {}
        for name, embed in run.items():
            try:
                vectors, found = accuracy(embed, sets)
            except cv2.error as exc:
                report[name] = {"error": str(exc).strip().splitlines()[-1][:200]}
                continue
            cos = np.concatenate([(vectors[k] * reference[k]).sum(1) for k in ("neutral", "smiling")])
            report[name] = {"cosine_min": float(cos.min()), "cosine_median": float(np.median(cos)), **found}

        sample = [blob(c) for c in sets["neutral"][:8]]
        timed = {n: [] for n in run if "error" not in report[n]}
        for n in timed:
            for i in range(20):
                run[n](sample[i % 8])
        started = time.time()
        for r in range(args.rounds):
            for n, times in timed.items():
                t = time.perf_counter()
                run[n](sample[r % 8])
                times.append(time.perf_counter() - t)
        base = float(np.median(timed["shipped file, OpenCV (as Nomina runs it)"]))
        for n, times in timed.items():
            q1, median, q3 = (float(v) * 1000 for v in np.percentile(times, [25, 50, 75]))
            report[n].update(ms_median=median, ms_q1=q1, ms_q3=q3, speed_vs_shipped=base * 1000 / median)
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores",
        "opencv": cv2.__version__,
        "timing_seconds": round(time.time() - started, 1),
        "calibration_faces": len(calibration),
        "variants": report,
    }
    print(f"{'variant':66s} {'ms a face [IQR]':>20s} {'speed':>6s} {'cos min':>8s}  FNM@FAR0.001 / rank-1 errors")
    for n, r in report.items():
        if "error" in r:
            print(f"{n:66s} refused: {r['error']}")
            continue
        cells = "  ".join(f"{s}: {r[s]['false_non_matches']}/{r[s]['rank1_errors']}" for s in sets if s in r)
        timing = f"{r['ms_median']:5.1f} [{r['ms_q1']:4.1f}-{r['ms_q3']:4.1f}]"
        print(f"{n:66s} {timing:>20s} {r['speed_vs_shipped']:5.2f}x {r['cosine_min']:8.4f}  {cells}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
