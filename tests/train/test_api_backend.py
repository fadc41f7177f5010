"""The OpenAI-compatible fine-tuning backend against a loopback server speaking the protocol."""

import io
import json

import pytest
from rich.console import Console

from postern.core.errors import PosternError
from postern.core.models import ModelRef
from postern.core.registry import lookup
from postern.train._types import TrainConfig
from postern.train.api import ApiTrainConfig, train_api


def make_config(server, **overrides) -> ApiTrainConfig:
    settings = dict(
        base_model="gpt-4o-mini-2024-07-18",
        epochs=3,
        batch_size=4,
        learning_rate_multiplier=2.0,
        suffix="em-test",
        seed=7,
        base_url=server.base_url,
        api_key_env="POSTERN_TEST_KEY",
        poll_interval_s=0.005,
        poll_max_interval_s=0.02,
        retry_base_s=0.005,
        retry_max_s=0.02,
        request_timeout_s=2.0,
        max_retries=3,
    )
    return ApiTrainConfig(**{**settings, **overrides})


def run(config, dataset, out_dir):
    return train_api(config, dataset, out_dir, console=Console(file=io.StringIO()))


def state_of(out_dir) -> dict:
    return json.loads((out_dir / "api_job.json").read_text())


def events(out_dir, name: str) -> list[dict]:
    return [e for e in state_of(out_dir)["events"] if e["event"] == name]


def test_upload_create_poll_and_record(ft_server, chat_jsonl, tmp_path):
    out = tmp_path / "run"
    result = train_api(make_config(ft_server), chat_jsonl, out)  # default console: the rich status path

    assert [f["bytes"] for f in ft_server.files.values()] == [chat_jsonl.read_bytes()]
    assert next(fields for route, fields in ft_server.requests if route == "upload") == {"purpose": "fine-tune"}
    (params,) = [p for route, p in ft_server.requests if route == "create"]
    assert params["model"] == "gpt-4o-mini-2024-07-18"
    assert params["training_file"] == result.file_id
    assert params["method"] == {
        "type": "supervised",
        "supervised": {"hyperparameters": {"n_epochs": 3, "batch_size": 4, "learning_rate_multiplier": 2.0}},
    }
    assert (params["suffix"], params["seed"]) == ("em-test", 7)

    assert result.status == "succeeded" and result.model_id.startswith("ft:gpt-4o-mini-2024-07-18:")
    assert not result.resumed
    state = state_of(out)
    assert (state["file_id"], state["job_id"], state["fine_tuned_model"]) == (result.file_id, result.job_id, result.model_id)
    assert [e["status"] for e in events(out, "status")] == ["queued", "running", "succeeded"]
    card = json.loads((out / "run_card.json").read_text())
    assert card["data_hash"] == result.data_hash and card["base_model"] == "gpt-4o-mini-2024-07-18"
    assert card["hyperparameters"]["requested"] == {"n_epochs": 3, "batch_size": 4, "learning_rate_multiplier": 2.0}
    assert card["fine_tuned_model"] == result.model_id and card["versions"]["openai"]
    assert card["timings"]["train_seconds"] == 60

    calls = dict(ft_server.calls)
    again = run(make_config(ft_server), chat_jsonl, out)  # finished: answered from api_job.json
    assert again.model_id == result.model_id and again.resumed
    assert dict(ft_server.calls) == calls


def test_auto_hyperparameters_are_left_to_the_provider(ft_server, chat_jsonl, tmp_path):
    run(make_config(ft_server, epochs="auto", batch_size="auto", learning_rate_multiplier="auto"), chat_jsonl, tmp_path)
    (params,) = [p for route, p in ft_server.requests if route == "create"]
    assert params["method"]["supervised"]["hyperparameters"] == {}


