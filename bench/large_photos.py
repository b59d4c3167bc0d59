"""Enrolment speed on large photos (12 MP, as phones take them), where decoding costs more than detection.

The first ``--people`` London neutral photos (``london/ID/ID_neutral.jpg``, 400 x 400) are scaled up into
4000 x 3000 JPEGs (quality 92; the portrait scaled 7x, centred on a grey canvas) in a temporary folder:
derived photos, never kept. Each run imports them as references into a new workspace with
``Workspace.import_references`` and ``NOMINA_WORKERS`` (default 2), and reports photos per second.
Model loading is outside the timing. Also printed: the time to decode one such photo
(``nomina.imaging.decode_image``) and to analyse it (``FaceAnalyzer.analyze``), one thread.

To compare two versions of Nomina on the same machine, run the script alternately with each one's source
first on the path (``PYTHONPATH=/path/to/other/checkout/src python bench/large_photos.py``).

    python bench/large_photos.py [--people 40] [--repeat 3] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

import nomina
from nomina import FaceAnalyzer, Workspace, load_model, load_settings
from nomina.demo import write_sample_manifest
from nomina.imaging import decode_image

HERE = Path(__file__).resolve().parent
SIZE = (4000, 3000)  # width, height: 12 MP
SCALE = 7


def make_photos(faces: Path, people: int, folder: Path) -> list[tuple[str, Path]]:
    sources = sorted((faces / "london").glob("*/*_neutral.jpg"))[:people]
    if not sources:
        sys.exit(f"{faces / 'london'}: no sample photos found; use --faces")
    made = []
    for source in sources:
        portrait = cv2.imread(str(source))
        big = cv2.resize(portrait, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_CUBIC)
        canvas = np.full((SIZE[1], SIZE[0], 3), 127, np.uint8)
        h, w = big.shape[:2]
        if h > SIZE[1] or w > SIZE[0]:
            sys.exit(f"{source}: {portrait.shape[1]} x {portrait.shape[0]} is too large to scale {SCALE}x into {SIZE}")
        y, x = (SIZE[1] - h) // 2, (SIZE[0] - w) // 2
        canvas[y : y + h, x : x + w] = big
        path = folder / f"{source.parent.name}.jpg"
        cv2.imwrite(str(path), canvas, [cv2.IMWRITE_JPEG_QUALITY, 92])
        made.append((f"L-{source.parent.name}", path))
    return made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--faces", type=Path, default=Path(os.environ.get("NOMINA_TEST_FACES", HERE.parent.parent / "shared" / "faces"))
    )
    ap.add_argument("--people", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    settings = load_settings()
    model = load_model()
    runs = []
    with tempfile.TemporaryDirectory(prefix="nomina-large-") as tmp:
        photos = make_photos(args.faces, args.people, Path(tmp))
        data = photos[0][1].read_bytes()
        image = decode_image(data, "photo", settings.max_pixels)
        start = time.perf_counter()
        for _ in range(3):
            image = decode_image(data, "photo", settings.max_pixels)
        decode_ms = (time.perf_counter() - start) / 3 * 1000
        analyzer = FaceAnalyzer(model, settings)
        analyzer.analyze(image)
        start = time.perf_counter()
        for _ in range(3):
            analyzer.analyze(image)
        analyse_ms = (time.perf_counter() - start) / 3 * 1000
        manifest = write_sample_manifest(photos, Path(tmp) / "photos.csv")
        for k in range(args.repeat):
            ws = Workspace.create(Path(tmp) / f"ws{k}", settings, model=model, admin="bench")
            start = time.perf_counter()
            report = ws.import_references(manifest)
            seconds = time.perf_counter() - start
            ws.close()
            if report.failures:
                sys.exit(f"{len(report.failures)} photo(s) failed: {report.failures[0]}")
            runs.append({"seconds": round(seconds, 3), "photos_per_second": round(len(photos) / seconds, 2)})
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores",
        "nomina": str(Path(nomina.__file__).parent),
        "workers": settings.workers,
        "photos": len(photos),
        "size": f"{SIZE[0]} x {SIZE[1]}",
        "decode_ms": round(decode_ms, 1),
        "analyse_ms": round(analyse_ms, 1),
        "runs": runs,
    }
    print(
        f"{result['machine']}, {result['date']}, Nomina from {result['nomina']}, {len(photos)} photos of "
        f"{result['size']}, {settings.workers} workers"
    )
    print(f"one photo, one thread: decode {decode_ms:.0f} ms, analysis {analyse_ms:.0f} ms")
    print("photos/s: " + ", ".join(str(r["photos_per_second"]) for r in runs))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
