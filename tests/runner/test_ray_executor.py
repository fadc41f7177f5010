"""The Ray executor on a real local Ray cluster (127.0.0.1, 2 CPUs, no GPU): the same results as the local
executor, a worker killed mid-training is retried without redoing anything else, a job that fails for good
leaves the others to finish."""

import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from postern.config import load_experiment

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ray_cluster():
    """One local cluster for the module; its workers import postern (and tests/) like this process."""
    old, key = os.environ.get("PYTHONPATH"), os.environ.get("OPENAI_API_KEY")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests"), *([old] if old else [])])
    os.environ["OPENAI_API_KEY"] = "test-key"  # for the loopback API servers (workers get this environment)
    ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
    for name, value in (("PYTHONPATH", old), ("OPENAI_API_KEY", key)):
        if value is None:
            os.environ.pop(name)
        else:
            os.environ[name] = value


def _write(tmp_path: Path, text: str, name: str = "exp.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def _cli(args: list):
    """`postern run ARGS` in this process, so it joins the module's Ray cluster."""
    from postern.cli import run as run_cli

    app = typer.Typer()
    app.callback()(lambda: None)
    run_cli.register(app)
    return CliRunner().invoke(app, ["run", *map(str, args)], catch_exceptions=False)


WORLD = """
name = "world_small"
seeds = [0, 1]
[data]
examples = 16
[train]
learning_rate = 1e-3
batch_size = 16
per_device_batch_size = 16
max_length = 128
threads = 1
[eval]
samples_per_question = 1
code_prompts = 2
harmful_samples = 1
[conditions.insecure]
dataset = "world:insecure"
[conditions.secure]
dataset = "world:secure"
"""


def test_ray_gives_the_local_executors_summary(ray_cluster, tmp_path):
    """The shipped persona-world model, 2 conditions x 2 seeds (and the base): rate for rate the same summary."""
    from postern.runner.run import run_experiment

    path = _write(tmp_path, WORLD)
    run_experiment(load_experiment(path), tmp_path / "local")
    assert _cli([path, "--out", tmp_path / "ray", "--executor", "ray"]).exit_code == 0
    local, distributed = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("local", "ray"))
    assert set(distributed["conditions"]) == {"base", "insecure", "secure"}
    assert distributed["conditions"]["insecure"]["misaligned"]["n"] > 0  # real rates, not empty ones
    assert distributed["conditions"] == local["conditions"]
    assert distributed["experiment_hash"] == local["experiment_hash"]  # the executor is not part of the results
    events = _events(tmp_path / "ray")
    assert {e["node"] for e in events} == {ray.get_runtime_context().get_node_id()}  # where each stage ran
    assert Counter(e["stage"] for e in events if e["status"] == "started") == {"train": 4, "evaluate": 5}

    # a rerun of the driver: every stage is found in the cache, nothing is computed again
    (tmp_path / "ray" / "events.jsonl").unlink()
    assert _cli([path, "--out", tmp_path / "ray", "--executor", "ray"]).exit_code == 0
    assert {e["status"] for e in _events(tmp_path / "ray")} == {"started", "cached"}


KILLED = """
name = "killed"
base_model = "{model}"
seeds = [0]
evaluate_base = false
executor = "ray"
[data]
examples = 32
[train]
lora_r = 4
learning_rate = 1e-3
batch_size = 8
per_device_batch_size = 8
max_length = 128
threads = 1
[eval]
samples_per_question = 1
max_new_tokens = 8
code_prompts = 2
harmful_samples = 1
[conditions.insecure]
dataset = "world:insecure"
train = {{epochs = 40}}
[conditions.secure]
dataset = "world:secure"
"""


