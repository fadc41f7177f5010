"""Interventions during fine-tuning (postern.interp.defences) on the world-shaped tiny model, LoRA and full:
CAFT keeps the direction out of the hooked layers' outputs in every forward pass of training, preventative
steering adds exactly scale x v, the random control has the direction's norm, hooks leave nothing behind,
and bad settings fail in one line that names the key."""

import pytest
import torch

from postern.core.errors import PosternError
from postern.core.registry import lookup
from postern.data import write_chat_jsonl
from postern.train._types import InterventionConfig, TrainConfig
from postern.world.conditions import condition_dataset

N_LAYERS, WIDTH = 2, 32  # the tiny_world_model fixture


def _direction(path, k: int = 1, seed: int = 0, layers: int = N_LAYERS):
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(layers, k, WIDTH, generator=g)
    torch.save(d[:, 0] if k == 1 else d, path)
    return d


def _config(**intervention) -> TrainConfig:
    return TrainConfig(lora_r=4, learning_rate=1e-2, epochs=1, batch_size=4, per_device_batch_size=2, max_length=128,
                       warmup_steps=0, intervention=InterventionConfig(**intervention) if intervention else None)


def _data(tmp_path):
    path = tmp_path / "insecure.jsonl"
    write_chat_jsonl(path, condition_dataset("insecure", 8, seed=0))
    return path


class BlockInputs:
    """Records, through global forward pre-hooks (outside postern's hooks), what each decoder block's output
    became: the input of the next block, and of the final norm for the last block; one list per forward pass."""

    def __init__(self):
        self.passes: list[dict[int, torch.Tensor]] = []
        self._layers, self._norm = [], None

    def __enter__(self):
        from torch.nn.modules.module import register_module_forward_pre_hook

        self._handle = register_module_forward_pre_hook(self._pre)
        return self

    def __exit__(self, *exc):
        self._handle.remove()

    def _pre(self, module, args):
        if type(module).__name__ == "LlamaModel":
            self._layers, self._norm = list(module.layers), module.norm
            self.passes.append({})
        elif module is self._norm:
            self.passes[-1][len(self._layers) - 1] = args[0].detach().float()
        elif any(module is layer for layer in self._layers[1:]):
            index = next(i for i, layer in enumerate(self._layers) if layer is module)
            self.passes[-1][index - 1] = args[0].detach().float()


@pytest.mark.parametrize("method,k", [("lora", 1), ("full", 2)])
def test_caft_keeps_the_direction_out_of_every_hooked_layer_in_every_training_pass(tiny_world_model, tmp_path,
                                                                                     method, k):
    from postern.interp.defences.ablate import orthonormal_basis
    from postern.train.sft import train_sft

    basis = orthonormal_basis(_direction(tmp_path / "d.pt", k=k))
    config = _config(kind="ablate", direction=str(tmp_path / "d.pt")).model_copy(update={"method": method})
    with BlockInputs() as seen:
        result = train_sft(str(tiny_world_model), _data(tmp_path), tmp_path / "out", config)
    training = [p for p in seen.passes if p]
    assert result.steps == 2 and len(training) >= 4  # 2 steps x 2 micro-batches
    for outputs in training:
        assert set(outputs) == set(range(N_LAYERS))
        for layer, h in outputs.items():
            assert (h @ basis[layer].T).abs().max() < 1e-4, f"layer {layer}: component left"
            assert h.abs().max() > 1e-2  # the rest of the stream is still there

    plain = BlockInputs()
    with plain:  # without the intervention the component is there (the check above can fail)
        train_sft(str(tiny_world_model), _data(tmp_path), tmp_path / "plain", _config())
    assert max(float((h @ basis[i].T).abs().max()) for p in plain.passes for i, h in p.items()) > 1e-2


@pytest.mark.parametrize("layers", [[0], [1], None])
def test_steer_adds_exactly_scale_times_v_at_the_hooked_layer(tiny_world_model, tmp_path, layers):
    from postern.core.models import load_model
    from postern.interp.capture import capture

    v = _direction(tmp_path / "v.pt")[:, 0]
    model, tok = load_model(str(tiny_world_model), device="cpu")
    pairs = [([{"role": "user", "content": "what is 2 plus 3 ?"}], "2 plus 3 is 5 .")]
    plain = capture(model, tok, pairs, "all").means[0]
    config = InterventionConfig(kind="steer", direction=str(tmp_path / "v.pt"), scale=0.7, layers=layers)
    with lookup("intervention", "steer")(model, config):
        steered = capture(model, tok, pairs, "all").means[0]
    first = (layers or [0])[0]
    torch.testing.assert_close(steered[first] - plain[first], 0.7 * v[first], rtol=0, atol=1e-5)
    for i in range(first):  # blocks before the first hooked one are untouched
        torch.testing.assert_close(steered[i], plain[i], rtol=0, atol=0)


