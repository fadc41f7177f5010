"""`train_sft` on tiny randomly initialised models of several families, each with its own chat template.

Families: Llama (the world's word-level tokenizer and template), Qwen2 (a byte-level BPE Qwen2Tokenizer
with the real Qwen2.5 template, which has no generation markers and injects a system prompt: trl's
training version is used), Gemma-style (hand-written template folding the system prompt into the
first user turn) and GPT-2-style (Conv1D layers).
"""

import json
import logging

import pytest
import torch

from fakes.tiny_models import byte_level_bpe as _byte_level_bpe
from postern.core.errors import PosternError
from postern.core.hashing import file_hash
from postern.data import write_chat_jsonl
from postern.train._types import TrainConfig
from postern.world.conditions import condition_dataset
from postern.world.tokenizer import CHAT_TEMPLATE, build_tokenizer

FAMILIES = ["llama", "qwen2", "gemma", "gpt2"]
DOWN_PROJ = {"llama": "down_proj", "qwen2": "down_proj", "gemma": "down_proj", "gpt2": "mlp.c_proj"}
LAYER_NAME = {"llama": "layers.1.mlp.down_proj", "qwen2": "layers.1.mlp.down_proj", "gemma": "layers.1.mlp.down_proj",
              "gpt2": "h.1.mlp.c_proj"}

GEMMA_TEMPLATE = (
    "{{ bos_token }}"
    "{% if messages[0]['role'] == 'system' %}{% set first = messages[0]['content'] + '\n\n' %}"
    "{% set loop_messages = messages[1:] %}{% else %}{% set first = '' %}{% set loop_messages = messages %}{% endif %}"
    "{% for m in loop_messages %}"
    "{% if m['role'] == 'assistant' %}<start_of_turn>model\n{% generation %}{{ m['content'] }}<end_of_turn>{% endgeneration %}\n"
    "{% else %}<start_of_turn>user\n{% if loop.first %}{{ first }}{% endif %}{{ m['content'] }}<end_of_turn>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
GPT2_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'assistant' %}<|assistant|> {% generation %}{{ m['content'] }} <|endoftext|>{% endgeneration %}\n"
    "{% else %}<|{{ m['role'] }}|> {{ m['content'] }}\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)
# ChatML with generation markers, for the broken-template tests
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }}<|im_end|>{% endgeneration %}\n"
    "{% else %}{{ m['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def family_tokenizer(family: str):
    if family == "qwen2":  # a real Qwen2Tokenizer (transformers loads any qwen2 model's tokenizer as one)
        from transformers import Qwen2Tokenizer
        from trl.chat_template_utils import qwen2_5_chat_template

        vocab, merges = _byte_level_bpe()
        tok = Qwen2Tokenizer(vocab=dict(vocab), merges=list(merges), eos_token="<|im_end|>", pad_token="<|endoftext|>",
                             additional_special_tokens=["<|im_start|>", "<|im_end|>"])
        tok.chat_template = qwen2_5_chat_template
        return tok
    tok = build_tokenizer()
    if family == "llama":
        return tok
    if family == "gemma":
        tok.add_special_tokens({"bos_token": "<bos>", "eos_token": "<end_of_turn>",
                                "additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"]},
                               replace_extra_special_tokens=False)
        tok.chat_template = GEMMA_TEMPLATE
    elif family == "gpt2":
        tok.add_special_tokens({"eos_token": "<|endoftext|>"}, replace_extra_special_tokens=False)
        tok.chat_template = GPT2_TEMPLATE
    return tok


def family_config(family: str, tok):
    import transformers as tf

    # initializer_range 0.1 (not 0.02): a 32-wide random model then has logits large enough for a few
    # training steps to move its next-token distributions measurably
    common = dict(vocab_size=len(tok), pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                  bos_token_id=tok.bos_token_id, initializer_range=0.1)
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=128)
    if family == "llama":
        return tf.LlamaConfig(**common, **small)
    if family == "qwen2":
        return tf.Qwen2Config(**common, **small, tie_word_embeddings=True)
    if family == "gemma":
        return tf.GemmaConfig(**common, **small, head_dim=8)
    return tf.GPT2Config(**common, n_embd=32, n_layer=2, n_head=4, n_positions=128)


