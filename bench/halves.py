"""The split of the London identities into a fit half and a report half, shared by the quality benchmarks.

The response factor's bounds (``nomina.quality.RESPONSE_BOUNDS``) were fitted on the fit half by
``bench/quality_erc.py``; every quality figure is reported on the report half.
"""

from __future__ import annotations

import numpy as np

SPLIT_SEED = 29794


def halves(people: list[str]) -> tuple[list[str], list[str]]:
    """(fit, report): the first and second half of a permutation of ``people`` seeded with SPLIT_SEED, sorted."""
    order = np.random.default_rng(SPLIT_SEED).permutation(len(people))
    fit = sorted(people[k] for k in order[: len(people) // 2])
    report = sorted(people[k] for k in order[len(people) // 2 :])
    return fit, report
