"""The direction file of a training intervention, loaded and checked against the model (postern.interp.directions),
with one-line errors naming the key."""

from postern.interp.arch import decoder_layers, hidden_size
from postern.interp.directions import check_direction, load_direction_file

KEY = "[train] intervention"


def directions_for(model, config):
    """The config's directions, checked against the model: [layers, k, d] with every hooked layer non-zero."""
    directions = load_direction_file(config.direction, f"{KEY}.direction", basis=True)
    check_direction(directions, len(decoder_layers(model)), hidden_size(model), hooked_layers(model, config),
                    f"{KEY}.direction", f"{KEY}.layers")
    return directions[:, None, :] if directions.dim() == 2 else directions


def hooked_layers(model, config) -> list[int]:
    """The layers the hooks go on: `config.layers` (checked by `directions_for`), or all."""
    return list(range(len(decoder_layers(model)))) if config.layers is None else list(config.layers)
