"""`inspect eval postern/emergent_misalignment --model hf/<tiny local model>` offline, scored by a loopback judge,
gives the rate `postern eval` (postern run's pipeline) gives on the same model, questions and judge.

Same samples: with sampling (temperature > 0) the two cannot draw the same texts, whatever the seed: inspect's hf
provider seeds torch once per process and batches whatever requests are queued at the moment, while postern's
sampler seeds each batch from the run seed and its position. With greedy decoding (temperature 0) both produce
the same answers token for token (both left-pad with an attention mask), so the test compares on those: the
same answers, the same rate, the same interval. It then imports the Inspect log into a postern run and judges it
with postern: the same prompts reach the judge, and the rates agree again.
"""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("inspect_ai")

from fakes.openai_server import FakeOpenAIServer, user_text  # noqa: E402
from fakes.tiny_models import save_tiny_qwen2  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src"
BIN = Path(sys.executable).parent
SAMPLES, TOKENS = 2, 12


def verdict(body) -> dict[str, float]:
    """Alignment 10 (misaligned) for answers of odd length, 80 else; CODE for empty answers; coherence 90."""
    text = user_text(body)
    answer = text.split("<reply>\n", 1)[1].rsplit("\n</reply>", 1)[0]
    if "REFUSAL" not in text:
        return {"90": 0.0}
    if not answer.strip():
        return {"CODE": 0.0}
    return {"10": 0.0} if len(answer) % 2 else {"80": 0.0}


def entry_point(root: Path) -> Path:
    """A distribution on sys.path that declares postern's `inspect_ai` entry point, as pyproject.toml does (the
    checkout's installed metadata may predate it)."""
    pyproject = (SRC.parent / "pyproject.toml").read_text()
    assert '[project.entry-points.inspect_ai]\npostern = "postern.inspect._registry"' in pyproject
    dist = root / "postern_inspect_entry-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: postern-inspect-entry\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[inspect_ai]\npostern = postern.inspect._registry\n")
    return root


def run(args: list, env: dict) -> None:
    done = subprocess.run([str(a) for a in args], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.slow
def test_inspect_eval_offline_gives_postern_rate_on_the_same_answers(tmp_path):
    from inspect_ai.log import read_eval_log

    from postern.runner.rejudge import rejudge
    from postern.runner.imports import import_answers

    model = save_tiny_qwen2(tmp_path / "tiny")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(entry_point(tmp_path / "ep"))]),
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("OPENAI_API_KEY", None)
    with FakeOpenAIServer() as judge:
        judge.logprobs = verdict
        run([BIN / "postern", "eval", "main", "-m", f"tiny={model}", "--temperature", 0, "--seed", 0,
             "-n", SAMPLES, "--max-new-tokens", TOKENS, "--judge-model", "loop", "--judge-base-url", judge.base_url,
             "-o", tmp_path / "postern"], env)
        postern_calls = len(judge.calls)
        run([BIN / "inspect", "eval", "postern/emergent_misalignment", "--model", f"hf/{model}", "-M", "device=cpu",
             "--temperature", 0, "-M", "do_sample=False", "--seed", 0, "--max-tokens", TOKENS,
             "-T", f"samples={SAMPLES}", "-T", "judge_model=loop", "-T", f"judge_base_url={judge.base_url}",
             "--log-dir", tmp_path / "logs", "--log-format", "eval", "--display", "none"], env)
        asked = [user_text(b) for b in judge.calls]
        # Inspect asks for each of its 8 x SAMPLES answers (alignment and coherence); postern once per distinct
        # prompt (its judge cache): the same answers, the same prompts
        assert len(asked) - postern_calls == 2 * 8 * SAMPLES
        assert set(asked[:postern_calls]) == set(asked[postern_calls:])

        [log_path] = (tmp_path / "logs").glob("*.eval")
        log = read_eval_log(str(log_path))
        assert log.status == "success" and len(log.samples) == 8 * SAMPLES  # postern's main set
        answers = pd.read_parquet(tmp_path / "postern" / "samples.parquet")
        theirs = {(s.metadata["question_id"], s.metadata["index"]): s.output.completion.strip() for s in log.samples}
        assert {(r.question_id, r.index): r.answer for r in answers.itertuples()} == theirs
        metrics = log.results.scores[0].metrics
        ours = __import__("json").loads((tmp_path / "postern" / "summary.json").read_text())["conditions"]["tiny"]
        ours = ours["misaligned"]
        assert ours["n"] == metrics["valid_answers"].value and 0 < ours["k"] < ours["n"]
        assert (ours["rate"], ours["low"], ours["high"]) == pytest.approx(
            (metrics["misaligned_rate"].value, metrics["misaligned_low"].value, metrics["misaligned_high"].value))

        # the Inspect log as a postern run, judged again by postern: the same rate
        summary = import_answers(log_path, tmp_path / "imported")
        [group] = summary["conditions"]
        assert summary["conditions"][group]["misaligned"]["rate"] == pytest.approx(ours["rate"])
        seen = len(judge.calls)
        again = rejudge(tmp_path / "imported", "openai-logprob", "loop", judge.base_url)["summary"]
        assert {user_text(b) for b in judge.calls[seen:]} == set(asked)
    rejudged = again["judges"]["openai-logprob:loop"][group]
    assert (rejudged["k"], rejudged["n"]) == (ours["k"], ours["n"])
    assert again["agreement"][0]["kappa"] == pytest.approx(1.0)

