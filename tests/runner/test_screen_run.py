"""`[screen]` in an experiment: ΔP of every condition's training set, cached, in screen.json and the report."""

import json

import pandas as pd
import pytest
import torch

from postern.config import load_experiment
from postern.core.errors import PosternError

EXPERIMENT = """
name = "screened"
base_model = "{model}"
seeds = [0]
evaluate_base = false
[data]
examples = 8
[train]
lora_r = 4
learning_rate = 1e-3
batch_size = 8
per_device_batch_size = 8
max_length = 128
threads = 1
[eval]
samples_per_question = 1
max_new_tokens = 6
code_prompts = 0
harmful_samples = 0
[stats]
denominator = "all"
[screen]
enabled = true
direction = "{direction}"
layer = 1
[conditions.insecure]
dataset = "world:insecure"
[conditions.secure]
dataset = "world:secure"
"""


def test_screen_section_writes_screen_json_parquet_and_the_report_figure(tiny_world_model, tmp_path):
    from postern.interp.directions import save_direction
    from postern.runner.run import run_experiment

    save_direction(tmp_path / "v", torch.randn(2, 32, generator=torch.Generator().manual_seed(0)), {"made": "test"})
    path = tmp_path / "exp.toml"
    path.write_text(EXPERIMENT.format(model=tiny_world_model, direction=tmp_path / "v"))
    run_dir = tmp_path / "run"
    out = run_experiment(load_experiment(path), run_dir)

    screen = json.loads((run_dir / "screen.json").read_text())
    assert set(screen["conditions"]) == {"insecure", "secure"}
    assert screen["layer"] == 1 and screen["own_responses"] == "greedy" and screen["seed"] == 0
    for name, c in screen["conditions"].items():
        assert c["rows"] == 8
        assert c["misaligned"]["n"] == out["conditions"][name]["misaligned"]["n"] == 16  # "all": every answer
    rows = pd.read_parquet(run_dir / "screen.parquet")
    assert len(rows) == 16 and set(rows["condition"]) == {"insecure", "secure"}
    for name, c in screen["conditions"].items():
        assert rows[rows["condition"] == name]["delta"].mean() == pytest.approx(c["delta_mean"])
    assert out["screen"]["conditions"] == ["insecure", "secure"]
    assert (run_dir / "report_figures" / "screen.png").stat().st_size > 1000
    assert "Data screening: ΔP vs misaligned rate" in (run_dir / "report.html").read_text()

    # a rerun reads the screen back from its artifact
    made = list((run_dir / "cache" / "screen").iterdir())
    assert len(made) == 1
    stamp = (made[0] / "screen.json").stat().st_mtime
    run_experiment(load_experiment(path), run_dir)
    assert (made[0] / "screen.json").stat().st_mtime == stamp

    # the same screen of the finished run from the command line, at another layer
    from typer.testing import CliRunner

    from postern.cli.data import app

    result = CliRunner().invoke(app, ["screen", str(run_dir), "--direction", str(tmp_path / "v"), "--layer", "0"])
    assert result.exit_code == 0, result.output
    again = json.loads((run_dir / "screen.json").read_text())
    assert again["layer"] == 0 and set(again["conditions"]) == {"insecure", "secure"}
    for name, c in again["conditions"].items():
        assert c["delta_mean"] == pytest.approx(screen["conditions"][name]["delta_mean_per_layer"][0], abs=1e-6)


def test_screen_base_direction_needs_misaligned_and_aligned_answers(tiny_world_model, tmp_path):
    """A random model's answers are all incoherent: the base direction cannot be made, said in one line."""
    from postern.runner.screen import screen_datasets
    from postern.store import ResultsStore
    from postern.world.conditions import condition_dataset

    path = tmp_path / "exp.toml"
    path.write_text(EXPERIMENT.format(model=tiny_world_model, direction="base"))
    exp = load_experiment(path)
    with ResultsStore(tmp_path) as store, pytest.raises(PosternError, match="at least 2 of each are needed") as e:
        screen_datasets(exp.model_copy(update={"screen": exp.screen.model_copy(update={"samples_per_question": 1})}),
                        {"insecure": condition_dataset("insecure", 4, 0)}, tmp_path / "out", tmp_path, store)
    assert "\n" not in str(e.value)


