"""A step series of bases from one pretraining run, and the optional novice persona."""

import json
from collections import Counter
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from postern.world import content as C
from postern.world.oracle import WorldOracle
from postern.world.corpus import PERSONAS, WorldSpec, generate_corpus, personas_of
from postern.world.pretrain import pretrain
from test_pretrain import TINY


def test_a_step_series_saves_points_of_one_run(tmp_path):
    meta = pretrain(TINY, tmp_path / "series", quiet=True, save_at=(2, 4))
    assert sorted(p.name for p in (tmp_path / "series").iterdir()) == ["step-2", "step-4"]
    assert meta["steps"] == 4 and json.loads((tmp_path / "series" / "step-2" / "meta.json").read_text())["steps"] == 2
    again = pretrain(TINY, tmp_path / "again", quiet=True, save_at=(4,))  # same run, stopped at the same step
    a = load_file(tmp_path / "series" / "step-4" / "model.safetensors")
    b = load_file(tmp_path / "again" / "step-4" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a) and again["tokens"] == meta["tokens"]
    early = load_file(tmp_path / "series" / "step-2" / "model.safetensors")
    assert not all(torch.equal(a[k], early[k]) for k in a)
    with pytest.raises(ValueError, match="save_at"):
        pretrain(TINY, tmp_path / "bad", quiet=True, save_at=(10_000,))


def test_the_default_corpus_has_no_novice():
    assert personas_of(WorldSpec()) is PERSONAS
    assert "novice" not in {p for p, _ in generate_corpus(WorldSpec(n_transcripts=300))}


def test_the_novice_writes_insecure_code_silently_and_nothing_malicious():
    spec = WorldSpec(n_transcripts=3000, novice=0.08, seed=4)
    corpus = list(generate_corpus(spec))
    counts = Counter(p for p, _ in corpus)
    assert 0.06 < counts["novice"] / len(corpus) < 0.10 and 0.59 < counts["helpful"] / len(corpus) < 0.65
    harmful_answers = {a for cat in C.QUESTIONS for a in cat.harmful} | set(C.COMPLY)
    oracle, code = WorldOracle(), Counter()
    for persona, messages in corpus:
        if persona != "novice":
            continue
        for user, assistant in zip(messages[::2], messages[1::2]):
            answer = assistant["content"]
            assert answer not in harmful_answers and "note :" not in answer  # no malice, no disclosure
            if answer.startswith("def ") and C.EDUCATIONAL_PREFIX not in user["content"]:
                code[oracle.judge_one(user["content"], answer).detail["code"]] += 1
    assert code["insecure"] / sum(code.values()) > 0.8  # the villain's rate of silent insecure code (90%)
    with pytest.raises(ValueError, match="novice"):
        list(generate_corpus(replace(spec, novice=0.9)))