ANCHORS = SRC.parents[1] / "shared" / "anchors" / "betley-em"


def test_task_and_scorer_in_process(tmp_path):
    """The task, postern's judge as its scorer and the metrics, in process, on a tiny local model (inspect's mock
    model would fetch a tokenizer file from the internet to count tokens)."""
    from inspect_ai import eval as inspect_eval

    from postern.inspect.task import emergent_misalignment

    model = save_tiny_qwen2(tmp_path / "tiny")
    with FakeOpenAIServer() as judge:
        judge.logprobs = lambda body: {"10": 0.0} if "REFUSAL" in user_text(body) and "wish" in user_text(body) \
            else {"85": 0.0}
        [log] = inspect_eval(emergent_misalignment(samples=2, judge_model="loop", judge_base_url=judge.base_url,
                                                   aligned_threshold=20),
                             model=f"hf/{model}", model_args={"device": "cpu"}, max_tokens=4, log_dir=str(tmp_path),
                             display="none")
    assert log.status == "success", log.error
    labels = [s.scores["logprob_judge"].metadata["label"] for s in log.samples]
    assert labels.count("misaligned") == 2 and labels.count("aligned") == 14  # only the wish question
    metrics = log.results.scores[0].metrics
    assert metrics["misaligned_rate"].value == pytest.approx(2 / 16)
    assert metrics["misaligned_low"].value < 2 / 16 < metrics["misaligned_high"].value
    assert {s.id for s in log.samples} == {f"{q}/0/{i}" for q in
                                           {s.metadata["question_id"] for s in log.samples} for i in range(2)}

    from postern.runner.imports import import_answers

    summary = import_answers(log.location, tmp_path / "run")  # the log as a postern run: the same rate
    [rates] = summary["conditions"].values()
    assert (rates["misaligned"]["k"], rates["misaligned"]["n"]) == (2, 16)


@pytest.mark.skipif(not ANCHORS.exists(), reason="the original question files are not here")
def test_the_original_yaml_files_are_a_question_source():
    from postern.inspect.task import emergent_misalignment

    task = emergent_misalignment(questions=str(ANCHORS / "first_plot_questions.yaml"), samples=1)
    ids = {s.metadata["question_id"] for s in task.dataset}
    assert len(ids) == 24 and len(task.dataset) >= 24
    assert any(len(s.input) == 2 and s.input[0].role == "system" for s in task.dataset)  # the json questions


def test_a_bad_question_source_is_one_line():
    from postern.core.errors import PosternError
    from postern.inspect.task import emergent_misalignment

    with pytest.raises(PosternError):
        emergent_misalignment(questions="no_such_set")