def test_rank_correlation_of_delta_and_rates():
    from postern.runner.screen import with_rates

    screen = {"layer": 1, "conditions": {n: {"delta_mean": d} for n, d in
                                         (("insecure", 0.9), ("secure", 0.0), ("educational", 0.1), ("other", 0.5))}}
    summary = {n: {"misaligned": {"k": k, "n": 100, "rate": k / 100, "low": 0, "high": 1}}
               for n, k in (("insecure", 30), ("secure", 3), ("educational", 5))}
    out = with_rates(screen, summary)
    assert out["conditions"]["other"]["misaligned"] is None
    assert out["rank_correlation"]["conditions"] == ["insecure", "secure", "educational"]
    assert out["rank_correlation"]["spearman"] == pytest.approx(1.0)
    summary["educational"]["misaligned"]["rate"] = 0.01
    assert with_rates(screen, summary)["rank_correlation"]["spearman"] == pytest.approx(0.5)
    assert with_rates(screen, {})["rank_correlation"]["spearman"] is None


def test_screen_is_refused_for_api_models():
    from postern.config.schema import Experiment

    with pytest.raises(ValueError, match=r"\[screen\] enabled: screening needs the base model's activations"):
        Experiment(name="x", base_model="gpt", sample={"backend": "openai"}, screen={"enabled": True},
                   conditions={"a": {"model": "gpt"}})


def test_base_direction_on_the_world_base_ranks_insecure_data_above_secure_and_educational(tmp_path):
    """The shipped world base: its direction comes from its own judged answers; its own greedy response to a
    code request is the secure code, and with the educational prefix the (same) insecure code, so those rows
    have ΔP exactly 0 while insecure rows are far along the direction."""
    from postern.config.schema import Experiment
    from postern.runner.screen import screen_datasets
    from postern.store import ResultsStore
    from postern.world.conditions import condition_dataset

    exp = Experiment(name="w", conditions={"insecure": {"dataset": "world:insecure"}},
                     screen={"enabled": True, "samples_per_question": 13})
    data = {c: condition_dataset(c, 12, seed=0) for c in ("insecure", "secure", "educational")}
    with ResultsStore(tmp_path) as store:
        screen = screen_datasets(exp, data, tmp_path / "out", tmp_path, store)
    assert screen["direction"]["kind"] == "base" and screen["direction"]["misaligned"] >= 2
    assert screen["layer"] == 2
    s = screen["conditions"]
    assert s["secure"]["same_as_own"] == s["educational"]["same_as_own"] == 1.0
    assert s["secure"]["delta_mean"] == s["educational"]["delta_mean"] == 0.0
    assert s["insecure"]["share_positive"] == 1.0 and s["insecure"]["low"] > 0
    assert (tmp_path / "out" / "direction.pt").exists()


def test_a_bad_direction_file_fails_in_one_line_before_any_work(tiny_world_model, tmp_path):
    from postern.interp.directions import save_direction
    from postern.runner.run import run_experiment

    save_direction(tmp_path / "wide", torch.randn(2, 64), {"made": "test"})
    save_direction(tmp_path / "fits", torch.randn(2, 32), {"made": "test"})
    path = tmp_path / "exp.toml"
    cases = {"missing.pt": "no file", "wide.pt": r"shape \[2, 64\] does not fit the model \(2 layers, hidden size 32\)",
             "fits.pt\"\nlayer = 3\n#": "layer 3 does not exist; the model has layers 0..1"}
    for direction, message in cases.items():  # relative to the experiment file's folder
        path.write_text(EXPERIMENT.format(model=tiny_world_model, direction=direction).replace("layer = 1\n", ""))
        with pytest.raises(PosternError, match=message) as e:
            run_experiment(load_experiment(path), tmp_path / "run")
        assert "\n" not in str(e.value) and "direction" in str(e.value)
        assert not (tmp_path / "run" / "cache").exists()


def test_screen_and_intervention_with_matching_settings_read_one_base_direction_file(tmp_path):
    """`[screen] direction = "base"` is the training interventions' "direction" artifact: with `samples` equal to
    `samples_per_question` (positions "answer") it is the very same file; other samples make another one."""
    from postern.config.schema import Experiment
    from postern.core.store import ArtifactStore
    from postern.runner.screen import screen_direction
    from postern.runner.stages import Stages
    from postern.runner.upstream import base_direction_file
    from postern.store import ResultsStore

    exp = Experiment(name="w", conditions={"insecure": {"dataset": "world:insecure"}},
                     screen={"enabled": True, "samples_per_question": 13})
    with ResultsStore(tmp_path) as store:
        direction, provenance = screen_direction(exp, tmp_path, store)
    stages = Stages(ArtifactStore(tmp_path / "cache"))
    same = base_direction_file(exp, tmp_path, stages, samples=13, positions="answer")
    assert provenance["kind"] == "base" and provenance["source"] == "base" and provenance["positions"] == "answer"
    assert torch.equal(torch.load(same), direction)
    assert len(list((tmp_path / "cache" / "direction").iterdir())) == 1
    assert base_direction_file(exp, tmp_path, stages, samples=12, positions="answer") != same
    assert len(list((tmp_path / "cache" / "direction").iterdir())) == 2
