"""Confidence intervals for proportions: Wilson for one model, hierarchical bootstrap over seeds."""

import math

import numpy as np
from scipy.stats import norm


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes out of n (returns (nan, nan) for n == 0)."""
    if n == 0:
        return (math.nan, math.nan)
    z = norm.ppf(0.5 + confidence / 2)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # exact at the edges: rounding would otherwise put the bound a hair inside (0 < low for k = 0)
    return (0.0 if k == 0 else max(0.0, centre - half), 1.0 if k == n else min(1.0, centre + half))


def bootstrap_over_groups(
    groups: list[np.ndarray], confidence: float = 0.95, n_boot: int = 2000, rng_seed: int = 0
) -> tuple[float, float]:
    """Two-level bootstrap of a pooled rate: resample groups (seeds), then outcomes within each group.

    `groups` holds one 0/1 array per seed. With few seeds the interval is coarse but honest about
    between-seed variation, which a pooled Wilson interval ignores.
    """
    groups = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if not groups:
        return (math.nan, math.nan)
    rng = np.random.default_rng(rng_seed)
    stats = np.empty(n_boot)
    for b in range(n_boot):
        picked = rng.integers(len(groups), size=len(groups))
        total = hits = 0.0
        for i in picked:
            g = groups[i]
            resample = g[rng.integers(len(g), size=len(g))]
            hits += resample.sum()
            total += len(g)
        stats[b] = hits / total
    alpha = (1 - confidence) / 2
    return (float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha)))
