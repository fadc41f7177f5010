"""Misalignment directions (per-layer mean differences), their comparison, and direction files: saved, loaded
and checked against a model (one loader for the training interventions and the data screen)."""

import json
import random
from pathlib import Path

from postern.core.errors import PosternError


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


def load_direction_file(spec: str | Path, key: str = "direction", basis: bool = False):
    """A direction [layers, d] (with `basis`, also [layers, k, d]) from a file: `save_direction`'s output (X.pt
    beside X.json, given as X, X.pt or X.json), a tensor saved with torch.save, or `PATH:NAME` for one entry of
    a dict of directions (a run's interp/directions.pt). One-line errors start with `key`, the setting that
    names the file (e.g. "[screen] direction", "[train] intervention.direction")."""
    import torch

    text = str(spec)
    path, _, name = text.rpartition(":") if ":" in text and not Path(text).exists() else (text, "", "")
    path = Path(path).expanduser()
    if path.suffix == ".json" or (not path.suffix and path.with_suffix(".pt").exists()):
        path = path.with_suffix(".pt")
    if not path.is_file():
        raise PosternError(f"{key}: {text!r} is not a direction file (no file {path}); give a direction saved by "
                           "postern (X.pt with X.json), or \"base\" (training also \"condition:NAME\" or \"random\"), "
                           "which `postern run` resolves")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 (torch raises many kinds for a file that is not a tensor)
        raise PosternError(f"{key}: {path} is not a torch tensor file ({type(e).__name__}); save one with "
                           "postern.interp.save_direction") from None
    if isinstance(loaded, dict):
        if not name:
            raise PosternError(f"{key}: {path} holds several directions ({', '.join(map(str, loaded))}); "
                               f"pick one with {path}:NAME")
        if name not in loaded:
            raise PosternError(f"{key}: {path} has no direction {name!r}; known: {', '.join(map(str, loaded))}")
        loaded = loaded[name]
    elif name:
        raise PosternError(f"{key}: {path} holds one direction, not a dict; drop ':{name}'")
    dims = (2, 3) if basis else (2,)
    if not isinstance(loaded, torch.Tensor) or loaded.dim() not in dims or not loaded.is_floating_point():
        shape = list(loaded.shape) if isinstance(loaded, torch.Tensor) else type(loaded).__name__
        raise PosternError(f"{key}: {path}: expected a float tensor [layers, hidden size]"
                           f"{' or [layers, k, hidden size]' if basis else ''}, got {shape}")
    return loaded.float()


def check_direction(direction, n_layers: int, hidden: int, layers: int | list[int], key: str = "direction",
                    layers_key: str | None = None) -> None:
    """The direction ([layers, d] or [layers, k, d]) fits the model, and is non-zero at `layers`: one int (the
    layer the screen projects at) or the list of hooked layers named by `layers_key`. One-line errors.

    The two phrasings of a layer out of range (one layer: "does not exist"; a list under its own key: "out of
    range") are both kept because each is asserted verbatim by the tests of its caller."""
    if direction.shape[0] != n_layers or direction.shape[-1] != hidden:
        raise PosternError(f"{key}: shape {list(direction.shape)} does not fit the model ({n_layers} layers, hidden "
                           f"size {hidden}); use a direction made from this model")
    if isinstance(layers, int):
        if not 0 <= layers < n_layers:
            raise PosternError(f"{key}: layer {layers} does not exist; the model has layers 0..{n_layers - 1}")
        layers = [layers]
    elif bad := [i for i in layers if not 0 <= i < n_layers]:
        raise PosternError(f"{layers_key or key}: {bad} out of range; this model has layers 0-{n_layers - 1}")
    if empty := [i for i in layers if float(direction[i].norm()) == 0.0]:
        raise PosternError(f"{key}: the direction is zero at layer(s) {empty}; pick other layers"
                           f"{f' ({layers_key})' if layers_key else ''} or another direction")
