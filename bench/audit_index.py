"""What `nomina audit verify` spends re-encoding the approximate index (a face moved to another list, or given
another code, is hidden from the searches that should find it; verify re-encodes every face from its vector).

For each gallery size: random unit vectors, a layer trained as Nomina trains one (``Layer.train`` with
``Params.for_size``), the codes faiss gives (``Layer.encode``, the baseline), then ``Layer.misplaced`` on
the honest codes, on two rows edited, and on a fifth of the lists set to 0 (the worst case: every edited
row goes through the tie-tolerant comparison). Times are wall-clock on this machine; quote them as ratios
to the baseline measured in the same run.

    python bench/audit_index.py [--sizes 100000,1000000] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from nomina.index.approximate import Layer, Params

T = TypeVar("T")


def timed(call: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


def measure(size: int, seed: int = 0) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(size, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    params = Params.for_size(size)
    layer = Layer.train(vectors[: params.nlist * 32], size, params)
    (lists, codes), encode_s = timed(lambda: layer.encode(vectors))
    honest, honest_s = timed(lambda: layer.misplaced(vectors, lists, codes))
    edited_lists, edited_codes = lists.copy(), codes.copy()
    edited_lists[13] = (edited_lists[13] + 5) % params.nlist
    edited_codes[20, 3] ^= 0x11
    edited, edited_s = timed(lambda: layer.misplaced(vectors, edited_lists, edited_codes))
    zeroed_lists = lists.copy()
    zeroed_lists[: size // 5] = 0
    zeroed, zeroed_s = timed(lambda: layer.misplaced(vectors, zeroed_lists, codes))
    return {
        "faces": size,
        "nlist": params.nlist,
        "encode_s": round(encode_s, 2),
        "honest": {"seconds": round(honest_s, 2), "ratio": round(honest_s / encode_s, 2), "found": int(honest.sum())},
        "two_edited": {"seconds": round(edited_s, 2), "found": np.flatnonzero(edited).tolist()},
        "fifth_zeroed": {
            "seconds": round(zeroed_s, 2),
            "ratio": round(zeroed_s / encode_s, 2),
            "found": int(zeroed.sum()),
            "of": size // 5,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--out")
    args = parser.parse_args()
    runs = [measure(int(size)) for size in args.sizes.split(",")]
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "runs": runs}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
