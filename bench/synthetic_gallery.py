"""Real sample embeddings and synthetic galleries that score like them (for ``bench/search_latency.py``).

Why: a search index is only as well tested as its data is realistic. Uniform random unit vectors in 128
dimensions are nearly orthogonal to each other (impostor scores about 0 +- 0.09) and have no identities,
so an approximate index tuned or measured on them says little about SFace embeddings, whose impostor
scores sit higher and spread wider, and whose faces come in tight groups of one person's photos.

What this module gives:

* :func:`real_faces`: SFace embeddings, computed with Nomina, of the sample photos (london, canada, lisa,
  zoom), clean and in every degraded variant of ``bench/degrade.py`` (query photos only), each tagged
  with its identity, role (gallery reference, mated query, non-mated query) and variant; cached on disk.
* :class:`Generator`: identity centres drawn from a Gaussian whose mean and (shrunk) covariance are those
  of the real identities' centres, 1-5 faces per identity spread around their centre with a per-identity
  spread, every vector L2-normalised. :func:`fit_generator` FITS its four numbers (how strongly centres
  follow the real mean, how much their covariance is shrunk towards isotropic, and the median and spread
  of the within-identity spread) so that its genuine and impostor score distributions match the real
  clean photos' ones. That fits the benchmark's data generator, never the system under test: no index
  parameter is chosen here or from the real photos.
* :func:`build_gallery`: an n-face gallery written in chunks of identities, each chunk from its own seeded
  random stream (so a run is repeatable and never holds a second full copy), with the real reference
  faces inserted at random places as their own references, and a few identities enrolled twice (two
  references of one person: the duplicates a gallery should find). The result is cached under a folder
  (``vectors.f32`` row-major float32, ``refs.i32`` the reference number of each row, ``meta.json``) and
  memory-mapped on reuse.

The sample photos are clean studio portraits; the degraded variants are derived from them. Real score
distributions measured on 250-odd photos say nothing about the extreme tail (scores that 1 impostor pair
in 10^9 reaches), which is what the largest galleries' thresholds depend on: the synthetic tail there is
the generator's Gaussian model, not a measurement.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ modules (degrade) when imported from elsewhere

from nomina.files import PRIVATE_FILE, PRIVATE_FOLDER, private_folder  # noqa: E402

__all__ = [
    "DIM",
    "Generator",
    "RealFaces",
    "SyntheticGallery",
    "build_gallery",
    "exact_top",
    "fit_generator",
    "fitted_generator",
    "nonmated_queries",
    "real_faces",
    "real_scores",
    "synthetic_scores",
]

DIM = 128
CACHE_VERSION = 1
MAX_FACES = 5  # faces per identity: 1..MAX_FACES, uniformly
CHUNK_IDENTITIES = 1 << 17  # identities per generated chunk (about 400k faces, 200 MB of float32)


# -- real embeddings --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RealFaces:
    """Embeddings of the sample photos, one row per photo (clean or degraded) in which a face was found.

    ``role``: "reference" (a gallery face of a real person: london neutral, lisa1-2, zoom 15/30 cm),
    "mated" (a query whose person has a reference: london smiling, lisa3-4, zoom 45/60 cm, clean or
    degraded) or "nonmated" (a query whose person is in no gallery: canada, clean or degraded).
    """

    vectors: np.ndarray  # rows x DIM float32, L2-normalised
    identity: list[str]
    photo: list[str]  # path relative to the sample folder
    role: list[str]
    variant: list[str]  # "clean" or a bench/degrade.py variant name
    missed: list[str] = field(default_factory=list)  # "variant:photo" where no face was found

    def rows(self, role: str | None = None, variant: str | None = None) -> np.ndarray:
        """Row numbers with this role and variant (None: any; variant "degraded": any but clean)."""
        keep = [
            i
            for i in range(len(self.identity))
            if (role is None or self.role[i] == role)
            and (
                variant is None or self.variant[i] == variant or (variant == "degraded" and self.variant[i] != "clean")
            )
        ]
        return np.asarray(keep, dtype=np.int64)


def _photo_roles(folder: Path) -> list[tuple[str, Path, str]]:
    """(identity, photo, role) of every sample photo used."""
    out: list[tuple[str, Path, str]] = []
    for p in sorted(folder.glob("london/*/*_neutral.jpg")):
        out.append((f"london_{p.parent.name}", p, "reference"))
    for p in sorted(folder.glob("london/*/*_smiling.jpg")):
        out.append((f"london_{p.parent.name}", p, "mated"))
    for p in sorted(folder.glob("canada/*/*.jpg")):
        out.append((f"canada_{p.parent.name}", p, "nonmated"))
    for name, photos in (("lisa", ["lisa1", "lisa2", "lisa3", "lisa4"]), ("zoom", ["15cm", "30cm", "45cm", "60cm"])):
        for i, stem in enumerate(photos):
            out.append((name, folder / name / f"{stem}.jpg", "reference" if i < 2 else "mated"))
    missing = [str(p) for _, p, _ in out if not p.is_file()]
    if not out or missing:
        raise FileNotFoundError(f"sample photos missing under {folder}: {missing[:3] or 'all'}")
    return out


def _cache_key(folder: Path, photos: list[tuple[str, Path, str]], model_identity: dict[str, object]) -> str:
    bench = Path(__file__).resolve().parent
    h = hashlib.sha256()
    h.update(json.dumps([CACHE_VERSION, model_identity], sort_keys=True).encode())
    h.update((bench / "degrade.py").read_bytes())
    for identity, p, role in photos:
        h.update(f"{identity}|{p.relative_to(folder)}|{role}|".encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()[:16]


def real_faces(folder: Path, cache: Path, log: Any = print) -> RealFaces:
    """The sample photos' SFace embeddings, clean and degraded, computed as Nomina does (cached).

    References are analysed as reference photos are, queries as case photos are (searched in every
    orientation when Nomina's ``orientation_search`` setting says so); the face nearest the centre is kept.
    Degraded variants are made from the query photos only (a reference photo is supplied by a family and is
    usually better than a case photo); the landmarks that size them come from the clean photo.
    """
    from degrade import GROUPS, clean_landmarks, make_variant

    import nomina
    from nomina.imaging import decode_image, read_photo

    settings = nomina.load_settings()
    model = nomina.load_model(settings.model, settings.model_dir)
    photos = _photo_roles(folder)
    file = cache / f"real-{_cache_key(folder, photos, model.identity)}.npz"
    if file.is_file():
        with np.load(file) as data:
            meta = json.loads(str(data["meta"]))
            return RealFaces(vectors=data["vectors"], **meta)

    analyzer = nomina.FaceAnalyzer(model, settings)
    vectors: list[np.ndarray] = []
    meta: dict[str, list[str]] = {"identity": [], "photo": [], "role": [], "variant": [], "missed": []}

    def add(identity: str, path: Path, shown: str, role: str, variant: str) -> None:
        image = decode_image(read_photo(path), str(path), settings.max_pixels)
        face, _ = analyzer.central_face(image, analyzer.turns(reference_photo=role == "reference"))
        if face is None:
            meta["missed"].append(f"{variant}:{shown}")
            return
        vectors.append(np.asarray(face.embedding, dtype=np.float32))
        for key, value in (("identity", identity), ("photo", shown), ("role", role), ("variant", variant)):
            meta[key].append(value)

    started = time.perf_counter()
    for identity, path, role in photos:
        add(identity, path, str(path.relative_to(folder)), role, "clean")
    queries = [(identity, path, role) for identity, path, role in photos if role != "reference"]
    keyed = {f"{identity}__{path.stem}": (identity, path, role) for identity, path, role in queries}
    probes = [(key, path) for key, (_, path, _) in keyed.items()]
    marks = clean_landmarks(analyzer, probes, settings.max_pixels)
    tmp = Path(tempfile.mkdtemp(prefix="nomina-bench-degrade-"))
    try:
        for variants in GROUPS.values():
            for name, variant in variants.items():
                for key, path in make_variant(variant, probes, marks, tmp / name):
                    identity, original, role = keyed[key]
                    add(identity, path, str(original.relative_to(folder)), role, name)
                log(f"  embedded variant {name} ({time.perf_counter() - started:.0f} s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    out = RealFaces(vectors=np.vstack(vectors), **meta)
    private_folder(cache)
    tmp_file = cache / f".{file.name}.{os.getpid()}.npz"
    np.savez(tmp_file, vectors=out.vectors, meta=np.array(json.dumps(meta)))
    os.chmod(tmp_file, PRIVATE_FILE)
    os.replace(tmp_file, file)
    return out


def _pair_scores(vectors: np.ndarray, identity: list[str], same: bool) -> np.ndarray:
    """Scores of every pair of rows (i < j) of the same (or different) identity.

    Pairs of lisa and zoom photos are left out of both: the sample folder does not say whether they show
    one person, and they score 0.74-0.78, far above any other pair of different people.
    """
    s = vectors @ vectors.T
    ids = np.asarray(identity)
    persons = np.asarray([_person(x) for x in identity])
    i, j = np.triu_indices(len(ids), k=1)
    keep = ((ids[i] == ids[j]) == same) & ((persons[i] == persons[j]) == (ids[i] == ids[j]))
    return s[i[keep], j[keep]].astype(np.float64)


def real_scores(real: RealFaces) -> dict[str, np.ndarray]:
    """Real score samples: genuine and impostor pairs of clean photos, and degraded queries vs references.

    ``genuine``: every pair of clean photos of one person (london neutral-smiling, lisa and zoom pairs).
    ``impostor``: every pair of clean photos of two different people (lisa-zoom pairs left out of both).
    ``genuine_degraded``: each degraded mated query
    against its person's clean reference photos.
    """
    clean = real.rows(variant="clean")
    vectors = real.vectors[clean]
    identity = [real.identity[i] for i in clean]
    refs = real.rows(role="reference", variant="clean")
    degraded = real.rows(role="mated", variant="degraded")
    ref_ids = np.asarray([real.identity[i] for i in refs])
    s = real.vectors[degraded] @ real.vectors[refs].T
    mates = np.asarray([real.identity[i] for i in degraded])[:, None] == ref_ids[None, :]
    return {
        "genuine": _pair_scores(vectors, identity, same=True),
        "impostor": _pair_scores(vectors, identity, same=False),
        "genuine_degraded": s[mates].astype(np.float64),
    }


# -- the generator ----------------------------------------------------------------------------------
def _normalise(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


@dataclass(frozen=True)
class Generator:
    """Identity centres ~ normalise(mean_scale * mean + N(0, shrunk covariance)); faces around them.

    ``mean`` and ``covariance`` are those of the real identities' centres (the mean of each person's clean
    photo embeddings, normalised); the covariance is shrunk towards isotropic by ``shrink`` (0: as measured,
    1: isotropic with the same total variance) since 144 people estimate a 128 x 128 covariance poorly.
    A face is normalise(centre + spread * w), w ~ N(0, I / DIM), where each identity's ``spread`` is
    ``spread_median * exp(spread_sigma * N(0, 1))``: people differ in how much their photos vary.
    """

    mean: np.ndarray  # DIM
    covariance: np.ndarray  # DIM x DIM
    mean_scale: float
    shrink: float
    spread_median: float
    spread_sigma: float

    def params(self) -> dict[str, float]:
        """The four fitted numbers (the mean and covariance come from the real photos as measured)."""
        return {k: round(float(v), 6) for k, v in asdict(self).items() if k not in ("mean", "covariance")}

    def _factor(self) -> np.ndarray:
        iso = np.trace(self.covariance) / DIM
        cov = (1 - self.shrink) * self.covariance + self.shrink * iso * np.eye(DIM)
        return np.linalg.cholesky(cov + 1e-9 * np.eye(DIM)).T.astype(np.float32)  # z @ factor ~ N(0, cov)

    def centres(self, z: np.ndarray) -> np.ndarray:
        """Identity centres from standard normal draws z (k x DIM)."""
        return _normalise(z.astype(np.float32) @ self._factor() + (self.mean_scale * self.mean).astype(np.float32))

    def faces(self, centres: np.ndarray, u: np.ndarray, w: np.ndarray) -> np.ndarray:
        """One face per row of centres, from the identity's spread draw u (N(0,1)) and noise w (N(0, I))."""
        spread = self.spread_median * np.exp(self.spread_sigma * u.astype(np.float32))
        return _normalise(centres + (spread / DIM**0.5)[:, None] * w.astype(np.float32)).astype(np.float32, copy=False)

    def sample(self, rng: np.random.Generator, counts: np.ndarray) -> np.ndarray:
        """Faces of len(counts) new identities, counts[i] faces each, rows grouped by identity."""
        k, rows = len(counts), int(counts.sum())
        centres = self.centres(rng.standard_normal((k, DIM), dtype=np.float32))
        u = rng.standard_normal(k, dtype=np.float32)
        owner = np.repeat(np.arange(k), counts)
        return self.faces(centres[owner], u[owner], rng.standard_normal((rows, DIM), dtype=np.float32))