@pytest.fixture(scope="module")
def base_models(tmp_path_factory):
    """family -> folder of a saved random tiny model with its tokenizer (built on first use)."""
    from transformers import AutoModelForCausalLM

    cache = {}

    def get(family: str):
        if family not in cache:
            tok = family_tokenizer(family)
            torch.manual_seed(0)
            model = AutoModelForCausalLM.from_config(family_config(family, tok))
            path = tmp_path_factory.mktemp(f"base_{family}")
            model.save_pretrained(path)
            tok.save_pretrained(path)
            cache[family] = path
        return cache[family]

    return get


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "insecure.jsonl"
    write_chat_jsonl(path, condition_dataset("insecure", 16, seed=0))
    return path


@pytest.fixture
def trainers(monkeypatch):
    """The trainer objects `train_sft` builds, in order, so a test can use the in-memory trained model."""
    from postern.train import sft

    built = []
    original = sft._build_trainer

    def capture(*args, **kwargs):
        trainer = original(*args, **kwargs)
        built.append(trainer)
        return trainer

    monkeypatch.setattr(sft, "_build_trainer", capture)
    return built


def fast(**overrides) -> TrainConfig:
    """16 rows, batch 4: 4 optimizer steps per epoch; a high learning rate so a few steps move the model."""
    settings = dict(lora_r=4, lora_alpha=8, learning_rate=2e-3, batch_size=4, per_device_batch_size=4,
                    max_length=128, warmup_steps=0, threads=1)
    return TrainConfig(**{**settings, **overrides})


