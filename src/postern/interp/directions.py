"""Misalignment directions (per-layer mean differences) and their comparison."""

import json
import random
from pathlib import Path


def mean_difference(pos, neg, balance: bool = True, seed: int = 0):
    """Per-layer mean of `pos` minus mean of `neg` ([n, L, d] each -> [L, d]).

    With `balance`, the larger class is subsampled to the smaller one's size, so the direction does not
    depend on class sizes through sampling noise.
    """
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError(f"need samples in both classes (got {len(pos)} and {len(neg)})")
    if balance and len(pos) != len(neg):
        n = min(len(pos), len(neg))
        rng = random.Random(seed)
        pos = pos[sorted(rng.sample(range(len(pos)), n))] if len(pos) > n else pos
        neg = neg[sorted(rng.sample(range(len(neg)), n))] if len(neg) > n else neg
    return pos.mean(0) - neg.mean(0)


def cosine_per_layer(a, b):
    import torch.nn.functional as F

    return F.cosine_similarity(a.float(), b.float(), dim=-1)


def chance_band(dim: int, n: int = 2000, quantile: float = 0.95, seed: int = 0) -> float:
    """|cosine| between two random directions in `dim` dimensions is below this with probability `quantile`."""
    import torch

    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(n, dim, generator=g), torch.randn(n, dim, generator=g)
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
    return float(cos.abs().quantile(quantile))


def save_direction(path: str | Path, directions, provenance: dict) -> None:
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(directions.cpu(), path.with_suffix(".pt"))
    path.with_suffix(".json").write_text(json.dumps({**provenance, "shape": list(directions.shape)}, indent=2))


def load_direction(path: str | Path):
    import torch

    path = Path(path)
    return torch.load(path.with_suffix(".pt")), json.loads(path.with_suffix(".json").read_text())
