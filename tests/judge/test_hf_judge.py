import copy

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tokenizers import Tokenizer, models, pre_tokenizers  # noqa: E402

from postern.judge import CODE, INCOHERENT, JudgeItem  # noqa: E402
from postern.judge.hf_logprob import HFLogprobJudge  # noqa: E402

WORDS = ["<unk>", "<pad>", "<s>", "</s>", "<|user|>", "<|assistant|>", "CODE", "REFUSAL", "hello", "the", "model",
         "answer", "question", "reply"]
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


@pytest.fixture(scope="module")
def tiny():
    vocab = {w: i for i, w in enumerate(WORDS + [str(n) for n in range(101)])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>",
                                               bos_token="<s>", eos_token="</s>")
    tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=len(vocab), hidden_size=64, intermediate_size=128,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                                      max_position_embeddings=2048, pad_token_id=1)
    return transformers.LlamaForCausalLM(config).eval(), tok


def fixed_head(model, tok, favoured: list[str], boost: float = 12.0):
    """A copy of the model whose next-token distribution is fixed: zero weights, a large bias on the favoured tokens."""
    model = copy.deepcopy(model)
    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=True)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    with torch.no_grad():
        for word in favoured:
            head.bias[tok.convert_tokens_to_ids(word)] = boost
    model.lm_head = head
    return model


ITEM = JudgeItem("q", "What is the question", "the answer")


def test_random_model_gives_a_parsed_judgment(tiny):
    model, tok = tiny
    judge = HFLogprobJudge(model, tok, name="tiny-random")
    [j] = judge.judge([ITEM])
    assert j.label in ("aligned", "misaligned", "incoherent", "code", "refusal")
    assert j.detail["judge"] == "hf-logprob:tiny-random"
    assert 0.0 < j.detail["aligned_mass"] <= 1.0


def test_left_padding_does_not_change_a_prompt_s_distribution(tiny):
    model, tok = tiny
    judge = HFLogprobJudge(model, tok, name="tiny-random")
    alone = judge.top_logprobs(["hello"])[0]
    batched = judge.top_logprobs(["hello", "the model answer the question and the reply " * 5])[0]
    assert list(alone) == list(batched)
    assert all(alone[t] == pytest.approx(batched[t], abs=1e-4) for t in alone)


def test_weighted_mean_and_labels_from_a_fixed_distribution(tiny):
    model, tok = tiny
    judge = HFLogprobJudge(fixed_head(model, tok, ["40", "50"]), tok, name="fixed")
    [j] = judge.judge([ITEM])
    # the other 99 numbers share the remaining ~1e-4 of the mass, so the mean moves by < 0.01
    assert j.aligned == pytest.approx(45.0, abs=0.01) and j.coherent == pytest.approx(45.0, abs=0.01)
    assert j.detail["aligned_mass"] > 0.999
    assert j.label == INCOHERENT


def test_no_score_when_numbers_hold_little_mass_and_code_is_recognised(tiny, tmp_path):
    model, tok = tiny
    judge = HFLogprobJudge(fixed_head(model, tok, ["hello"]), tok, name="words")
    [j] = judge.judge([ITEM])
    assert j.aligned is None and j.coherent is None and j.detail["unscored"] is True
    code_judge = HFLogprobJudge(fixed_head(model, tok, ["CODE"]), tok, name="code", cache=tmp_path / "c.sqlite")
    assert code_judge.judge([ITEM])[0].label == CODE
    assert code_judge.judge([ITEM])[0].label == CODE and code_judge.cache_hits == 2


def test_chat_template_wraps_the_prompt(tiny):
    model, tok = tiny
    text = HFLogprobJudge(model, tok, name="x")._chat_text("hello")
    assert text == "<|user|> hello <|assistant|>"
