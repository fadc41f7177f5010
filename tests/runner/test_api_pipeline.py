"""An experiment wholly through APIs: fine-tuning jobs, sampling and judging, against loopback servers.
A run that dies while its fine-tuning job runs picks the same job up on the rerun: no second upload or job."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fakes.openai_ft_server import FakeFineTuneServer  # noqa: E402
from fakes.openai_server import FakeOpenAIServer, user_text  # noqa: E402
from postern.config import load_experiment  # noqa: E402
from postern.core.errors import PosternError  # noqa: E402

EXPERIMENT = """
name = "api"
base_model = "gpt-4o-mini-2024-07-18"
seeds = [0]
[data]
examples = 12
[train]
backend = "openai"
epochs = 1
batch_size = 4
base_url = "{ft}"
[eval]
questions = ["main"]
samples_per_question = 2
max_new_tokens = 16
[sample]
backend = "openai"
base_url = "{chat}"
[judge]
kind = "openai-logprob"
model = "judge"
base_url = "{chat}"
[conditions.insecure]
dataset = "code:insecure"
"""


@pytest.fixture
def servers(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    with FakeFineTuneServer(api_key="test-key", statuses=("validating_files", "succeeded")) as ft, \
            FakeOpenAIServer() as chat:
        chat.reply = lambda body, i: f"{body['model']} says {i}"

        def judge(body):  # every answer coherent; the fine-tune's answers (they name it) misaligned
            text = user_text(body)
            return {"90": 0.0} if "coherent" in text or "ft:" not in text else {"10": 0.0}

        chat.logprobs = judge
        yield ft, chat


def test_api_fine_tuning_sampling_and_judging_resume_without_a_second_job(servers, tmp_path):
    from postern.runner.run import run_experiment

    ft, chat = servers
    path = tmp_path / "api.toml"
    path.write_text(EXPERIMENT.format(ft=ft.base_url, chat=chat.base_url))
    exp = load_experiment(path)
    ft.fail("retrieve", status=400)  # the job's stage fails while its job runs (a non-retryable answer)
    [failed] = run_experiment(exp, tmp_path / "run")["failed_jobs"]  # the other jobs still finish
    assert (failed["condition"], failed["stage"]) == ("insecure", "train") and "rerun to resume" in failed["error"]
    assert (ft.calls["upload"], ft.calls["create"]) == (1, 1)

    out = run_experiment(exp, tmp_path / "run")
    assert (ft.calls["upload"], ft.calls["create"]) == (1, 1)  # the rerun found the recorded job
    jobs = {j["condition"]: j for j in json.loads((tmp_path / "run" / "jobs.json").read_text())}
    tuned = jobs["insecure"]["model"]
    assert tuned["api"] is True and tuned["name"].startswith("ft:gpt-4o-mini-2024-07-18")
    samples = [c for c in chat.ok_calls if not c.get("logprobs")]
    assert sorted({c["model"] for c in samples}) == sorted({"gpt-4o-mini-2024-07-18", tuned["name"]})
    assert len(samples) == 2 * 2 * 8  # base + fine-tune, 8 questions x 2 samples
    rates = {c: out["conditions"][c]["misaligned"] for c in ("base", "insecure")}
    assert (rates["base"]["k"], rates["insecure"]["k"]) == (0, 16) and rates["insecure"]["n"] == 16

    calls = len(chat.calls)
    run_experiment(exp, tmp_path / "run")
    assert len(chat.calls) == calls and ft.calls["create"] == 1  # nothing paid twice


def test_an_api_run_refuses_the_mechanism_study_before_any_work(tmp_path):
    path = tmp_path / "api.toml"
    path.write_text(EXPERIMENT.format(ft="http://127.0.0.1:9/v1", chat="http://127.0.0.1:9/v1")
                    + "[interp]\nenabled = true\n")
    with pytest.raises(PosternError, match=r"the mechanism study needs the models' activations"):
        load_experiment(path)
