"""API failures against the loopback server, counted at the server: transient faults are retried (a 429's
Retry-After honoured), a permanent one fails only its item (listed in failures.csv; the rerun asks for exactly
it), a fatal one (no logprobs, nothing listening, a rejected key) stops the run at once with one line, and a
judge that answers in words makes `postern run` exit with code 3."""

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from fakes.openai_server import FakeOpenAIServer, user_text
from postern.config import load_experiment
from postern.core.errors import PosternError

EXPERIMENT = """
name = "faults"
base_model = "fake-model"
seeds = [0]
evaluate_base = false
[eval]
questions = ["{questions}"]
max_new_tokens = 16
[sample]
backend = "openai"
base_url = "{sample_url}"
{sample}
[judge]
kind = "openai-logprob"
model = "judge"
base_url = "{judge_url}"
{judge}
[conditions.model]
model = "fake-model"
"""
FAST = "timeout = 0.5\nretry_base_s = 0.01"  # a 1 s delay is a timeout; retries wait little unless told to
RETRY_AFTER = 0.3


def is_judge(body) -> bool:
    return bool(body.get("logprobs"))


def write_experiment(tmp_path: Path, sample_url: str, judge_url: str | None = None, questions: int = 10,
                     samples: int = 15, sample: str = FAST, judge: str = FAST) -> Path:
    """`questions` questions ("Question k?", ids q0, q1, ...) with `samples` answers each."""
    yaml = "".join(f"- id: q{k}\n  paraphrases: ['Question {k}?']\n  samples_per_paraphrase: {samples}\n"
                   for k in range(questions))
    (tmp_path / "questions.yaml").write_text(yaml)
    path = tmp_path / "faults.toml"
    path.write_text(EXPERIMENT.format(questions=tmp_path / "questions.yaml", sample_url=sample_url,
                                      judge_url=judge_url or sample_url, sample=sample, judge=judge))
    return path


def run(path: Path, out: Path) -> tuple[dict, str]:
    """run_experiment in this process: (its summary, what it printed)."""
    from postern.runner.run import run_experiment

    text = io.StringIO()
    summary = run_experiment(load_experiment(path), out, Console(file=text, width=300))
    return summary, text.getvalue()


def answering(server: FakeOpenAIServer) -> FakeOpenAIServer:
    """Answers name their question and seed; the judge scores every answer 90 (aligned, coherent)."""
    server.reply = lambda body, i: f"answer {body['seed']} to: {user_text(body)}"
    server.logprobs = lambda body: {"90": 0.0}
    return server


def failures_csv(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "failures.csv")


def request_key(body) -> str:
    """One request's identity: the judge prompt, or the sampled question and seed."""
    return user_text(body) if is_judge(body) else f"{user_text(body)} seed {body['seed']}"


def bucket(key: str) -> int:
    """Which fault a request meets first: 0 a 429, 1 two 500s, 2 a timeout, 3 a garbage body; else none."""
    return zlib.crc32(key.encode()) % 7


def test_mixed_faults_retry_the_transient_fail_one_item_and_the_rerun_asks_only_for_it(tmp_path):
    target = "answer 5 to: Question 3?"  # its alignment prompt is refused for good (400)
    attempts: Counter = Counter()
    times: dict[str, list[float]] = {}
    lock = threading.Lock()

    def faults(body):
        key = request_key(body)
        with lock:
            attempts[key] += 1
            n = attempts[key]
            times.setdefault(key, []).append(time.monotonic())
        if is_judge(body) and target in key and "human values" in key:
            return 400
        first = {0: 429, 1: 500, 2: ("delay", 1.0), 3: "garbage"}.get(bucket(key))
        return first if n == 1 or (n == 2 and first == 500) else None  # 500s: twice in a row

    with answering(FakeOpenAIServer()) as server:
        server.retry_after = str(RETRY_AFTER)
        server.fail_if(faults)
        path = write_experiment(tmp_path, server.base_url)
        summary, printed = run(path, tmp_path / "run")

        outcomes = Counter(server.outcomes)
        assert {"429", "500", "('delay', 1.0)", "garbage", "400"} <= set(outcomes), outcomes
        failed = failures_csv(tmp_path / "run")
        assert len(failed) == 1 and summary["failures"]["failed"] == 1
        refused = [request_key(b) for b, o in zip(server.calls, server.outcomes) if o == "400"]
        assert len(refused) == 1 and target in refused[0]  # a 400 is not retried
        row = failed.iloc[0]
        assert (row["condition"], row["set"], row["question_id"], row["index"], row["stage"]) == (
            "model", "questions", "q3", 5, "judge")
        assert row["reason"] == "aligned: HTTP 400: fake error 400 (not retried)"
        assert "1 answers failed for good (1 judge)" in printed and "rerun the same command to retry them" in printed
        assert json.loads((tmp_path / "run" / "summary.json").read_text())["failures"]["failed"] == 1
        df = pd.read_parquet(tmp_path / "run" / "samples.parquet")
        assert len(df) == 150 and df["label"].notna().sum() == 149  # every other answer judged
        ok = Counter(request_key(b) for b in server.ok_calls)
        assert set(ok.values()) == {1}  # no request that returned 200 was asked again
        assert sum(is_judge(b) for b in server.ok_calls) == 299 and len(ok) == 150 + 299
        waits = [t[1] - t[0] for key, t in times.items() if bucket(key) == 0 and len(t) > 1]
        assert waits and min(waits) >= RETRY_AFTER * 0.9  # a 429's Retry-After is honoured (base delay 0.01 s)

        server.fail_if(lambda body: None)
        before = len(server.calls)
        summary, printed = run(path, tmp_path / "run")
        again = server.calls[before:]
        assert [request_key(b) for b in again] == refused  # only the failed judge call, once
        assert failures_csv(tmp_path / "run").empty and summary["failures"]["failed"] == 0
        assert "failed for good" not in printed