def _quantile_levels(n: int) -> np.ndarray:
    """Quantile levels that a sample of n scores estimates (none rarer than about 10/n on either side)."""
    lo = min(0.5, 10.0 / n)
    levels = np.concatenate([[lo, 0.02, 0.05], np.linspace(0.1, 0.9, 9), [0.95, 0.98, 0.99, 0.999, 1 - lo]])
    return np.unique(levels[(levels >= lo) & (levels <= 1 - lo)])


def synthetic_scores(gen: Generator, rng: np.random.Generator, identities: int) -> dict[str, np.ndarray]:
    """Genuine (two faces of one identity) and impostor (faces of two identities) scores of the generator."""
    a = gen.sample(rng, np.full(identities, 2))
    first, second = a[0::2], a[1::2]
    genuine = np.einsum("ij,ij->i", first, second)
    impostor = np.einsum("ij,ij->i", first, np.roll(second, 1, axis=0))
    return {"genuine": genuine.astype(np.float64), "impostor": impostor.astype(np.float64)}


def _centres_of(real: RealFaces) -> np.ndarray:
    clean = real.rows(variant="clean")
    ids = np.asarray([_person(real.identity[i]) for i in clean])
    centres = np.array([real.vectors[clean][ids == u].mean(0) for u in np.unique(ids)], dtype=np.float64)
    return centres / np.linalg.norm(centres, axis=1, keepdims=True)


