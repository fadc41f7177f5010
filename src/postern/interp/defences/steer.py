"""Preventative steering: during training, add scale x v (the layer's direction) to each hooked block's output
at every position, so the optimiser has no reason to move the model along v itself."""

from contextlib import contextmanager

from postern.core.errors import PosternError
from postern.core.registry import register
from postern.interp.defences._common import KEY, directions_for, hooked_layers
from postern.interp.hooks import on_block_outputs


@register("intervention", "steer")
@contextmanager
def steer_during_training(model, config):
    directions = directions_for(model, config)
    if directions.shape[1] != 1:
        raise PosternError(f"{KEY}.direction: steer adds one direction per layer; {config.direction} has "
                           f"{directions.shape[1]} per layer (use kind = \"ablate\" for a basis)")
    added = directions[:, 0] * config.scale

    def fn(i, h):
        return h + added[i].to(h.device, h.dtype)

    with on_block_outputs(model, hooked_layers(model, config), fn):
        yield
