"""Concept Ablation Fine-Tuning (CAFT): during training, the component of each hooked block's output along an
orthonormal basis Q of the direction(s) is projected out, h <- h - (h Q^T) Q, at every position, so the
optimiser cannot use that subspace to fit the data."""

from contextlib import contextmanager

from postern.core.registry import register
from postern.interp.defences._common import directions_for, hooked_layers
from postern.interp.hooks import on_block_outputs


def orthonormal_basis(directions):
    """Per layer, an orthonormal basis [k, d] of the span of the layer's directions [k, d] (QR)."""
    import torch

    return torch.stack([torch.linalg.qr(d.T.double()).Q.T.float() for d in directions])


@register("intervention", "ablate")
@contextmanager
def ablate_during_training(model, config):
    basis = orthonormal_basis(directions_for(model, config))
    on_device: dict = {}

    def fn(i, h):
        q = on_device.get((i, h.device))
        if q is None:
            q = on_device[(i, h.device)] = basis[i].to(h.device)
        x = h.float()
        return (x - (x @ q.T) @ q).to(h.dtype)

    with on_block_outputs(model, hooked_layers(model, config), fn):
        yield
