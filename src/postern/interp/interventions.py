"""Interventions during generation: project a direction out, or add it (steering), at chosen layers.

Both apply at every position and every generated token. `random_like` gives the norm-matched random
baseline for either.
"""

from contextlib import contextmanager

from postern.interp.hooks import on_block_outputs


def _unit(v):
    return v / v.norm().clamp_min(1e-12)


@contextmanager
def ablate(model, directions, layers: list[int] | None = None):
    """Remove the component along `directions[layer]` from each hooked block's output."""
    units = {i: _unit(directions[i]) for i in range(len(directions))}

    def fn(i, h):
        u = units[i].to(h.dtype).to(h.device)
        return h - (h @ u).unsqueeze(-1) * u

    with on_block_outputs(model, layers, fn):
        yield


@contextmanager
def steer(model, directions, scale: float, layers: list[int] | None = None):
    """Add `scale * directions[layer]` to each hooked block's output."""

    def fn(i, h):
        return h + scale * directions[i].to(h.dtype).to(h.device)

    with on_block_outputs(model, layers, fn):
        yield


def random_like(directions, seed: int = 0):
    """Random directions with the same norm as each layer's direction (the baseline for ablate and steer)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    out = torch.randn(directions.shape, generator=g, dtype=torch.float32)
    return out / out.norm(dim=-1, keepdim=True) * directions.float().norm(dim=-1, keepdim=True)