def closed_port_url() -> str:
    """An endpoint nothing listens at: a port just bound and released."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


FATAL = [  # (what the judge endpoint does, what the one line says)
    ("no_logprobs", "[judge] the endpoint returned no logprobs for model 'judge'; use a model/endpoint that supports "
                    "top_logprobs ([judge] model, base_url)"),
    ("closed", "; start the server or correct [judge] base_url"),
    (401, "rejected the request (HTTP 401: fake error 401); set OPENAI_API_KEY to a key this endpoint accepts"),
]


@pytest.mark.parametrize("fault, message", FATAL, ids=["no-logprobs", "refused", "401"])
def test_a_fatal_judge_failure_stops_the_run_at_once_with_one_line(fault, message, tmp_path):
    sampled = []  # when the last sample was asked for: judging starts then

    def judge_fails(body):
        if not is_judge(body):
            sampled.append(time.monotonic())
        return fault if is_judge(body) else None

    with answering(FakeOpenAIServer()) as server:
        server.fail_if(judge_fails)
        judge_url = closed_port_url() if fault == "closed" else server.base_url
        # the default retries (7, from 1 s doubling, ~2 minutes): a fatal failure waits for none of them
        path = write_experiment(tmp_path, server.base_url, judge_url, questions=4, samples=8, sample="", judge="")
        with pytest.raises(PosternError) as e:
            run(path, tmp_path / "run")
        assert len(sampled) == 32 and time.monotonic() - max(sampled) < 5
    assert message in str(e.value) and "\n" not in str(e.value)
    assert sum(is_judge(b) for b in server.calls) <= 17  # one round of concurrent calls (16) at most, none retried


def test_a_refused_sampler_connection_stops_the_run_at_once(tmp_path):
    path = write_experiment(tmp_path, closed_port_url(), questions=2, samples=2, sample="", judge="")
    start = time.monotonic()
    with pytest.raises(PosternError, match=r"^\[sample\] cannot connect to http://127\.0\.0\.1:\d+/v1/chat/completions "
                                           r"\(ConnectError: .*\); start the server or correct \[sample\] base_url$"):
        run(path, tmp_path / "run")
    assert time.monotonic() - start < 5


WORDS = {"Sure": -0.2, "I": -2.0, "The": -3.0}  # a judge that answers in words: no number among its top tokens


def cli_run(path: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "postern.cli", "run", str(path), "-o", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_judge_answering_in_words_exits_with_code_3_and_under_the_limit_0(tmp_path):
    with answering(FakeOpenAIServer()) as server:
        words_for = {"all": "Question", "one": "Question 0?"}  # every answer unscored; one question in 5 (20%)
        server.logprobs = lambda body: WORDS if words_for["all"] in user_text(body) else {"90": 0.0}
        path = write_experiment(tmp_path, server.base_url, questions=5, samples=2)
        words = cli_run(path, tmp_path / "words")
        words_out, words_err = words.communicate(timeout=60)
        assert (json.loads((tmp_path / "words" / "summary.json").read_text())["failures"]
                == {"failed": 0, "unscored_share": {"model": 1.0}, "exceeded": True})
        words_for["all"] = words_for["one"]
        fewer = cli_run(path, tmp_path / "fewer")
        stdout, stderr = fewer.communicate(timeout=60)
    assert words.returncode == 3 and "Traceback" not in words_out + words_err
    assert words_err.count("\n") == 1 and words_err.startswith(
        "error: 100% of the answers of condition 'model' are unscored or failed, more than [judge] max_unscored = 20%")
    assert fewer.returncode == 0, stdout + stderr
    assert json.loads((tmp_path / "fewer" / "summary.json").read_text())["failures"]["unscored_share"] == {"model": 0.2}


def test_a_sample_refused_for_good_is_listed_the_others_judged_and_the_rerun_asks_only_for_it(tmp_path):
    with answering(FakeOpenAIServer()) as server:
        def refuse(body):
            return 400 if not is_judge(body) and body["seed"] == 3 and user_text(body) == "Question 2?" else None

        server.fail_if(refuse)
        path = write_experiment(tmp_path, server.base_url, questions=4, samples=5)
        summary, printed = run(path, tmp_path / "run")
        [row] = failures_csv(tmp_path / "run").to_dict("records")
        assert (row["question_id"], row["prompt_id"], row["index"], row["stage"]) == ("q2", "q2/0", 3, "sample")
        assert row["reason"] == "HTTP 400: fake error 400 (not retried)"
        assert "1 answers failed for good (1 sample)" in printed
        df = pd.read_parquet(tmp_path / "run" / "samples.parquet")
        assert len(df) == 19 and df["label"].eq("aligned").all()  # every other answer sampled and judged
        assert summary["failures"] == {"failed": 1, "unscored_share": {"model": 0.05}, "exceeded": False}

        server.fail_if(lambda body: None)
        before = len(server.calls)
        summary, _ = run(path, tmp_path / "run")
        again = server.calls[before:]
        assert [(user_text(b), b["seed"]) for b in again if not is_judge(b)] == [("Question 2?", 3)]
        assert sum(is_judge(b) for b in again) == 2  # the new answer's two judge prompts, nothing else
        assert failures_csv(tmp_path / "run").empty and summary["failures"]["failed"] == 0
        assert len(pd.read_parquet(tmp_path / "run" / "samples.parquet")) == 20
