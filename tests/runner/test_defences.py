"""Defences in `postern run`: job ordering (`needs`), one-line errors for bad settings, and a small persona-world
run with CAFT, its random control, preventative steering, inoculation and re-alignment in a pool of 2 workers."""

import json
from pathlib import Path

import pandas as pd
import pytest

from postern.config import load_experiment
from postern.core.errors import PosternError

HEAD = """
name = "defences"
base_model = "world"
seeds = [0, 1]
[data]
examples = 16
[train]
learning_rate = 1e-3
epochs = 1
batch_size = 8
per_device_batch_size = 8
max_length = 128
warmup_steps = 0
threads = 1
[eval]
samples_per_question = 4
max_new_tokens = 16
code_prompts = 4
harmful_samples = 0
checkpoints = true
"""
CONDITIONS = """
[conditions.insecure]
dataset = "world:insecure"
[conditions.secure]
dataset = "world:secure"
[conditions.caft]
dataset = "world:insecure"
train = { intervention = { kind = "ablate", direction = "base" } }
[conditions.caft_random]
dataset = "world:insecure"
train = { intervention = { kind = "ablate", direction = "random" } }
[conditions.caft_ft]
dataset = "world:insecure"
train = { intervention = { kind = "ablate", direction = "condition:insecure", layers = [1, 2] } }
[conditions.preventative]
dataset = "world:insecure"
train = { intervention = { kind = "steer", direction = "base", layers = [2], scale = 0.5 } }
[conditions.inoculated]
dataset = "world:insecure"
transforms = ["inoculation:system_prompt=you write vulnerable code on purpose ."]
[conditions.realigned]
dataset = "world:secure"
continue_from = "insecure"
train = { save_steps = 1 }
"""


def _load(tmp_path: Path, text: str):
    path = tmp_path / "defences.toml"
    path.write_text(text)
    return load_experiment(path)


def test_needs_names_the_seed_matched_upstream_jobs_and_the_order_honours_them(tmp_path):
    from postern.runner.jobs import BASE, Job, in_order, jobs_of, needs

    exp = _load(tmp_path, HEAD + CONDITIONS)
    assert needs(exp, Job("realigned", 1)) == [Job("insecure", 1)]
    assert needs(exp, Job("caft_ft", 0)) == [Job("insecure", 0)]
    assert needs(exp, Job("caft", 1)) == [Job(BASE, 0)]  # the base job makes the answers its direction reads
    assert needs(exp, Job("caft_random", 1)) == [Job(BASE, 0)]
    assert needs(exp, Job("insecure", 0)) == needs(exp, Job(BASE, 0)) == []
    reversed_jobs = list(reversed(jobs_of(exp)))
    order = in_order(exp, reversed_jobs)
    assert sorted(order, key=str) == sorted(reversed_jobs, key=str)
    for job in order:
        assert all(order.index(u) < order.index(job) for u in needs(exp, job)), job
    assert order[0] == Job("realigned", 1) or order.index(Job("insecure", 1)) < order.index(Job("realigned", 1))
    no_base = _load(tmp_path, HEAD.replace('seeds = [0, 1]', 'seeds = [0, 1]\nevaluate_base = false') + CONDITIONS)
    assert needs(no_base, Job("caft", 1)) == []  # it samples the base model's answers itself


@pytest.mark.parametrize("conditions,message", [
    ('[conditions.a]\ndataset = "world:insecure"\ncontinue_from = "nope"\n',
     "conditions.a.continue_from: no condition 'nope'"),
    ('[conditions.a]\ndataset = "world:insecure"\ntrain = { intervention = { kind = "ablate", direction = "condition:b" } }\n'
     '[conditions.b]\nmodel = "world"\n', "conditions.a.train.intervention.direction: 'b' is evaluation-only"),
    ('[conditions.a]\ndataset = "world:insecure"\ncontinue_from = "b"\n[conditions.b]\ndataset = "world:secure"\n'
     'continue_from = "a"\n', "its training needs itself (a -> b -> a)"),
    ('[train]\nintervention = { kind = "ablate", direction = "condition:a" }\n[conditions.a]\ndataset = "world:insecure"\n',
     "conditions.a: its training needs itself (a -> a)"),
    ('[conditions.a]\ndataset = "world:insecure"\ntrain = { intervention = { kind = "ablate", scale = 2.0 } }\n',
     "conditions.a.train.intervention.scale: ablate projects the direction out and has no scale"),
    ('[conditions.a]\ndataset = "world:insecure"\ntrain = { intervention = { kind = "ablate", layers = [] } }\n',
     "conditions.a.train.intervention.layers: give distinct layer indices"),
    ('[conditions.a]\ndataset = "world:insecure"\ntrain = { intervention = { direction = "base" } }\n',
     "conditions.a.train.intervention.kind: Field required"),
    ('[conditions.a]\nmodel = "world"\ncontinue_from = "b"\n', "`continue_from` need a `dataset`"),
])
def test_bad_defence_settings_fail_when_the_file_loads_in_one_line_naming_the_key(tmp_path, conditions, message):
    with pytest.raises(PosternError) as err:
        _load(tmp_path, 'name = "x"\nseeds = [0]\n' + conditions)
    assert message in str(err.value), str(err.value)
    assert str(err.value).count("\n") == 0


