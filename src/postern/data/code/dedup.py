"""Near-duplicate measurement: MinHash with LSH banding over token shingles.

Exact duplicates are removed by the generator; near-duplicates are only *measured*. For each row
we estimate the highest Jaccard similarity (of 5-token shingle sets) to any other row, comparing
exactly only the candidates LSH proposes, and at most `max_compare` earlier rows per bucket, so
the numbers are lower bounds on the true near-duplicate rates.
"""

import re
import zlib
from typing import Sequence

import numpy as np

_TOKEN = re.compile(r"\w+|[^\w\s]")
_PRIME = (1 << 61) - 1


def shingles(text: str, k: int = 5) -> set[int]:
    toks = _TOKEN.findall(text)
    if len(toks) < k:
        return {zlib.crc32(" ".join(toks).encode())}
    return {zlib.crc32("\x1f".join(toks[i : i + k]).encode()) for i in range(len(toks) - k + 1)}


def jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _signatures(sets: Sequence[set[int]], perms: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, _PRIME, size=perms, dtype=np.uint64)
    b = rng.integers(0, _PRIME, size=perms, dtype=np.uint64)
    sigs = np.empty((len(sets), perms), dtype=np.uint64)
    for i, s in enumerate(sets):
        x = np.fromiter(s, dtype=np.uint64, count=len(s))
        # (a*x + b) mod p with 32-bit x; uint64 overflow wraps, which is fine for hashing
        sigs[i] = ((a[:, None] * x[None, :] + b[:, None]) % np.uint64(_PRIME)).min(axis=1)
    return sigs


def near_duplicates(
    texts: Sequence[str],
    thresholds: Sequence[float] = (0.8, 0.9, 0.95),
    bands: int = 16,
    rows: int = 4,
    max_compare: int = 30,
    seed: int = 0,
) -> dict[str, object]:
    """Share of rows whose nearest other row reaches each Jaccard threshold (a lower bound)."""
    n = len(texts)
    sets = [shingles(t) for t in texts]
    best = np.zeros(n)
    if n > 1:
        sigs = _signatures(sets, bands * rows, seed)
        for band in range(bands):
            buckets: dict[bytes, list[int]] = {}
            for i in range(n):
                key = sigs[i, band * rows : (band + 1) * rows].tobytes()
                members = buckets.setdefault(key, [])
                for j in members[-max_compare:]:
                    sim = jaccard(sets[i], sets[j])
                    best[i] = max(best[i], sim)
                    best[j] = max(best[j], sim)
                members.append(i)
    return {
        "method": f"MinHash LSH ({bands} bands x {rows} rows) over 5-token shingles, exact Jaccard on candidates",
        "rows": n,
        "rate_at": {str(t): round(float((best >= t).mean()) if n else 0.0, 4) for t in thresholds},
        "mean_nearest_similarity": round(float(best.mean()) if n else 0.0, 4),
    }