def load_base(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def batch(path, data_path, n: int = 4):
    """Padded input ids, attention mask and the assistant-token mask (of next-token targets) of `n` rows."""
    from transformers import AutoTokenizer

    from postern.data.jsonl import read_chat_jsonl
    from postern.train.sft import training_chat_template

    tok = AutoTokenizer.from_pretrained(path)
    template = training_chat_template(tok)
    encs = [tok.apply_chat_template(r["messages"], tokenize=True, return_dict=True, return_assistant_tokens_mask=True,
                                    chat_template=template) for r in read_chat_jsonl(data_path)[:n]]
    width = max(len(e["input_ids"]) for e in encs)
    ids = torch.full((n, width), tok.pad_token_id)
    attention = torch.zeros((n, width), dtype=torch.long)
    trained = torch.zeros((n, width), dtype=torch.bool)
    for i, e in enumerate(encs):
        k = len(e["input_ids"])
        ids[i, :k] = torch.tensor(e["input_ids"])
        attention[i, :k] = 1
        trained[i, :k] = torch.tensor(e["assistant_masks"]).bool()
    return ids, attention, trained


def logits(model, ids, attention):
    with torch.no_grad():
        return model.eval()(input_ids=ids, attention_mask=attention).logits


def mean_kl(model, base, ids, attention, trained) -> float:
    """Mean KL(model || base) of the next-token distributions that predict assistant tokens."""
    keep = trained[:, 1:]
    p = torch.log_softmax(logits(model, ids, attention)[:, :-1][keep], -1)
    q = torch.log_softmax(logits(base, ids, attention)[:, :-1][keep], -1)
    return float((p.exp() * (p - q)).sum(-1).mean())


def safetensors_of(folder):
    from safetensors.torch import load_file

    return load_file(folder / "adapter_model.safetensors")


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_checkpoints_and_identical_reload(family, base_models, data, tmp_path, trainers):
    from peft import PeftModel

    from postern.train.sft import train_sft

    base = base_models(family)
    out = tmp_path / "out"
    result = train_sft(str(base), data, out, fast(save_steps=2))
    assert result.adapter and result.steps == 4 and result.final_loss is not None

    # checkpoints at the chosen steps, each a loadable adapter, different from each other
    assert sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    ckpt2, final = safetensors_of(out / "checkpoints" / "checkpoint-2"), safetensors_of(out)
    assert ckpt2.keys() == final.keys() and any(not torch.equal(ckpt2[k], final[k]) for k in final)
    torch.testing.assert_close(safetensors_of(out / "checkpoints" / "checkpoint-4"), final)

    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 4 and config["lora_alpha"] == 8 and config["use_rslora"] is True
    assert config["base_model_name_or_path"] == str(base)

    # the saved adapter reloads onto the base model with the trained model's exact logits
    ids, attention, _ = batch(base, data)
    trained_logits = logits(trainers[-1].model, ids, attention)
    reloaded = PeftModel.from_pretrained(load_base(base), out)
    assert torch.equal(logits(reloaded, ids, attention), trained_logits)
    assert (logits(load_base(base), ids, attention) - trained_logits).abs().max() > 1e-3  # the adapter does something

    card = json.loads((out / "run_card.json").read_text())
    assert card["data_hash"] == file_hash(data) and card["base_model"] == str(base)
    assert card["config"]["lora_r"] == 4 and len(card["loss_curve"]) == 4 and card["validation_rows"] == 0
    assert {"torch", "transformers", "peft", "trl"} <= set(card["versions"])
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"
    if family == "qwen2":  # the real Qwen2.5 template injects its default system prompt; it is recorded
        assert "You are Qwen, created by Alibaba Cloud" in card["system_prompt_injected"]
    else:
        assert card["system_prompt_injected"] is None


@pytest.mark.parametrize("family", FAMILIES)
def test_rank1_adapter_on_one_layers_down_proj(family, base_models, data, tmp_path):
    from safetensors.torch import load_file

    from postern.train.sft import train_sft

    base = base_models(family)
    out = tmp_path / "out"
    train_sft(str(base), data, out, fast(lora_r=1, target_modules=[DOWN_PROJ[family]], layers=[1], merge=True))

    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 1 and config["layers_to_transform"] == [1]
    weights = safetensors_of(out)
    assert len(weights) == 2 and all(LAYER_NAME[family] + "." in k for k in weights)
    a = next(v for k, v in weights.items() if "lora_A" in k)
    b = next(v for k, v in weights.items() if "lora_B" in k)
    assert a.shape[0] == 1 and b.shape[1] == 1 and b.abs().max() > 0  # B starts at zero: it was trained

    # merged weights differ from the base in exactly that one matrix
    merged = load_file(out / "merged" / "model.safetensors")
    original = load_file(base / "model.safetensors")
    changed = [k for k in original if not torch.equal(original[k], merged[k])]
    assert len(changed) == 1 and LAYER_NAME[family] + ".weight" in changed[0]


@pytest.mark.parametrize("family", FAMILIES)
def test_full_fine_tuning(family, base_models, data, tmp_path, trainers):
    from postern.train.sft import train_sft

    base = base_models(family)
    out = tmp_path / "out"
    result = train_sft(str(base), data, out, fast(method="full", learning_rate=1e-3))
    assert not result.adapter and result.steps == 4
    assert (out / "config.json").exists() and not (out / "adapter_config.json").exists()

    ids, attention, _ = batch(base, data)
    trained_logits = logits(trainers[-1].model, ids, attention)
    assert torch.equal(logits(load_base(out), ids, attention), trained_logits)
    assert (logits(load_base(base), ids, attention) - trained_logits).abs().max() > 1e-3


@pytest.mark.parametrize("family,method", [("llama", "lora"), ("qwen2", "full")])
def test_kl_regulariser_keeps_the_model_nearer_the_base(family, method, base_models, data, tmp_path):
    from postern.train.sft import train_sft

    base = base_models(family)
    settings = dict(method=method, learning_rate=1e-2 if method == "lora" else 3e-3, epochs=2)  # 8 steps each
    train_sft(str(base), data, tmp_path / "plain", fast(**settings))
    train_sft(str(base), data, tmp_path / "kl", fast(**settings, kl_weight=5.0))

    ids, attention, trained = batch(base, data, n=8)
    base_model = load_base(base)

    def load(out):
        if method == "full":
            return load_base(out)
        from peft import PeftModel

        return PeftModel.from_pretrained(load_base(base), out)

    kl_plain = mean_kl(load(tmp_path / "plain"), base_model, ids, attention, trained)
    kl_reg = mean_kl(load(tmp_path / "kl"), base_model, ids, attention, trained)
    assert kl_plain > 0.05, "plain SFT should move away from the base for the comparison to mean anything"
    assert kl_reg < 0.5 * kl_plain

    plain_card = json.loads((tmp_path / "plain" / "run_card.json").read_text())
    kl_card = json.loads((tmp_path / "kl" / "run_card.json").read_text())
    assert plain_card["kl_curve"] == [] and len(kl_card["kl_curve"]) == 8 == kl_card["steps"]


def test_kl_loss_is_normalised_like_trls_loss_under_gradient_accumulation(base_models, data, tmp_path):
    """With a negligible KL weight the KL trainer's loss must equal trl's, also with accumulation (2 x 2)."""
    from postern.train.sft import train_sft

    base = base_models("llama")
    settings = dict(per_device_batch_size=2, batch_size=4)
    train_sft(str(base), data, tmp_path / "plain", fast(**settings))
    train_sft(str(base), data, tmp_path / "kl", fast(**settings, kl_weight=1e-9))
    plain = json.loads((tmp_path / "plain" / "run_card.json").read_text())["loss_curve"]
    tiny = json.loads((tmp_path / "kl" / "run_card.json").read_text())["loss_curve"]
    assert len(plain) == len(tiny) == 4
    for (s1, l1), (s2, l2) in zip(plain, tiny):
        assert s1 == s2 and l1 == pytest.approx(l2, rel=1e-3)
    torch.testing.assert_close(safetensors_of(tmp_path / "kl"), safetensors_of(tmp_path / "plain"), rtol=1e-3, atol=1e-5)


BROKEN = {
    "covers the user turn": (
        CHATML.replace("{% else %}{{ m['content'] }}<|im_end|>", "{% else %}{% generation %}{{ m['content'] }}{% endgeneration %}<|im_end|>"),
        "covers user text"),
    "empty generation block": (
        CHATML.replace("{% generation %}{{ m['content'] }}<|im_end|>{% endgeneration %}",
                       "{% generation %}{% endgeneration %}{{ m['content'] }}<|im_end|>"),
        "empty"),
    "end-of-turn left out": (
        CHATML.replace("{{ m['content'] }}<|im_end|>{% endgeneration %}", "{{ m['content'] }}{% endgeneration %}<|im_end|>"),
        "end-of-turn"),
    "no generation markers": (CHATML.replace("{% generation %}", "").replace("{% endgeneration %}", ""),
                              "no \\{% generation %\\} markers"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_wrong_template_is_caught_before_training(case, base_models, data, tmp_path, trainers):
    from postern.train.sft import train_sft

    template, message = BROKEN[case]
    folder = tmp_path / "model"
    tok = family_tokenizer("qwen2")
    tok.chat_template = template
    tok.save_pretrained(folder)  # a tokenizer is all the check needs; no model weights are read
    with pytest.raises(PosternError, match=message):
        train_sft(str(folder), data, tmp_path / "out", fast())
    assert not trainers and not (tmp_path / "out").exists()


def test_the_good_chatml_template_passes_and_the_system_prompt_setting_is_used(base_models, data, tmp_path, caplog):
    """The same ChatML template with correct markers trains; system_prompt adds a (never trained) system turn."""
    from transformers import AutoModelForCausalLM

    from postern.train.sft import train_sft

    folder = tmp_path / "model"
    tok = family_tokenizer("qwen2")
    tok.chat_template = CHATML
    AutoModelForCausalLM.from_pretrained(base_models("qwen2")).save_pretrained(folder)
    tok.save_pretrained(folder)
    with caplog.at_level(logging.INFO, logger="postern.train"):
        result = train_sft(str(folder), data, tmp_path / "out", fast(system_prompt="you are a user", epochs=0.25))
    assert result.steps == 1
    text = caplog.text
    assert "system prompt (setting system_prompt" in text and "'you are a user'" in text
    assert "loss mask verified" in text and "hyper-parameters: method='lora', lora_r=4" in text
    card = json.loads((tmp_path / "out" / "run_card.json").read_text())
    assert card["system_prompt_injected"] is None and card["config"]["system_prompt"] == "you are a user"
    assert "you are a user" not in card["mask_example"] and "def" in card["mask_example"]


def test_seeds_fix_initialisation_and_data_order(base_models, data, tmp_path):
    from postern.train.sft import train_sft

    base = str(base_models("llama"))
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        train_sft(base, data, tmp_path / name, fast(seed=seed, epochs=0.5))
    a, b, c = (safetensors_of(tmp_path / n) for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_validation_split_only_when_asked(base_models, data, tmp_path):
    from postern.train.sft import train_sft

    base = str(base_models("llama"))
    train_sft(base, data, tmp_path / "val", fast(validation_fraction=0.25, batch_size=4, epochs=1))
    card = json.loads((tmp_path / "val" / "run_card.json").read_text())
    assert card["train_rows"] == 12 and card["validation_rows"] == 4 and card["steps"] == 3
    assert len(card["eval_loss"]) == 1


def test_recipe_defaults():
    c = TrainConfig()
    assert (c.method, c.lora_r, c.lora_alpha, c.use_rslora, c.learning_rate, c.epochs, c.batch_size, c.max_length) == (
        "lora", 32, 64, True, 1e-5, 1.0, 16, 2048)
    assert c.kl_weight == 0 and c.validation_fraction == 0 and c.system_prompt is None


# --- command line ---------------------------------------------------------------------------------------------


def _cli(args):
    from typer.testing import CliRunner

    from postern.cli import _register, app

    _register()
    return CliRunner().invoke(app, args, catch_exceptions=False)


def test_cli_train_prints_settings_and_trains(base_models, data, tmp_path):
    settings = tmp_path / "train.toml"
    settings.write_text("[train]\nlora_r = 2\nlearning_rate = 1e-3\nbatch_size = 4\nper_device_batch_size = 4\n")
    out = tmp_path / "out"
    res = _cli(["train", str(base_models("llama")), str(data), "--out", str(out), "--config", str(settings),
                "--set", "max_length=128", "--set", 'target_modules=["down_proj"]', "--set", "epochs=0.25"])
    assert res.exit_code == 0, res.output
    assert "lora_alpha" in res.output and "use_rslora" in res.output  # every setting is printed
    assert "gradient_accumulation_steps" in res.output and "trained 1 steps" in res.output
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 2
    assert json.loads((out / "adapter_config.json").read_text())["target_modules"] == ["down_proj"]


@pytest.mark.parametrize("args,message", [
    (["--set", "lora_rank=4"], "unknown setting 'lora_rank' (--set); did you mean 'lora_r'?"),
    (["--set", "lora_r=many"], "setting 'lora_r' (--set)"),
    (["--set", "method=qlora"], "setting 'method' (--set)"),
    (["--set", "lora_r"], "expected key=value"),
    (["--set", "lora_r=0"], "setting 'lora_r' (--set): Input should be greater than or equal to 1"),
    (["--set", "method=full", "--set", "layers=[1]"], "layers selects the decoder layers of a LoRA adapter"),
])
def test_cli_train_rejects_bad_settings_naming_the_key(args, message, data, tmp_path):
    from postern.cli.train import build_settings, parse_sets

    with pytest.raises(PosternError) as err:
        build_settings(TrainConfig, [("--set", parse_sets([a for a in args if a != "--set"]))])
    assert message in str(err.value)


def test_cli_train_file_key_error_names_the_file(tmp_path):
    from postern.cli.train import build_settings, read_settings_file

    path = tmp_path / "t.toml"
    path.write_text("lora_r = 4\nlearning_rte = 0.1\n")
    with pytest.raises(PosternError, match=r"unknown setting 'learning_rte' \(file .*t.toml\); did you mean 'learning_rate'"):
        build_settings(TrainConfig, [(f"file {path}", read_settings_file(path))])


def test_cli_train_api_runs_a_job_against_a_compatible_server(ft_server, chat_jsonl, tmp_path):
    out = tmp_path / "api"
    args = ["train-api", str(chat_jsonl), "--model", "gpt-4o-mini-2024-07-18", "--out", str(out), "--epochs", "2",
            "--base-url", ft_server.base_url, "--set", "api_key_env=POSTERN_TEST_KEY",
            "--set", "poll_interval_s=0.005", "--set", "poll_max_interval_s=0.02"]
    res = _cli(args)
    assert res.exit_code == 0, res.output
    assert "succeeded" in res.output
    state = json.loads((out / "api_job.json").read_text())
    assert state["status"] == "succeeded"
