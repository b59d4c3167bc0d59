"""Enrolment-speed and rank-1 baseline using the `face_recognition` library (dlib).

Standalone: runs in its own environment with face_recognition installed and
does not import nomina. Per photo it does what face_recognition's own CLI does:
load the image (scaled down if wider than 1600 px, as the CLI does), detect
faces with the default HOG model (upsample 1), and compute the 128-d encoding
(default 5-point landmarks, 1 jitter) of the largest face.

Usage:
    python dlib_baseline.py --list PATHS.txt [--workers N] [--out FILE]
    python dlib_baseline.py --rank1 GALLERY.txt PROBES.txt [--workers N] [--out FILE]

List files hold one image path per line. Output is JSON:
    {"photos": n, "seconds": s, "photos_per_second": x,
     "no_face": [paths], "encodings": {path: [128 floats] or null}}
With --rank1 the gallery and probe photos are encoded (and timed) together and
a "rank1" entry is added: {"correct": k, "probes": n, "gallery": m}. Each probe
is matched to its nearest gallery photo by Euclidean distance between encodings
(face_recognition's convention); it counts as correct when both photos have the
same identity. Identity = "<grandparent>/<parent>" folder names, e.g.
"london/001" or "canada/003f", so identities from different sets never collide.
Probes without a face count as misses; gallery photos without a face are left out.

Timing: the clock starts after imports and model loading (face_recognition
loads its models when imported, before the worker processes are forked, so
workers inherit them) and covers starting the pool plus all per-photo work.
"""

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path

import face_recognition
import numpy as np
import PIL.Image


def encode(path):
    """Return the encoding of the largest face in the image, or None."""
    img = face_recognition.load_image_file(path)
    if max(img.shape) > 1600:  # same scale-down as face_recognition_cli
        pil = PIL.Image.fromarray(img)
        pil.thumbnail((1600, 1600), PIL.Image.LANCZOS)
        img = np.array(pil)
    locs = face_recognition.face_locations(img, number_of_times_to_upsample=1)
    if not locs:
        return None
    largest = max(locs, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))  # (top, right, bottom, left)
    return face_recognition.face_encodings(img, known_face_locations=[largest])[0].tolist()


def read_list(file):
    return [line.strip() for line in Path(file).read_text().splitlines() if line.strip()]


def identity(path):
    p = Path(path)
    return f"{p.parent.parent.name}/{p.parent.name}"


def rank1(gallery, probes, encodings):
    gal = [g for g in gallery if encodings[g] is not None]
    gal_enc = np.array([encodings[g] for g in gal])
    correct = 0
    for p in probes:
        if encodings[p] is None or not gal:
            continue
        nearest = gal[int(np.argmin(np.linalg.norm(gal_enc - np.array(encodings[p]), axis=1)))]
        correct += identity(nearest) == identity(p)
    return {"correct": correct, "probes": len(probes), "gallery": len(gal)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--list", help="text file with one image path per line")
    src.add_argument("--rank1", nargs=2, metavar=("GALLERY_LIST", "PROBE_LIST"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", help="write JSON here instead of stdout")
    args = ap.parse_args()

    if args.rank1:
        gallery, probes = read_list(args.rank1[0]), read_list(args.rank1[1])
        paths = list(dict.fromkeys(gallery + probes))
    else:
        paths = read_list(args.list)

    start = time.perf_counter()
    if args.workers == 1:
        results = [encode(p) for p in paths]
    else:
        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            results = pool.map(encode, paths, chunksize=4)
    seconds = time.perf_counter() - start

    encodings = dict(zip(paths, results, strict=True))
    report = {
        "photos": len(paths),
        "seconds": round(seconds, 3),
        "photos_per_second": round(len(paths) / seconds, 2),
        "no_face": [p for p in paths if encodings[p] is None],
        "encodings": encodings,
    }
    if args.rank1:
        report["rank1"] = rank1(gallery, probes, encodings)

    text = json.dumps(report)
    if args.out:
        Path(args.out).write_text(text + "\n")
    else:
        sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
