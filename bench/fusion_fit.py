"""Fit the sface+dlib fusion (dlib's centre, the two weights) on photos that are never reported.

What it fits, and on what
-------------------------
Only the 40 Canada photos of the sample set (one photo per person), each also degraded by every variant
of ``bench/degrade.py`` and ``bench/postmortem.py``. No London photo is read: every accuracy figure
reported for the fused model (``bench/evaluation.py``, ``bench/accuracy.py``) comes from the London
photos, so nothing reported was fitted on.

- ``dlib_centre``: the mean of dlib's raw vectors over those faces. dlib's vectors all point roughly the
  same way (two strangers' cosines average 0.87 on raw vectors); centring spreads them.
- ``weights``: z-score fusion. Each model's cosine is divided by the standard deviation of its impostor
  cosines (faces of different people), so neither model's scale dominates; with cosines of unit vectors
  that is weights whose squares are proportional to 1 / sd, scaled so the squares sum to 1.

Writes ``src/nomina/models/sface_dlib_fusion.json`` (its SHA-256 goes into the model's manifest).

Run from the repository root (needs the ``dlib`` extra)::

    .venv/bin/python bench/fusion_fit.py [--faces DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from degrade import clean_landmarks, make_variant
from postmortem import GROUPS

import nomina
from nomina.imaging import decode_image, read_photo
from nomina.models.dlib import DlibEmbedder
from nomina.models.manifest import MODELS, locate_files

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "src" / "nomina" / "models" / "sface_dlib_fusion.json"


def faces_of(analyzer: nomina.FaceAnalyzer, dlib_net: DlibEmbedder, photos: list[tuple[str, Path]], max_pixels: int):
    """(person, SFace unit vector, dlib raw vector) of the first face found in each photo."""
    rows = []
    for person, photo in photos:
        image = decode_image(read_photo(photo), str(photo), max_pixels)
        found = analyzer.analyze(image, any_orientation=True)
        if not found:
            continue
        face = found[0]
        chip = dlib_net.chip(image.pixels, face.landmarks)
        rows.append((person, face.embedding, dlib_net.descriptors([chip])[0]))
    return rows


def impostor_sd(vectors: np.ndarray, people: np.ndarray) -> tuple[float, int]:
    sims = vectors @ vectors.T
    upper = np.triu(np.ones(sims.shape, dtype=bool), 1)
    impostor = upper & (people[:, None] != people[None, :])
    return float(sims[impostor].std()), int(impostor.sum())


def main() -> None:
    default_faces = os.environ.get("NOMINA_TEST_FACES") or str(REPO.parent / "shared" / "faces")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=Path, default=Path(default_faces), help="sample photo folder")
    ap.add_argument("--out", type=Path, default=OUT, help="where to write the fusion's parameters")
    args = ap.parse_args()

    canada = args.faces / "canada"
    if not canada.is_dir():
        sys.exit(f"{canada}: sample photos not found; use --faces")
    photos = [(d.name, d / f"{d.name}.jpg") for d in sorted(canada.iterdir()) if d.is_dir()]
    settings = nomina.load_settings(model="sface")
    analyzer = nomina.FaceAnalyzer(nomina.load_model("sface"), settings)
    dlib_net = DlibEmbedder(str(locate_files(MODELS["sface+dlib"])["dlib"]))
    marks = clean_landmarks(analyzer, photos, settings.max_pixels)
    variants = {name: fn for group in GROUPS.values() for name, fn in group.items()}
    every = list(photos)
    with tempfile.TemporaryDirectory(prefix="nomina-fusion-fit-") as tmp:
        for name, fn in variants.items():
            every += make_variant(fn, photos, marks, Path(tmp) / name)
        rows = faces_of(analyzer, dlib_net, every, settings.max_pixels)
    people = np.array([r[0] for r in rows])
    sface = np.stack([r[1] for r in rows])
    dlib_raw = np.stack([r[2] for r in rows])
    centre = dlib_raw.mean(axis=0)
    centred = dlib_raw - centre
    centred /= np.linalg.norm(centred, axis=1, keepdims=True)
    sd_s, pairs = impostor_sd(sface, people)
    sd_d, _ = impostor_sd(centred, people)
    inv = np.array([1 / sd_s, 1 / sd_d])
    ws = round(float(np.sqrt(inv[0] / inv.sum())), 6)
    data = {
        "about": (
            "sface+dlib fusion parameters, written by bench/fusion_fit.py from the 40 Canada sample photos and "
            "their degraded variants (never from the London photos that accuracy is reported on)"
        ),
        "faces": len(rows),
        "impostor_pairs": pairs,
        "impostor_sd": {"sface": round(sd_s, 6), "dlib": round(sd_d, 6)},
        "weights": {"sface": ws, "dlib": round(math.sqrt(1 - ws * ws), 6)},  # squares summing to 1
        "dlib_centre": [round(float(v), 6) for v in centre],
    }
    args.out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"{len(rows)} faces of {len(set(people))} people, {pairs} impostor pairs")
    print(f"impostor sd: sface {sd_s:.4f}, dlib (centred) {sd_d:.4f}; weights {data['weights']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