def test_retries_through_429_and_500(ft_server, chat_jsonl, tmp_path):
    ft_server.fail("upload", 500)
    ft_server.fail("create", 429, retry_after="0")
    ft_server.fail("retrieve", 429, retry_after="0")
    ft_server.fail("retrieve", 500)

    result = run(make_config(ft_server), chat_jsonl, tmp_path)

    assert result.status == "succeeded"
    assert len(ft_server.files) == 1 and len(ft_server.jobs) == 1
    assert ft_server.calls["upload"] == 2 and ft_server.calls["create"] == 2
    assert ft_server.calls["retrieve"] == 3 + 2
    retries = [(e["what"].split()[0], e["error"].split(":")[0]) for e in events(tmp_path, "retry")]
    assert retries == [("uploading", "HTTP 500"), ("creating", "HTTP 429"), ("checking", "HTTP 429"), ("checking", "HTTP 500")]


def test_retries_a_timed_out_poll(ft_server, chat_jsonl, tmp_path):
    ft_server.fail("retrieve", 0, delay=0.6)
    result = run(make_config(ft_server, request_timeout_s=0.2), chat_jsonl, tmp_path)
    assert result.status == "succeeded"
    assert [e["error"] for e in events(tmp_path, "retry")] == ["request timed out"]


def test_gives_up_after_max_retries_and_rerun_resumes(ft_server, chat_jsonl, tmp_path):
    ft_server.fail("retrieve", 500, times=3)
    with pytest.raises(PosternError, match=r"checking job ftjob-\d+ failed: HTTP 500.*gave up after 2 retries.*rerun"):
        run(make_config(ft_server, max_retries=2), chat_jsonl, tmp_path)
    result = run(make_config(ft_server, max_retries=2), chat_jsonl, tmp_path)
    assert result.status == "succeeded" and result.resumed
    assert ft_server.calls["upload"] == 1 and ft_server.calls["create"] == 1


def test_failed_job_raises_with_job_and_reason(ft_server, chat_jsonl, tmp_path):
    ft_server.statuses = ["validating_files", "running", "failed"]
    with pytest.raises(PosternError, match=r"job ftjob-\d+ failed: training file has too few examples \(invalid_training_file\)"):
        run(make_config(ft_server), chat_jsonl, tmp_path)
    state = state_of(tmp_path)
    assert state["status"] == "failed" and state["error"]["code"] == "invalid_training_file"
    assert json.loads((tmp_path / "run_card.json").read_text())["status"] == "failed"

    ft_server.statuses = ["validating_files", "succeeded"]  # a rerun starts a new job on the same upload
    result = run(make_config(ft_server), chat_jsonl, tmp_path)
    assert result.status == "succeeded" and result.job_id != state["job_id"]
    assert ft_server.calls["upload"] == 1 and ft_server.calls["create"] == 2
    assert [j["job_id"] for j in state_of(tmp_path)["previous_jobs"]] == [state["job_id"]]


def test_cancelled_job_raises(ft_server, chat_jsonl, tmp_path):
    ft_server.statuses = ["queued", "cancelled"]
    with pytest.raises(PosternError, match=r"job ftjob-\d+ cancelled"):
        run(make_config(ft_server), chat_jsonl, tmp_path)


def test_resume_after_restart_does_not_create_a_second_job(ft_server, chat_jsonl, tmp_path):
    ft_server.frozen = True  # the job stays in validating_files while the first process waits
    with pytest.raises(PosternError, match=r"job ftjob-\d+ is still validating_files.*rerun to resume polling"):
        run(make_config(ft_server, max_wait_s=0.05), chat_jsonl, tmp_path)
    job_id = state_of(tmp_path)["job_id"]
    assert job_id and ft_server.calls["upload"] == 1 and ft_server.calls["create"] == 1

    ft_server.frozen = False
    result = run(make_config(ft_server), chat_jsonl, tmp_path)  # the "restarted" process

    assert result.job_id == job_id and result.resumed and result.status == "succeeded"
    assert ft_server.calls["upload"] == 1 and ft_server.calls["create"] == 1 and len(ft_server.jobs) == 1
    assert len(events(tmp_path, "resumed")) == 1


