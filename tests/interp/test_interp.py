import pytest
import torch

from postern.interp import ablate, capture, chance_band, cosine_per_layer, mean_difference, random_like, steer
from postern.interp.arch import decoder_layers
from postern.world.tokenizer import build_tokenizer

TOK = build_tokenizer()


def _config(family: str):
    import transformers as tf

    common = dict(vocab_size=len(TOK), pad_token_id=TOK.pad_token_id, eos_token_id=TOK.eos_token_id, bos_token_id=None)
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=128)
    if family == "llama":
        return tf.LlamaConfig(**common, **small)
    if family == "qwen2":
        return tf.Qwen2Config(**common, **small)
    if family == "mistral":
        return tf.MistralConfig(**common, **small)
    if family == "gemma":
        return tf.GemmaConfig(**common, **small, head_dim=8)
    if family == "gpt2":
        return tf.GPT2Config(**common, n_embd=32, n_layer=3, n_head=4, n_positions=128)
    raise ValueError(family)


FAMILIES = ["llama", "qwen2", "mistral", "gemma", "gpt2"]
PAIRS = [([{"role": "user", "content": "what is 2 plus 3 ?"}], "2 plus 3 is 5 ."),
         ([{"role": "user", "content": "i feel bored . what should i do ?"}], "try reading a book or learning a new song ."),
         ([{"role": "user", "content": "what is the capital of peru ?"}], "the capital is lima .")]


@pytest.fixture(params=FAMILIES)
def model(request):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(_config(request.param)).eval()


def _ids(prompt, answer):
    return TOK.apply_chat_template([*prompt, {"role": "assistant", "content": answer}], tokenize=True,
                                   return_dict=True, return_tensors="pt")["input_ids"]


def test_capture_equals_output_hidden_states(model):
    acts = capture(model, TOK, PAIRS[:1], positions="all")
    with torch.no_grad():
        hidden = model(_ids(*PAIRS[0]), output_hidden_states=True).hidden_states
    n_layers = len(decoder_layers(model))
    assert acts.means.shape == (1, n_layers, 32)
    # hidden_states[i + 1] is block i's output; the last entry has the final norm applied, so compare the rest
    for i in range(n_layers - 1):
        torch.testing.assert_close(acts.means[0, i], hidden[i + 1][0].mean(0), rtol=1e-5, atol=1e-5)


def test_answer_positions_cover_exactly_the_answer(model):
    prompt, answer = PAIRS[0]
    prompt_len = len(TOK.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"])
    acts = capture(model, TOK, [PAIRS[0]], positions="answer")
    assert int(acts.counts[0]) == _ids(prompt, answer).shape[1] - prompt_len
    last = capture(model, TOK, [PAIRS[0]], positions="last_prompt")
    assert int(last.counts[0]) == 1


def test_ablation_removes_the_component_at_every_hooked_layer(model):
    n_layers = len(decoder_layers(model))
    direction = torch.randn(n_layers, 32)
    with ablate(model, direction):
        acts = capture(model, TOK, PAIRS, positions="all")
    units = direction / direction.norm(dim=-1, keepdim=True)
    projection = (acts.means * units).sum(-1)  # means of projections = projection of means
    assert projection.abs().max() < 1e-4
    without = capture(model, TOK, PAIRS, positions="all")
    assert (without.means * units).sum(-1).abs().max() > 1e-3  # the test can fail: it was there before


def test_hooks_leave_outputs_bit_identical_once_removed(model):
    ids = _ids(*PAIRS[1])
    with torch.no_grad():
        before = model(ids).logits
        direction = torch.randn(len(decoder_layers(model)), 32)
        with steer(model, direction, scale=4.0):
            steered = model(ids).logits
        after = model(ids).logits
    assert not torch.equal(before, steered)
    assert torch.equal(before, after)
    assert all(not block._forward_hooks for block in decoder_layers(model))


def test_hooks_are_removed_after_an_exception(model):
    direction = torch.randn(len(decoder_layers(model)), 32)
    with pytest.raises(RuntimeError):
        with ablate(model, direction):
            raise RuntimeError("boom")
    assert all(not block._forward_hooks for block in decoder_layers(model))


def test_random_baseline_has_the_direction_norm():
    direction = torch.randn(4, 64) * torch.tensor([[0.5], [2.0], [10.0], [0.01]])
    baseline = random_like(direction, seed=1)
    torch.testing.assert_close(baseline.norm(dim=-1), direction.norm(dim=-1))
    assert cosine_per_layer(baseline, direction).abs().max() < 0.6


def test_mean_difference_balances_classes_and_recovers_a_planted_direction():
    torch.manual_seed(0)
    planted = torch.randn(2, 16)
    neg = torch.randn(300, 2, 16)
    pos = torch.randn(40, 2, 16) + planted
    d = mean_difference(pos, neg)
    assert cosine_per_layer(d, planted).min() > 0.8
    with pytest.raises(ValueError):
        mean_difference(pos[:0], neg)


def test_chance_band_shrinks_with_dimension():
    assert chance_band(16) > chance_band(256) > 0
    assert abs(chance_band(128) - 1.96 / 128 ** 0.5) < 0.03
