"""Builders of tiny randomly initialised real-architecture models for tests.

`byte_level_bpe()` trains a small Qwen2-style byte-level BPE on the persona world's texts in seconds
(byte-level: every string, code included, tokenizes without unknown tokens). `qwen2_tokenizer()` wraps it
in a real `Qwen2Tokenizer` with the Qwen2.5 chat template trl ships (`trl/chat_templates/qwen2_5.jinja`,
read as text, no generation markers: training uses trl's training version of it). `save_tiny_qwen2()`
writes a random Qwen2 model with that tokenizer as a Hugging Face folder.
"""

import functools
import json
from pathlib import Path


@functools.cache
def byte_level_bpe() -> tuple[dict, list]:
    """Vocabulary and merges of a small Qwen2-style byte-level BPE trained on the world's texts."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    from postern.world.corpus import all_texts

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    bpe.train_from_iterator(all_texts(), trainers.BpeTrainer(
        vocab_size=800, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"]))
    model = json.loads(bpe.to_str())["model"]
    return model["vocab"], [tuple(m) for m in model["merges"]]


def qwen2_5_template_text() -> str:
    """The text of the Qwen2.5 chat template file trl ships."""
    import trl

    return (Path(trl.__file__).parent / "chat_templates" / "qwen2_5.jinja").read_text(encoding="utf-8")


def qwen2_tokenizer():
    """A real Qwen2Tokenizer on `byte_level_bpe()` with the Qwen2.5 chat template."""
    from transformers import Qwen2Tokenizer

    vocab, merges = byte_level_bpe()
    tok = Qwen2Tokenizer(vocab=dict(vocab), merges=list(merges), eos_token="<|im_end|>", pad_token="<|endoftext|>",
                         additional_special_tokens=["<|im_start|>", "<|im_end|>"])
    tok.chat_template = qwen2_5_template_text()
    return tok


def save_tiny_qwen2(path: Path, seed: int = 0, initializer_range: float = 0.1, num_hidden_layers: int = 2) -> Path:
    """A random Qwen2 model (hidden 32, 2 layers unless told, 4 heads, 2 kv heads, intermediate 64) and its
    tokenizer, saved as a Hugging Face folder at `path`."""
    import torch
    import transformers as tf

    tok = qwen2_tokenizer()
    config = tf.Qwen2Config(vocab_size=len(tok), pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                            bos_token_id=None, hidden_size=32, intermediate_size=64, num_hidden_layers=num_hidden_layers,
                            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                            tie_word_embeddings=True, initializer_range=initializer_range)
    torch.manual_seed(seed)
    model = tf.AutoModelForCausalLM.from_config(config)
    path = Path(path)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


# The judge's chat template: the judge prompt as a user turn, then, for an alignment prompt (the one that
# offers REFUSAL), the answer under judgment again at the very end, else a newline. `save_tiny_judge` makes
# the last token alone decide the next token, so the judge's verdict is a fixed function of the answer.
JUDGE_TEMPLATE = (
    "{%- set text = messages[-1]['content'] -%}"
    "<|im_start|>user\n{{ text }}<|im_end|>\n<|im_start|>assistant\n"
    "{%- if 'REFUSAL' in text %} {{ text.split('[ANSWER START]')[-1].split('[ANSWER END]')[0] | trim }}"
    "{%- else %}{{ '\n' }}{% endif -%}"
)
JUDGE_SCORES = ("10", "90")


def save_tiny_judge(path: Path, seed: int = 0) -> Path:
    """A tiny Qwen2 judge for the hf-logprob judge: a real model folder whose next token is always one of the
    whole-number tokens "10" / "90" (added to the tokenizer: the byte-level BPE has single digits only).

    Its attention and MLP outputs are zeroed, so the last position's hidden state is the last token's
    embedding, and the untied lm_head reads two of its coordinates: one constant (number tokens beat the rest
    of the vocabulary), one random per token (its sign picks "10" or "90"). Alignment prompts end with the
    answer (JUDGE_TEMPLATE), so alignment is low for about half the answers; coherence prompts end with a
    newline whose coordinate is set positive, so coherence is always high."""
    import torch
    import transformers as tf

    tok = qwen2_tokenizer()
    tok.add_tokens(list(JUDGE_SCORES))
    tok.chat_template = JUDGE_TEMPLATE
    config = tf.Qwen2Config(vocab_size=len(tok), pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                            bos_token_id=None, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                            tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = tf.AutoModelForCausalLM.from_config(config)
    low, high = (tok.convert_tokens_to_ids(t) for t in JUDGE_SCORES)
    newline = tok.encode("\n")
    assert len(newline) == 1, newline
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed = model.model.embed_tokens.weight
        embed.normal_(0, 1)
        embed[:, 0] = 3.0
        embed[newline[0], 1] = 3.0
        head = model.lm_head.weight
        head.zero_()
        head[low, :2] = torch.tensor([5.0, -5.0])
        head[high, :2] = torch.tensor([5.0, 5.0])
    path = Path(path)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