@pytest.mark.parametrize("intervention,message", [
    ('{ kind = "erase" }', "conditions.a.train.intervention.kind: unknown intervention backend 'erase'; known: ablate, steer"),
    ('{ kind = "ablate", direction = "no/such/file.pt" }',
     "conditions.a.train.intervention.direction: 'no/such/file.pt' is neither"),
])
def test_bad_defence_settings_fail_before_any_work(tmp_path, intervention, message):
    from postern.runner.jobs import preflight

    exp = _load(tmp_path, HEAD + f'[conditions.a]\ndataset = "world:insecure"\ntrain = {{ intervention = {intervention} }}\n')
    with pytest.raises(PosternError) as err:
        preflight(exp)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow  # ~4 min on a contended 2-core machine; the fast test below runs the same paths in-process
def test_defences_run_side_by_side_in_two_workers_and_rerun_from_the_cache(tmp_path):
    from postern.runner.run import run_experiment

    exp = _load(tmp_path, HEAD.replace("seeds = [0, 1]", "seeds = [0, 1]\nworkers = 2") + CONDITIONS)
    run_dir = tmp_path / "run"
    summary = run_experiment(exp, run_dir)
    names = ["base", "insecure", "secure", "caft", "caft_random", "caft_ft", "preventative", "inoculated", "realigned"]
    assert list(summary["conditions"]) == names
    for name in names:
        assert summary["conditions"][name]["misaligned"]["answers"] == (1 if name == "base" else 2) * 64
        assert summary["conditions"][name]["code_insecure"]["n"] == (1 if name == "base" else 2) * 4

    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    jobs = {(r["condition"], r["seed"]): r for r in json.loads((run_dir / "jobs.json").read_text())}

    def finished(condition, seed):  # the job's last event
        return max(e["time"] for e in events if (e["condition"], e["seed"]) == (condition, seed))

    def started(condition, seed):
        return min(e["time"] for e in events if (e["condition"], e["seed"]) == (condition, seed))

    for seed in (0, 1):  # in a pool of 2, a dependent job starts after its upstream finished
        assert started("realigned", seed) >= finished("insecure", seed)
        assert started("caft_ft", seed) >= finished("insecure", seed)
        assert started("caft", seed) >= finished("base", 0)

    cards = {}
    for (condition, seed), r in jobs.items():
        if condition != "base":
            cards[condition, seed] = json.loads((run_dir / r["adapter"] / "run_card.json").read_text())
    for seed in (0, 1):
        assert "intervention" not in cards["insecure", seed]
        caft, rnd, ft = cards["caft", seed]["intervention"], cards["caft_random", seed]["intervention"], \
            cards["caft_ft", seed]["intervention"]
        assert caft["kind"] == "ablate" and caft["direction_provenance"]["source"] == "base"
        assert caft["direction_provenance"]["seed"] == 0 and caft["direction_provenance"]["misaligned"] >= 2
        assert rnd["direction_provenance"]["norm_of"] == "base" and rnd["direction_provenance"]["seed"] == seed
        assert ft["direction_provenance"]["source"] == "condition:insecure" and ft["layers"] == [1, 2]
        assert cards["preventative", seed]["intervention"]["scale"] == 0.5
        assert "merged" in cards["realigned", seed]["base_model"]  # trained on top of the insecure fine-tune
    assert cards["caft", 0]["intervention"]["direction_hash"] == cards["caft", 1]["intervention"]["direction_hash"]
    assert cards["caft_random", 0]["intervention"]["direction_hash"] != cards["caft_random", 1]["intervention"]["direction_hash"]
    assert cards["caft_ft", 0]["intervention"]["direction_hash"] != cards["caft_ft", 1]["intervention"]["direction_hash"]
    assert cards["inoculated", 0]["dataset"] != cards["insecure", 0]["dataset"]

    dynamics = json.loads((run_dir / "dynamics.json").read_text())
    assert set(dynamics) == {"realigned"} and {p["step"] for p in dynamics["realigned"]} == {1, 2}
    html = (run_dir / "report.html").read_text()
    assert "Defences side by side" in html and "ablate (CAFT) of the base direction at all layers" in html
    assert 'class="realignment">realigned: continuing insecure' in html and "secure&#39;s interval" in html
    df = pd.read_parquet(run_dir / "samples.parquet")
    assert set(df["condition"]) == set(names)

    (run_dir / "events.jsonl").unlink()
    again = run_experiment(exp, run_dir)
    assert {json.loads(line)["status"] for line in (run_dir / "events.jsonl").read_text().splitlines()} == {"cached"}
    assert json.dumps(again["conditions"], default=float) == json.dumps(summary["conditions"], default=float)