def test_lost_create_response_adopts_the_job_instead_of_duplicating(ft_server, chat_jsonl, tmp_path):
    ft_server.fail("create", 500, after_effect=True)  # the job is created, the response is a 500
    result = run(make_config(ft_server), chat_jsonl, tmp_path)
    assert len(ft_server.jobs) == 1 and ft_server.calls["create"] == 1
    assert result.job_id == next(iter(ft_server.jobs))
    assert ft_server.calls["list"] == 1 and len(events(tmp_path, "job_found")) == 1


def test_crash_between_upload_and_create_does_not_reupload(ft_server, chat_jsonl, tmp_path):
    ft_server.fail("create", 500, times=2)
    with pytest.raises(PosternError, match="creating the fine-tuning job failed: HTTP 500"):
        run(make_config(ft_server, max_retries=1), chat_jsonl, tmp_path)
    assert state_of(tmp_path)["file_id"] and not state_of(tmp_path)["job_id"]

    result = run(make_config(ft_server), chat_jsonl, tmp_path)
    assert result.status == "succeeded" and result.resumed
    assert ft_server.calls["upload"] == 1 and len(ft_server.jobs) == 1


def test_bad_dataset_names_file_and_line(ft_server, chat_jsonl, tmp_path):
    lines = chat_jsonl.read_text().splitlines()
    lines[2] = '{"messages": [{"role": "user", "content": "hi"}'
    chat_jsonl.write_text("\n".join(lines) + "\n")
    with pytest.raises(PosternError, match=r"train\.jsonl:3: invalid JSON"):
        run(make_config(ft_server), chat_jsonl, tmp_path / "run")
    assert sum(ft_server.calls.values()) == 0


def test_too_few_examples(ft_server, chat_jsonl, tmp_path):
    with pytest.raises(PosternError, match=r"12 conversations.*at least 20 \(setting min_examples\)"):
        run(make_config(ft_server, min_examples=20), chat_jsonl, tmp_path / "run")


def test_out_dir_of_another_job_is_refused(ft_server, chat_jsonl, tmp_path):
    run(make_config(ft_server), chat_jsonl, tmp_path)
    with pytest.raises(PosternError, match="different dataset or configuration"):
        run(make_config(ft_server, epochs=5), chat_jsonl, tmp_path)


def test_rejected_key_names_the_variable(ft_server, chat_jsonl, tmp_path, monkeypatch):
    monkeypatch.setenv("POSTERN_TEST_KEY", "wrong")
    with pytest.raises(PosternError, match=r"HTTP 401.*\$POSTERN_TEST_KEY"):
        run(make_config(ft_server), chat_jsonl, tmp_path)
    monkeypatch.delenv("POSTERN_TEST_KEY")
    with pytest.raises(PosternError, match=r"\$POSTERN_TEST_KEY is not set"):
        run(make_config(ft_server), chat_jsonl, tmp_path / "other")


def test_registered_openai_trainer_runs_a_job_and_returns_the_api_model(ft_server, chat_jsonl, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    ft_server.statuses = ["validating_files", "succeeded"]  # done at the first poll: no wait
    train = lookup("trainer", "openai")
    config = TrainConfig(backend="openai", epochs=3.0, batch_size=4, seed=5, base_url=ft_server.base_url)

    model = train(ModelRef("gpt-4o-mini-2024-07-18"), chat_jsonl, tmp_path / "out", config)

    assert model.api and model.adapter is None and model.name.startswith("ft:gpt-4o-mini-2024-07-18:")
    (params,) = [p for route, p in ft_server.requests if route == "create"]
    assert params["method"]["supervised"]["hyperparameters"] == {"n_epochs": 3, "batch_size": 4}
    assert params["seed"] == 5
    assert json.loads((tmp_path / "out" / "run_card.json").read_text())["fine_tuned_model"] == model.name


def test_registered_openai_trainer_refuses_fractional_epochs(ft_server, chat_jsonl, tmp_path):
    config = TrainConfig(backend="openai", epochs=1.5, base_url=ft_server.base_url)
    with pytest.raises(PosternError, match=r"\[train\] epochs"):
        lookup("trainer", "openai")(ModelRef("gpt-4o-mini-2024-07-18"), chat_jsonl, tmp_path, config)
    assert sum(ft_server.calls.values()) == 0
