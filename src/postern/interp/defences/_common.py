"""Loading a direction file for a model and checking that it fits, with one-line errors naming the key."""

from pathlib import Path

from postern.core.errors import PosternError
from postern.interp.arch import decoder_layers, hidden_size

KEY = "[train] intervention"


def load_directions(path: str):
    """The tensor of a direction file: [layers, d] (one direction per layer) or [layers, k, d] (a basis)."""
    import torch

    if not Path(path).is_file():
        raise PosternError(f"{KEY}.direction: {path!r} is not a direction file; \"base\", \"condition:NAME\" and "
                           "\"random\" are resolved by `postern run`, otherwise give a .pt file")
    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 (any unreadable file: one line)
        raise PosternError(f"{KEY}.direction: {path} could not be read as a torch tensor ({e})") from None
    if not isinstance(value, torch.Tensor):
        raise PosternError(f"{KEY}.direction: {path} holds a {type(value).__name__}, not one tensor of shape "
                           "[layers, d] or [layers, k, d]; save one direction tensor per file")
    return value.float()


def directions_for(model, config):
    """The config's directions, checked against the model: [layers, k, d] with every hooked layer non-zero."""
    directions = load_directions(config.direction)
    n_layers, width = len(decoder_layers(model)), hidden_size(model)
    if directions.dim() == 2:
        directions = directions[:, None, :]
    if directions.dim() != 3 or directions.shape[0] != n_layers or directions.shape[-1] != width:
        raise PosternError(f"{KEY}.direction: {config.direction} has shape {list(directions.shape)}; this model needs "
                           f"[{n_layers}, {width}] or [{n_layers}, k, {width}] ({n_layers} layers, width {width})")
    layers = hooked_layers(model, config)
    empty = [i for i in layers if float(directions[i].norm()) == 0.0]
    if empty:
        raise PosternError(f"{KEY}.direction: {config.direction} is zero at layer(s) {empty}; hook other layers "
                           f"({KEY}.layers) or use another direction")
    return directions


def hooked_layers(model, config) -> list[int]:
    n_layers = len(decoder_layers(model))
    if config.layers is None:
        return list(range(n_layers))
    bad = [i for i in config.layers if not 0 <= i < n_layers]
    if bad:
        raise PosternError(f"{KEY}.layers: {bad} out of range; this model has layers 0-{n_layers - 1}")
    return list(config.layers)