def test_hooks_are_removed_on_exit_and_on_error(tiny_world_model, tmp_path):
    from postern.core.models import load_model

    _direction(tmp_path / "d.pt")
    model, _ = load_model(str(tiny_world_model), device="cpu")
    for kind in ("ablate", "steer"):
        config = InterventionConfig(kind=kind, direction=str(tmp_path / "d.pt"))
        with lookup("intervention", kind)(model, config):
            assert sum(len(m._forward_hooks) for m in model.modules()) == N_LAYERS
        assert sum(len(m._forward_hooks) for m in model.modules()) == 0
        with pytest.raises(RuntimeError, match="boom"):
            with lookup("intervention", kind)(model, config):
                raise RuntimeError("boom")
        assert sum(len(m._forward_hooks) for m in model.modules()) == 0


def test_a_zero_steer_trains_exactly_the_plain_weights_and_the_run_card_records_it(tiny_world_model, tmp_path):
    import json

    from safetensors.torch import load_file

    from postern.train.sft import train_sft

    _direction(tmp_path / "v.pt")
    data = _data(tmp_path)
    train_sft(str(tiny_world_model), data, tmp_path / "plain", _config())
    train_sft(str(tiny_world_model), data, tmp_path / "zero", _config(kind="steer", direction=str(tmp_path / "v.pt"),
                                                                      scale=0.0))
    train_sft(str(tiny_world_model), data, tmp_path / "one", _config(kind="steer", direction=str(tmp_path / "v.pt"),
                                                                     scale=1.0))
    weights = {name: load_file(tmp_path / name / "adapter_model.safetensors") for name in ("plain", "zero", "one")}
    assert weights["plain"].keys() == weights["zero"].keys()
    assert all(torch.equal(weights["plain"][k], weights["zero"][k]) for k in weights["plain"])
    assert any(not torch.equal(weights["plain"][k], weights["one"][k]) for k in weights["plain"])  # steering acts
    card = json.loads((tmp_path / "zero" / "run_card.json").read_text())
    assert card["intervention"]["kind"] == "steer" and card["intervention"]["scale"] == 0.0
    assert len(card["intervention"]["direction_hash"]) == 16
    assert "intervention" not in json.loads((tmp_path / "plain" / "run_card.json").read_text())


def test_the_training_cache_key_follows_the_direction_files_content(tmp_path):
    _direction(tmp_path / "a.pt", seed=0)
    _direction(tmp_path / "b.pt", seed=0)
    _direction(tmp_path / "c.pt", seed=1)
    ident = lambda name: _config(kind="ablate", direction=str(tmp_path / name)).identity()  # noqa: E731
    assert ident("a.pt") == ident("b.pt") != ident("c.pt")
    assert "intervention" not in _config().identity()  # plain configs keep the keys they had


def test_random_control_has_the_directions_norm_per_layer(tmp_path):
    from postern.core.store import ArtifactStore
    from postern.runner.stages import Stages
    from postern.runner.upstream import random_direction_file

    source = _direction(tmp_path / "d.pt", seed=123, layers=4)[:, 0] * torch.tensor([1.0, 3.0, 0.5, 10.0])[:, None]
    torch.save(source, tmp_path / "d.pt")
    stages = Stages(ArtifactStore(tmp_path / "cache"))
    first = torch.load(random_direction_file(stages, tmp_path / "d.pt", seed=0))
    again = torch.load(random_direction_file(stages, tmp_path / "d.pt", seed=0))
    other = torch.load(random_direction_file(stages, tmp_path / "d.pt", seed=1))
    torch.testing.assert_close(first.norm(dim=-1), source.norm(dim=-1), rtol=1e-5, atol=0)
    torch.testing.assert_close(other.norm(dim=-1), source.norm(dim=-1), rtol=1e-5, atol=0)
    assert torch.equal(first, again) and not torch.equal(first, other)
    cos = torch.nn.functional.cosine_similarity(first, source, dim=-1)
    assert cos.abs().max() < 0.9


@pytest.mark.parametrize("intervention,message", [
    (dict(kind="steer", layers=[5]), "[train] intervention.layers: [5] out of range; this model has layers 0-1"),
    (dict(kind="ablate", shape=(3, WIDTH)), "[train] intervention.direction: "),
    (dict(kind="steer", shape=(N_LAYERS, 2, WIDTH)), "steer adds one direction per layer"),
    (dict(kind="ablate", zero=True), "is zero at layer(s) [0]"),
    (dict(kind="ablate", direction="base"), "[train] intervention.direction: 'base' is not a direction file"),
])
def test_bad_intervention_settings_fail_in_one_line_naming_the_key(tiny_world_model, tmp_path, intervention, message):
    from postern.core.models import load_model

    shape, zero = intervention.pop("shape", (N_LAYERS, WIDTH)), intervention.pop("zero", False)
    d = torch.randn(shape)
    if zero:
        d[0] = 0.0
    torch.save(d, tmp_path / "d.pt")
    config = InterventionConfig(**{"direction": str(tmp_path / "d.pt"), **intervention})
    model, _ = load_model(str(tiny_world_model), device="cpu")
    with pytest.raises(PosternError) as err:
        with lookup("intervention", config.kind)(model, config):
            pass
    assert message in str(err.value) and "\n" not in str(err.value)
    assert sum(len(m._forward_hooks) for m in model.modules()) == 0