def _person(identity: str) -> str:
    """lisa and zoom may be one person (their photos score 0.74-0.78): one centre for both."""
    return "lisa+zoom" if identity in ("lisa", "zoom") else identity


def fit_generator(real: RealFaces, seed: int, identities: int = 20_000) -> tuple[Generator, dict[str, Any]]:
    """The generator whose genuine and impostor score quantiles best match the real clean photos'.

    Fitted by Nelder-Mead on the summed squared quantile differences (each distribution's differences
    divided by its real standard deviation), with the same random draws at every step so that the
    objective is smooth. Returns the generator and a summary (quantiles and two-sample Kolmogorov-Smirnov
    distances, real against synthetic, on a fresh draw).
    """
    from scipy.optimize import minimize
    from scipy.stats import ks_2samp

    target = real_scores(real)
    centres = _centres_of(real)
    mean = centres.mean(0)
    cov = np.cov(centres.T)
    levels = {k: _quantile_levels(len(target[k])) for k in ("genuine", "impostor")}
    want = {k: np.quantile(target[k], levels[k]) for k in levels}
    scale = {k: float(np.std(target[k])) for k in levels}

    def make(x: np.ndarray) -> Generator:
        return Generator(
            mean=mean,
            covariance=cov,
            mean_scale=float(np.exp(x[0])),
            shrink=float(1 / (1 + np.exp(-x[1]))),
            spread_median=float(np.exp(x[2])),
            spread_sigma=float(np.exp(x[3])),
        )

    def loss(x: np.ndarray) -> float:
        got = synthetic_scores(make(x), np.random.default_rng(seed), identities)
        return float(sum(np.sum(((np.quantile(got[k], levels[k]) - want[k]) / scale[k]) ** 2) for k in levels))

    x0 = np.array([0.0, 0.0, np.log(0.3), np.log(0.3)])
    best = minimize(loss, x0, method="Nelder-Mead", options={"xatol": 1e-3, "fatol": 1e-4, "maxiter": 600})
    gen = make(best.x)
    check = synthetic_scores(gen, np.random.default_rng([seed, 1]), identities)
    summary: dict[str, Any] = {"params": gen.params(), "loss": float(best.fun), "evaluations": int(best.nfev)}
    for k in levels:
        summary[k] = {
            "real_pairs": len(target[k]),
            "real_mean": float(target[k].mean()),
            "real_std": float(target[k].std()),
            "synthetic_mean": float(check[k].mean()),
            "synthetic_std": float(check[k].std()),
            "quantile_levels": [round(float(q), 5) for q in levels[k]],
            "real_quantiles": [round(float(v), 4) for v in want[k]],
            "synthetic_quantiles": [round(float(v), 4) for v in np.quantile(check[k], levels[k])],
            "ks_distance": float(ks_2samp(target[k], check[k]).statistic),
        }
    return gen, summary


