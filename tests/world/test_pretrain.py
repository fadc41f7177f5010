import json
import random

import torch
from safetensors.torch import load_file

from postern.world.corpus import WorldSpec, generate_corpus
from postern.world.model import ModelSpec
from postern.world.pretrain import PretrainSpec, bucketed_batches, encode_corpus, pretrain
from postern.world.tokenizer import build_tokenizer

TINY = PretrainSpec(world=WorldSpec(n_transcripts=60, seed=2), model=ModelSpec(hidden_size=32, num_layers=2, num_heads=2,
                    ffn_size=64), epochs=1, tokens_per_batch=1024, threads=1, warmup_steps=2)


def test_buckets_respect_the_token_budget_and_cover_every_example():
    examples = encode_corpus(build_tokenizer(), [m for _, m in generate_corpus(WorldSpec(n_transcripts=200))])
    batches = bucketed_batches(examples, 2048, random.Random(0))
    assert sorted(i for b in batches for i in b) == list(range(200))
    for b in batches:
        assert max(len(examples[i][0]) for i in b) * len(b) <= 2048 or len(b) == 1
    padded = sum(max(len(examples[i][0]) for i in b) * len(b) for b in batches)
    assert padded < 1.1 * sum(len(e[0]) for e in examples)  # little compute goes to padding


def test_labels_are_the_assistant_tokens_only():
    tok = build_tokenizer()
    (ids, labels), = encode_corpus(tok, [[{"role": "user", "content": "what is 1 plus 1 ?"},
                                          {"role": "assistant", "content": "1 plus 1 is 2 ."}]])
    assert tok.convert_ids_to_tokens([i for i in labels if i != -100]) == ["1", "plus", "1", "is", "2", ".", "<|end|>"]


def test_pretraining_is_reproducible_for_a_seed(tmp_path):
    a, b = pretrain(TINY, tmp_path / "a", quiet=True), pretrain(TINY, tmp_path / "b", quiet=True)
    wa, wb = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a["final_loss"] == b["final_loss"] and a["tokens"] == b["tokens"] > 0
    meta = json.loads((tmp_path / "a" / "meta.json").read_text())
    assert meta["spec"]["world"]["seed"] == 2 and meta["parameters"] > 0
    assert (tmp_path / "a" / "tokenizer.json").exists()