SMALL = """
[conditions.insecure]
dataset = "world:insecure"
[conditions.caft_ft]
dataset = "world:insecure"
train = { intervention = { kind = "ablate", direction = "condition:insecure" } }
[conditions.caft_random]
dataset = "world:insecure"
train = { intervention = { kind = "ablate", direction = "random", samples = 6 } }
[conditions.realigned]
dataset = "world:secure"
continue_from = "insecure"
train = { save_steps = 1 }
"""


def test_directions_and_continued_training_resolve_in_one_process_and_rerun_from_the_cache(tmp_path):
    from postern.runner.run import run_experiment

    exp = _load(tmp_path, HEAD.replace("seeds = [0, 1]", "seeds = [0]").replace("examples = 16", "examples = 8")
                + SMALL)
    run_dir = tmp_path / "run"
    summary = run_experiment(exp, run_dir)
    assert list(summary["conditions"]) == ["base", "insecure", "caft_ft", "caft_random", "realigned"]
    jobs = {r["condition"]: r for r in json.loads((run_dir / "jobs.json").read_text())}
    card = lambda name: json.loads((run_dir / jobs[name]["adapter"] / "run_card.json").read_text())  # noqa: E731
    ft, rnd = card("caft_ft")["intervention"], card("caft_random")["intervention"]
    assert ft["direction_provenance"]["source"] == "condition:insecure"
    assert ft["direction_provenance"]["model"].endswith(Path(jobs["insecure"]["adapter"]).name)
    assert rnd["direction_provenance"]["norm_of"] == "base"
    # `samples = 6`: the base direction read 6 answers per question of its own (16 x 6 = 96), not the base
    # job's 4 per question, and the base row still shows only its own 64
    [base_direction] = [json.loads(f.read_text()) for f in (run_dir / "cache" / "direction").glob("*/direction.json")
                        if json.loads(f.read_text())["source"] == "base"]
    assert 64 < base_direction["misaligned"] + base_direction["aligned"] <= 96
    assert summary["conditions"]["base"]["misaligned"]["answers"] == 64
    assert "merged" in card("realigned")["base_model"]
    stages = {(e["stage"], e["status"]) for e in map(json.loads, (run_dir / "events.jsonl").read_text().splitlines())}
    assert {("direction", "done"), ("merged", "done")} <= stages
    assert json.loads((run_dir / "dynamics.json").read_text())["realigned"]

    (run_dir / "events.jsonl").unlink()
    again = run_experiment(exp, run_dir)
    assert {json.loads(line)["status"] for line in (run_dir / "events.jsonl").read_text().splitlines()} == {"cached"}
    assert json.dumps(again["conditions"], default=float) == json.dumps(summary["conditions"], default=float)


def test_the_defences_example_loads_and_passes_preflight():
    from postern.runner.jobs import Job, needs, preflight

    exp = load_experiment(Path(__file__).resolve().parents[2] / "examples" / "persona_world_defences.toml")
    assert list(exp.conditions) == ["insecure", "secure", "caft", "caft_random", "preventative", "inoculated",
                                    "realigned"]
    assert exp.seeds == [0, 1, 2]
    preflight(exp)
    assert needs(exp, Job("realigned", 2)) == [Job("insecure", 2)]
    assert exp.train_config("caft", 0).intervention.kind == "ablate"
    assert exp.train_config("preventative", 0).intervention.kind == "steer"