def fitted_generator(real: RealFaces, seed: int, cache: Path) -> tuple[Generator, dict[str, Any]]:
    """:func:`fit_generator`, cached under ``cache`` (a fit takes about a minute)."""
    centres = _centres_of(real)
    key = hashlib.sha256(json.dumps([CACHE_VERSION, seed]).encode() + real.vectors.tobytes()).hexdigest()[:16]
    file = cache / f"generator-{key}.json"
    if file.is_file():
        summary = json.loads(file.read_text())
    else:
        _, summary = fit_generator(real, seed)
        private_folder(cache)
        tmp = cache / f".{file.name}.{os.getpid()}"
        tmp.write_text(json.dumps(summary, indent=1))
        os.chmod(tmp, PRIVATE_FILE)
        os.replace(tmp, file)
    gen = Generator(mean=centres.mean(0), covariance=np.cov(centres.T), **summary["params"])
    return gen, summary


# -- galleries --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SyntheticGallery:
    """A cached n-face gallery: rows in gallery order (face id = row + 1), each row's reference number.

    Reference numbers 0..len(real_names)-1 are the real references (``real_names``); the others are
    synthetic (``syn-<number>``). ``duplicates`` lists pairs of reference numbers that hold one synthetic
    identity's faces (one person enrolled twice).
    """

    folder: Path
    size: int
    references: int
    real_names: list[str]
    real_rows: dict[str, list[int]]
    duplicates: np.ndarray  # k x 2 reference numbers
    meta: dict[str, Any]

    def vectors(self, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Rows lo..hi read into (anonymous) memory: a fresh array the caller owns."""
        hi = self.size if hi is None else hi
        out = np.fromfile(self.folder / "vectors.f32", dtype=np.float32, count=(hi - lo) * DIM, offset=lo * DIM * 4)
        return out.reshape(hi - lo, DIM)

    def chunks(self, rows: int = 1 << 20) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, vectors) of consecutive blocks of rows."""
        for lo in range(0, self.size, rows):
            yield lo, self.vectors(lo, min(self.size, lo + rows))

    def refs(self) -> np.ndarray:
        """The reference number of every row (int32)."""
        return np.fromfile(self.folder / "refs.i32", dtype=np.int32)

    def ref_name(self, number: int) -> str:
        return self.real_names[number] if number < len(self.real_names) else f"syn-{number:08d}"

    def ref_names(self) -> list[str]:
        """Every row's reference id, as a list of str (one str object per reference, shared by its rows)."""
        names = [self.ref_name(k) for k in range(self.references)]
        return [names[k] for k in self.refs().tolist()]


def _real_blocks(real: RealFaces) -> list[tuple[str, np.ndarray]]:
    """(reference id, its faces) of every real reference: its clean reference photos."""
    rows = real.rows(role="reference", variant="clean")
    names = sorted({real.identity[i] for i in rows})
    return [(name, real.vectors[[i for i in rows if real.identity[i] == name]]) for name in names]


def build_gallery(
    n: int,
    gen: Generator,
    real: RealFaces,
    seed: int,
    cache: Path,
    duplicate_rate: float = 1e-3,
    log: Any = print,
) -> SyntheticGallery:
    """The n-face gallery for (generator, real references, seed), generated once and cached under ``cache``.

    Identities come in chunks of CHUNK_IDENTITIES, chunk c drawn from the random stream (seed, c) alone:
    a smaller gallery's synthetic identities are the first ones of a larger gallery (the real faces sit
    elsewhere), and memory stays at about one chunk. Each
    identity has 1-5 faces (uniformly); ``duplicate_rate`` of the identities with two or more faces are
    split into two references. The real references (clean reference photos of the sample people, each its
    own reference) are inserted between identities at seeded random places.
    """
    blocks = _real_blocks(real)
    real_rows_total = sum(len(v) for _, v in blocks)
    if n <= real_rows_total:
        raise ValueError(f"a gallery needs more than the {real_rows_total} real reference faces")
    h = hashlib.sha256(json.dumps([CACHE_VERSION, n, seed, duplicate_rate, gen.params()]).encode())
    for a in (gen.mean, gen.covariance, *(v for _, v in blocks)):
        h.update(np.ascontiguousarray(a).tobytes())
    folder = cache / f"gallery-{n}-{h.hexdigest()[:16]}"
    if not (folder / "meta.json").is_file():
        _write_gallery(folder, n, gen, blocks, seed, duplicate_rate, log)
    meta = json.loads((folder / "meta.json").read_text())
    return SyntheticGallery(
        folder=folder,
        size=meta["size"],
        references=meta["references"],
        real_names=meta["real_names"],
        real_rows=meta["real_rows"],
        duplicates=np.asarray(meta["duplicates"], dtype=np.int64).reshape(-1, 2),
        meta=meta,
    )


def _write_gallery(
    folder: Path,
    n: int,
    gen: Generator,
    blocks: list[tuple[str, np.ndarray]],
    seed: int,
    duplicate_rate: float,
    log: Any,
) -> None:
    started = time.perf_counter()
    private_folder(folder.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))  # 0700
    n_syn = n - sum(len(v) for _, v in blocks)
    place = np.random.default_rng([seed, n, 1])
    at = np.sort(place.choice(n_syn, size=len(blocks), replace=False))  # insert before the identity starting here
    order = place.permutation(len(blocks))
    real_rows: dict[str, list[int]] = {}
    duplicates: list[tuple[int, int]] = []
    next_ref, syn_rows, out_rows, chunk, b = len(blocks), 0, 0, 0, 0
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    with (
        os.fdopen(os.open(tmp / "vectors.f32", flags, PRIVATE_FILE), "wb") as fv,
        os.fdopen(os.open(tmp / "refs.i32", flags, PRIVATE_FILE), "wb") as fr,
    ):
        while syn_rows < n_syn:
            rng = np.random.default_rng([seed, 0, chunk])
            counts = rng.integers(1, MAX_FACES + 1, size=CHUNK_IDENTITIES)
            dup = (rng.random(CHUNK_IDENTITIES) < duplicate_rate) & (counts >= 2)
            split = rng.integers(1, np.maximum(counts, 2))  # faces [0, split) -> first reference
            vectors = gen.sample(rng, counts)
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            keep_ids = int(np.searchsorted(starts, n_syn - syn_rows, side="left"))  # identities starting in n
            rows = min(len(vectors), n_syn - syn_rows)
            first_ref = next_ref + np.concatenate([[0], np.cumsum(1 + dup[:-1])])
            owner = np.repeat(np.arange(CHUNK_IDENTITIES), counts)
            within = np.arange(len(vectors)) - starts[owner]
            ref = (first_ref[owner] + (dup[owner] & (within >= split[owner]))).astype(np.int32)
            for i in np.flatnonzero(dup[:keep_ids]):  # both parts written?
                if starts[i] + split[i] < rows:
                    duplicates.append((int(first_ref[i]), int(first_ref[i] + 1)))
            # Cut at the real blocks' places (identity starts), write the pieces in order.
            cuts = [0]
            while b < len(blocks) and at[b] < syn_rows + rows:
                cut = int(starts[min(int(np.searchsorted(starts, at[b] - syn_rows)), len(starts) - 1)])
                cuts.append(min(max(cut, cuts[-1]), rows))
                b += 1
            cuts.append(rows)
            for piece in range(len(cuts) - 1):
                lo, hi = cuts[piece], cuts[piece + 1]
                fv.write(memoryview(vectors[lo:hi]))
                fr.write(memoryview(ref[lo:hi]))
                out_rows += hi - lo
                if piece < len(cuts) - 2:
                    k = int(order[b - (len(cuts) - 2) + piece])
                    name, real_vectors = blocks[k]
                    fv.write(memoryview(np.ascontiguousarray(real_vectors, dtype=np.float32)))
                    fr.write(memoryview(np.full(len(real_vectors), k, dtype=np.int32)))
                    real_rows[name] = list(range(out_rows, out_rows + len(real_vectors)))
                    out_rows += len(real_vectors)
            next_ref = int(ref[rows - 1]) + 1
            syn_rows += rows
            chunk += 1
            log(f"  generated {out_rows:,} / {n:,} faces ({time.perf_counter() - started:.0f} s)")
        fv.flush()
        os.fsync(fv.fileno())
        fr.flush()
        os.fsync(fr.fileno())
    assert out_rows == n and len(real_rows) == len(blocks), (out_rows, n, len(real_rows))
    meta = {
        "version": CACHE_VERSION,
        "size": n,
        "references": next_ref,
        "seed": seed,
        "duplicate_rate": duplicate_rate,
        "generator": gen.params(),
        "real_names": [name for name, _ in blocks],
        "real_rows": real_rows,
        "duplicates": duplicates,
        "seconds": time.perf_counter() - started,
    }
    fd = os.open(tmp / "meta.json", flags, PRIVATE_FILE)
    with os.fdopen(fd, "w") as fh:
        json.dump(meta, fh)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    os.chmod(folder, PRIVATE_FOLDER)


