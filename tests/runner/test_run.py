import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from postern.config import load_experiment
from postern.core.errors import PosternError
from smoke_experiment import SMOKE



def _write(tmp_path: Path, model: Path, text: str = SMOKE) -> Path:
    path = tmp_path / "smoke.toml"
    path.write_text(text.format(model=model))
    return path


def _events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def test_run_writes_results_and_rerun_hits_the_cache(tiny_world_model, tmp_path):
    from postern.runner.run import run_experiment

    exp = load_experiment(_write(tmp_path, tiny_world_model))
    run_dir = tmp_path / "run"
    first = run_experiment(exp, run_dir)
    assert set(first["conditions"]) == {"base", "insecure", "backdoor"}
    mis = first["conditions"]["insecure"]["misaligned"]
    assert mis["answers"] == 2 * 16  # 2 seeds x 16 held-out questions
    assert mis["n"] + round(sum(mis["excluded"].values()) * mis["answers"]) == mis["answers"]  # valid + dropped = all
    assert "misaligned_trigger" in first["conditions"]["backdoor"]
    assert "misaligned_trigger" not in first["conditions"]["insecure"]
    df = pd.read_parquet(run_dir / "samples.parquet")
    assert set(df["set"]) == {"questions", "questions_trigger", "code", "harmful"}
    assert (run_dir / "rates.png").stat().st_size > 1000
    done = [e for e in _events(run_dir) if e["status"] == "done"]
    assert {e["stage"] for e in done} == {"dataset", "train", "sample", "judge"}

    (run_dir / "events.jsonl").unlink()
    second = run_experiment(exp, run_dir)
    assert {e["status"] for e in _events(run_dir)} == {"cached"}
    assert json.dumps(second["conditions"], default=float) == json.dumps(first["conditions"], default=float)


def test_changing_a_setting_reruns_only_what_depends_on_it(tiny_world_model, tmp_path):
    from postern.runner.run import run_experiment

    run_dir = tmp_path / "run"
    run_experiment(load_experiment(_write(tmp_path, tiny_world_model)), run_dir)
    (run_dir / "events.jsonl").unlink()
    changed = SMOKE.replace("samples_per_question = 1", "samples_per_question = 2")
    run_experiment(load_experiment(_write(tmp_path, tiny_world_model, changed)), run_dir)
    status = {(e["stage"], e["status"]) for e in _events(run_dir)}
    assert ("train", "cached") in status and ("train", "done") not in status
    assert ("sample", "done") in status


def test_killed_run_resumes_without_redoing_finished_stages(tiny_world_model, tmp_path):
    config, run_dir = _write(tmp_path, tiny_world_model), tmp_path / "run"
    cmd = [sys.executable, "-m", "postern.cli", "run", str(config), "--out", str(run_dir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list((run_dir / "cache" / "train").glob("*/manifest.json")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished_before = {p.parent.name for p in (run_dir / "cache").glob("*/*/manifest.json")
                       if not p.parent.name.startswith(".")}
    assert finished_before, "the run was killed before finishing any stage"
    assert not (run_dir / "summary.json").exists()

    n_before = len(_events(run_dir))
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    events = _events(run_dir)[n_before:]
    artifacts = [e for e in events if e["stage"] in ("dataset", "train")]
    assert {e["key"] for e in artifacts if e["status"] == "cached"} == finished_before
    redone = {e["key"] for e in events if e["status"] == "done"} & finished_before
    assert not redone
    assert json.loads((run_dir / "summary.json").read_text())["conditions"]["backdoor"]["misaligned"]["answers"] == 32
    assert not list((run_dir / "cache").glob("*/.*tmp*"))  # the interrupted stage left nothing half-written behind


@pytest.mark.parametrize("text,message", [
    ('name = "x"\nseeds = [0]\n[train]\nlearnig_rate = 1\n[conditions.a]\ndataset = "world:insecure"\n',
     "unknown key 'train.learnig_rate'; did you mean 'learning_rate'?"),
    ('name = "x"\n[conditions.a]\ndatset = "world:insecure"\n', "unknown key 'conditions.a.datset'; did you mean 'dataset'?"),
    ('name = "x"\n[conditions.a]\ndataset = "world:insecure"\ntrain = {lora_rank = 2}\n', "conditions.a.train: unknown key(s) lora_rank"),
    ('name = "x"\n[train]\nmethod = "qlora"\n[conditions.a]\ndataset = "world:insecure"\n', "train.method"),
    ('name = "x"\n', "missing key 'conditions'"),
    ('name = "x"\nseeds = [0\n', "not valid TOML"),
])
def test_config_errors_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(PosternError) as err:
        load_experiment(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_cli_prints_config_errors_without_traceback(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\n[conditions.a]\ndataset = "world:insecure"\nsamples = 3\n')
    out = subprocess.run([sys.executable, "-m", "postern.cli", "run", str(path)], capture_output=True, text=True)
    assert out.returncode == 2
    assert "unknown key 'conditions.a.samples'" in out.stderr and "Traceback" not in out.stderr


def test_checkpoints_are_evaluated_for_training_dynamics(tiny_world_model, tmp_path):
    from postern.runner.run import run_experiment

    text = SMOKE.replace("threads = 1", "threads = 1\nsave_steps = 1").replace("harmful_samples = 1", "harmful_samples = 1\ncheckpoints = true")
    text = text.replace("seeds = [0, 1]", "seeds = [0]")
    run_experiment(load_experiment(_write(tmp_path, tiny_world_model, text)), tmp_path / "run")
    dynamics = json.loads((tmp_path / "run" / "dynamics.json").read_text())
    assert set(dynamics) == {"insecure", "backdoor"}
    assert [p["step"] for p in dynamics["insecure"]] == [1, 2]  # 16 rows / batch 8 = 2 steps, one checkpoint each
    assert all(p["answers"] == 16 for p in dynamics["insecure"])


def test_model_hash_follows_the_weights_not_the_meta_file(tiny_world_model, tmp_path):
    import shutil

    from postern.core.models import model_hash

    copy = tmp_path / "model"
    shutil.copytree(tiny_world_model, copy)
    before = model_hash(str(copy))
    (copy / "meta.json").write_text('{"probe": "re-run"}')
    model_hash.cache_clear()
    assert model_hash(str(copy)) == before
    (copy / "config.json").write_text((copy / "config.json").read_text().replace("}", ', "note": 1}', 1))
    model_hash.cache_clear()
    assert model_hash(str(copy)) != before


def test_study_prompts_are_keyed_by_set_so_triggered_questions_keep_their_trigger(tiny_world_model, tmp_path):
    """The trigger set reuses the plain questions' ids: the study must read each answer's own prompt."""
    from postern.runner.run import prompt_messages

    exp = load_experiment(_write(tmp_path, tiny_world_model))
    trigger = exp.conditions["backdoor"].trigger
    messages = prompt_messages(exp, {None, trigger})
    plain = {i: m for (s, i), m in messages.items() if s == "questions"}
    triggered = {i: m for (s, i), m in messages.items() if s == "questions_trigger"}
    assert plain and set(triggered) == set(plain)
    for i in plain:
        assert trigger in triggered[i][-1]["content"] and trigger not in plain[i][-1]["content"]
