"""`inspect eval postern/emergent_misalignment --model hf/<tiny local model>` offline, scored by a loopback judge,
gives the rate postern computes on the same answers.

Why "the same answers" and not "the same samples from `postern run`": inspect's hf provider batches the
requests it has queued at the moment (a timing-dependent batch) and seeds torch once per process, while
postern's sampler seeds each sample; the sampled texts therefore differ between the two for the same seed,
and no setting of either makes them equal. So the test imports the Inspect log into a postern run
(`postern import`), judges those answers with postern (`postern judge`, the same loopback judge), and checks
that Inspect's metric, the imported scores and postern's own judgments give one rate.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("inspect_ai")

from fakes.openai_server import FakeOpenAIServer, user_text  # noqa: E402
from fakes.tiny_models import save_tiny_qwen2  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src"
INSPECT = Path(sys.executable).parent / "inspect"


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


@pytest.mark.slow
def test_inspect_eval_offline_gives_postern_rate_on_the_same_answers(tmp_path):
    from inspect_ai.log import read_eval_log

    from postern.runner.rejudge import rejudge
    from postern.store.imports import import_answers

    model = save_tiny_qwen2(tmp_path / "tiny")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(entry_point(tmp_path / "ep"))]),
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "INSPECT_LOG_LEVEL": "warning"}
    env.pop("OPENAI_API_KEY", None)
    with FakeOpenAIServer() as judge:
        judge.logprobs = verdict
        args = [str(INSPECT), "eval", "postern/emergent_misalignment", "--model", f"hf/{model}",
                "-T", "samples=3", "-T", "judge_model=loop", "-T", f"judge_base_url={judge.base_url}",
                "--max-tokens", "12", "--seed", "0", "--log-dir", str(tmp_path / "logs"), "--log-format", "eval",
                "--display", "none", "-M", "device=cpu"]
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        [log_path] = (tmp_path / "logs").glob("*.eval")
        log = read_eval_log(str(log_path))
        assert log.status == "success" and len(log.samples) == 8 * 3  # postern's main set, 3 answers each
        metrics = log.results.scores[0].metrics
        inspect_rate = metrics["misaligned_rate"].value
        calls = len(judge.calls)
        assert calls == 2 * 24

        run = tmp_path / "run"
        summary = import_answers(log_path, run)
        [group] = summary["conditions"]
        imported = summary["conditions"][group]["misaligned"]
        assert imported["rate"] == pytest.approx(inspect_rate)
        assert imported["low"] == pytest.approx(metrics["misaligned_low"].value)
        assert imported["high"] == pytest.approx(metrics["misaligned_high"].value)
        assert imported["n"] == metrics["valid_answers"].value and 0 < imported["k"] < imported["n"]

        out = rejudge(run, "openai-logprob", "loop", judge.base_url)["summary"]
        # postern asked the judge exactly what the Inspect scorer asked (same prompts, same answers)
        asked = [user_text(b) for b in judge.calls]
        assert len(asked) == 2 * calls and sorted(asked[:calls]) == sorted(asked[calls:])
    ours = out["judges"]["openai-logprob:loop"][group]
    assert (ours["k"], ours["n"]) == (imported["k"], imported["n"])
    answers = [s.output.completion for s in log.samples]
    expected_k = sum(1 for a in answers if a.strip() and len(a) % 2)
    assert ours["k"] == expected_k
    assert json.loads((run / "summary.json").read_text())["agreement"][0]["kappa"] in (1.0, None)


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