def nonmated_queries(gen: Generator, seed: int, count: int) -> np.ndarray:
    """One face each of ``count`` new synthetic identities: in no gallery (their own random stream)."""
    return gen.sample(np.random.default_rng([seed, 2]), np.ones(count, dtype=np.int64))


def exact_top(
    gallery: SyntheticGallery, queries: np.ndarray, k: int, log: Any = print
) -> tuple[np.ndarray, np.ndarray]:
    """Each query's k best faces over the whole gallery, exactly: (scores, rows), best first.

    The oracle for recall: faiss's brute-force inner product (BLAS) over blocks of the cached vectors,
    merged block by block; never more than one block of vectors in memory.
    """
    import faiss

    q = np.ascontiguousarray(queries, dtype=np.float32)
    best_s = np.full((len(q), k), -np.inf, dtype=np.float32)
    best_r = np.full((len(q), k), -1, dtype=np.int64)
    started = time.perf_counter()
    for lo, block in gallery.chunks():
        s, r = faiss.knn(q, block, min(k, len(block)), metric=faiss.METRIC_INNER_PRODUCT)
        s_all = np.concatenate([best_s, s], axis=1)
        r_all = np.concatenate([best_r, r + lo], axis=1)
        top = np.argsort(-s_all, axis=1, kind="stable")[:, :k]
        best_s, best_r = np.take_along_axis(s_all, top, 1), np.take_along_axis(r_all, top, 1)
        if lo and lo % (1 << 23) == 0:
            log(f"  exact search: {lo:,} / {gallery.size:,} faces ({time.perf_counter() - started:.0f} s)")
    return best_s, best_r