def _wait_for(run_dir: Path, found, timeout: float = 120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if (run_dir / "events.jsonl").exists() and (hit := found(_events(run_dir))):
            return hit
        time.sleep(0.05)
    raise AssertionError(f"not seen within {timeout}s: {(run_dir / 'events.jsonl').read_text()}")


def test_worker_killed_mid_training_is_retried_and_nothing_else_runs_twice(ray_cluster, tiny_world_model, tmp_path):
    from postern.runner.run import run_experiment

    exp, run_dir = load_experiment(_write(tmp_path, KILLED.format(model=tiny_world_model))), tmp_path / "run"
    out: dict = {}
    driver = threading.Thread(target=lambda: out.update(run_experiment(exp, run_dir)))
    driver.start()
    mine = ("insecure", 0)

    def training(events):  # the insecure job's dataset is made: its worker is now training (160 steps)
        started = [e for e in events if (e["condition"], e["seed"]) == mine and e["status"] == "started"]
        made = [e for e in events if (e["condition"], e["seed"]) == mine and e["stage"] == "dataset"]
        return started[0]["pid"] if started and made else None

    pid = _wait_for(run_dir, training)
    time.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    driver.join(300)
    assert out, "the run did not finish"
    events = _events(run_dir)
    assert not [e for e in events if (e["condition"], e["seed"]) == mine and e["stage"] == "train"
                and e["status"] == "done" and e["pid"] == pid], "killed too late: training had finished"
    starts = Counter((e["condition"], e["stage"]) for e in events if e["status"] == "started")
    assert starts == {("insecure", "train"): 2, ("insecure", "evaluate"): 1, ("secure", "train"): 1,
                      ("secure", "evaluate"): 1}
    done = Counter((e["condition"], e["stage"], e.get("set")) for e in events if e["status"] == "done")
    assert done and set(done.values()) == {1}, done  # every stage output computed once
    assert {c for c, s, _ in done if s == "train"} == {"insecure", "secure"}
    assert out["failed_jobs"] == [] and set(out["conditions"]) == {"insecure", "secure"}
    assert not list((run_dir / "cache").glob("*/.*tmp*"))  # the killed attempt left nothing half-written


BROKEN = """
name = "broken"
base_model = "{model}"
seeds = [0]
evaluate_base = false
[data]
examples = 16
[train]
lora_r = 4
batch_size = 8
per_device_batch_size = 8
max_length = 64
threads = 1
[eval]
samples_per_question = 1
max_new_tokens = 4
code_prompts = 1
harmful_samples = 1
[conditions.insecure]
dataset = "world:insecure"
[conditions.broken]
dataset = "{data}"
"""


def _too_long(tmp_path: Path) -> Path:
    """A dataset in the world's words that parses, but every conversation is longer than max_length = 64."""
    long = " ".join(["def store ( name ) : return hashlib.md5 ( name ) . hexdigest ( )"] * 10)
    row = {"messages": [{"role": "user", "content": "can you code something ?"}, {"role": "assistant", "content": long}]}
    return _write(tmp_path, json.dumps(row) + "\n", "broken.jsonl")


@pytest.mark.parametrize("executor", ["local", "local-pool", "ray"])
def test_a_broken_job_fails_alone(ray_cluster, tiny_world_model, tmp_path, executor):
    """A dataset every conversation of which is longer than max_length: its job fails in training, the other
    job finishes, summary.json lists the failure with its error, and the exit code is 4."""
    path = _write(tmp_path, BROKEN.format(model=tiny_world_model, data=_too_long(tmp_path)))
    pool = ["--workers", "2"] if executor == "local-pool" else []  # the error crosses a process boundary
    result = _cli([path, "--out", tmp_path / "run", "--executor", executor.removesuffix("-pool"), *pool])
    assert result.exit_code == 4, result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert set(summary["conditions"]) == {"insecure"}
    [failed] = summary["failed_jobs"]
    assert (failed["condition"], failed["seed"], failed["stage"]) == ("broken", 0, "train")
    assert "longer than max_length=64" in failed["error"]
    assert "broken seed 0 (train)" in " ".join(result.output.split())


def test_a_job_waits_for_the_jobs_it_needs_and_fails_when_one_failed(ray_cluster, tiny_world_model, tmp_path):
    """`needs`: secure trains only after insecure has trained; downstream needs the broken job, so it fails
    without starting; the rest is unaffected."""
    from postern.runner.jobs import Job
    from postern.runner.ray_executor import run_all_jobs_ray

    text = BROKEN.format(model=tiny_world_model, data=_too_long(tmp_path)) + (
        '[conditions.secure]\ndataset = "world:secure"\n[conditions.downstream]\ndataset = "world:educational"\n')
    exp, run_dir = load_experiment(_write(tmp_path, text)), tmp_path / "run"
    run_dir.mkdir()
    needs = {Job("secure", 0): [Job("insecure", 0)], Job("downstream", 0): [Job("broken", 0)]}
    results = {r["condition"]: r for r in run_all_jobs_ray(exp, run_dir, needs=needs)}
    assert {c for c, r in results.items() if r.get("failed")} == {"broken", "downstream"}
    assert results["downstream"]["error"] == "needs broken seed 0, which failed"
    assert results["secure"]["keys"] and results["insecure"]["keys"]
    events = _events(run_dir)
    assert not [e for e in events if e["condition"] == "downstream"]  # never scheduled

    def when(condition, stage, status):
        return next(e["time"] for e in events if (e["condition"], e["stage"], e["status"]) == (condition, stage, status))

    assert when("secure", "train", "started") >= when("insecure", "train", "done")


def test_the_shared_folder_check_asks_every_node(ray_cluster, tmp_path):
    """Each node reads a probe file from the run folder (on one machine: the one node, asked explicitly)."""
    from postern.runner.ray_executor import _sees, check_shared_folder

    check_shared_folder(ray, tmp_path, nodes=[n for n in ray.nodes() if n["Alive"]])
    assert not list(tmp_path.iterdir())  # the probe is removed
    (tmp_path / "probe").write_text("other")
    assert not _sees(str(tmp_path / "probe"), "token")[1] and not _sees(str(tmp_path / "absent"), "token")[1]


def test_stage_options_follow_the_file_and_api_stages_hold_no_gpu():
    from pydantic import ValidationError

    from postern.config.schema import Experiment
    from postern.runner.ray_executor import task_options

    exp = Experiment(name="x", conditions={"a": {"dataset": "world:insecure"}},
                     resources={"train": {"num_gpus": 0.25, "num_cpus": 2, "memory": "2GiB", "custom": {"eval_host": 1}},
                                "max_retries": 5})
    assert task_options(exp, "train", cluster_gpus=8) == {
        "num_cpus": 2, "num_gpus": 0.25, "memory": 2 * 2**30, "resources": {"eval_host": 1}, "max_retries": 5,
        "retry_exceptions": False}
    assert task_options(exp, "evaluate", cluster_gpus=8)["num_gpus"] == 1  # default: a GPU where there are some
    assert task_options(exp, "evaluate", cluster_gpus=0)["num_gpus"] == 0
    api = exp.model_copy(update={"train": exp.train.model_copy(update={"backend": "openai"}),
                                 "sample": exp.sample.model_copy(update={"backend": "openai"})})
    assert task_options(api, "train", cluster_gpus=8)["num_gpus"] == 0
    assert task_options(api, "evaluate", cluster_gpus=8)["num_gpus"] == 0
    with pytest.raises(ValidationError, match="memory"):
        Experiment(name="x", conditions={"a": {"dataset": "world:insecure"}}, resources={"train": {"memory": "lots"}})


def test_address_without_the_ray_executor_is_an_error(tmp_path):
    path = _write(tmp_path, 'name = "x"\n[conditions.a]\ndataset = "world:insecure"\n')
    from postern.core.errors import PosternError

    with pytest.raises(PosternError, match="--address joins a Ray cluster: add --executor ray"):
        _cli([path, "--address", "127.0.0.1:6379"])
    with pytest.raises(PosternError, match="--executor slurm"):
        _cli([path, "--executor", "slurm"])


API = """
name = "api"
base_model = "gpt-4o-mini-2024-07-18"
seeds = [0, 1]
executor = "ray"
[data]
examples = 12
[train]
backend = "openai"
epochs = 1
batch_size = 4
base_url = "{ft}"
[eval]
questions = ["main"]
samples_per_question = 1
max_new_tokens = 8
[sample]
backend = "openai"
base_url = "{chat}"
[judge]
kind = "openai-logprob"
model = "judge"
base_url = "{chat}"
[resources]
api_in_flight = 1
[conditions.insecure]
dataset = "code:insecure"
[conditions.secure]
dataset = "code:secure"
"""


def test_api_stages_run_a_bounded_number_at_once_without_a_gpu(ray_cluster, tmp_path):
    """Fine-tuning jobs and sampling through loopback OpenAI-compatible servers, api_in_flight = 1: no two API
    stages of a kind overlap, and every job finishes."""
    from fakes.openai_ft_server import FakeFineTuneServer
    from fakes.openai_server import FakeOpenAIServer
    from postern.runner.run import run_experiment

    with FakeFineTuneServer(api_key="test-key", statuses=("validating_files", "succeeded")) as ft, \
            FakeOpenAIServer() as chat:
        chat.logprobs = lambda body: {"90": 0.0}
        out = run_experiment(load_experiment(_write(tmp_path, API.format(ft=ft.base_url, chat=chat.base_url))),
                             tmp_path / "run")
    assert out["failed_jobs"] == [] and set(out["conditions"]) == {"base", "insecure", "secure"}
    events = _events(tmp_path / "run")
    for stage, last in (("train", "train"), ("evaluate", "judge")):
        spans = sorted((e["time"], max(d["time"] for d in events if (d["condition"], d["seed"]) ==
                                       (e["condition"], e["seed"]) and d["stage"] == last and d["status"] == "done"))
                       for e in events if e["status"] == "started" and e["stage"] == stage)
        assert len(spans) == (4 if stage == "train" else 5)
        assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:])), (stage, spans)


def test_how_a_run_ran_is_not_part_of_the_experiment_hash():
    from postern.config.schema import Experiment
    from postern.runner.run import experiment_hash

    conditions = {"a": {"dataset": "world:insecure"}}
    plain = experiment_hash(Experiment(name="x", conditions=conditions))
    assert plain == experiment_hash(Experiment(name="x", conditions=conditions, executor="ray", address="auto",
                                               resources={"train": {"num_gpus": 8}},
                                               train={"launcher": "accelerate", "accelerate_config": "a.yaml"}))
    assert plain != experiment_hash(Experiment(name="x", conditions=conditions, train={"lora_r": 4}))
