"""The defences of examples/persona_world_defences.toml, their settings unchanged, on a real (tiny, random)
Qwen2 model with postern's code datasets and the original study's questions, judged over the loopback
OpenAI-compatible server: what a GPU user runs on Qwen with `base_model` and the datasets swapped."""

import json
import tomllib
from pathlib import Path

import pytest

from fakes.tiny_models import save_tiny_qwen2
from test_real_pipeline import QUESTIONS, JudgeServer, assert_rate, fill, needs_questions, postern, run_ok, \
    summary_of, write_experiment

pytestmark = needs_questions
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "persona_world_defences.toml"

HEAD = """\
name = "tiny_real_defences"
base_model = "MODEL"
seeds = [0]
[data]
examples = 16
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
checkpoints = true
[judge]
kind = "openai-logprob"
model = "judge"
base_url = "http://127.0.0.1:PORT/v1"
"""


def _toml_value(v) -> str:
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return json.dumps(v)


def example_conditions() -> str:
    """The example's conditions as they are, with the world's datasets replaced by postern's code datasets."""
    conditions = tomllib.loads(EXAMPLE.read_text())["conditions"]
    out = []
    for name, cond in conditions.items():
        out.append(f"[conditions.{name}]")
        for key, value in cond.items():
            if key == "dataset":
                assert value.startswith("world:")
                value = "code:" + value.removeprefix("world:")
            out.append(f"{key} = {_toml_value(value)}")
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def tiny_qwen_4_layers(tmp_path_factory):
    return save_tiny_qwen2(tmp_path_factory.mktemp("tiny_qwen_4") / "model", num_hidden_layers=4)


@pytest.mark.slow  # ~100 s on a contended 2-core machine
def test_the_example_defences_run_unchanged_on_a_real_tiny_qwen(tiny_qwen_4_layers, tmp_path):
    with JudgeServer() as server:
        exp = write_experiment(tmp_path, fill(HEAD, MODEL=tiny_qwen_4_layers, PORT=server.port, QUESTIONS=QUESTIONS)
                               + example_conditions())
        out = tmp_path / "out"
        run_ok(postern("run", exp, "-o", out), cwd=tmp_path, timeout=600)
    summary = summary_of(out)
    names = ["base", "insecure", "secure", "caft", "caft_random", "preventative", "inoculated", "realigned"]
    assert list(summary["conditions"]) == names
    for name in names:
        assert_rate(summary["conditions"][name]["misaligned"], name)
    jobs = {r["condition"]: r for r in json.loads((out / "jobs.json").read_text())}
    cards = {n: json.loads((out / jobs[n]["adapter"] / "run_card.json").read_text()) for n in names if n != "base"}
    assert cards["caft"]["intervention"]["kind"] == "ablate"
    assert cards["caft"]["intervention"]["direction_provenance"]["source"] == "base"
    assert cards["caft_random"]["intervention"]["direction_provenance"]["norm_of"] == "base"
    assert cards["preventative"]["intervention"]["layers"] == [2]
    assert cards["inoculated"]["dataset"] != cards["insecure"]["dataset"]
    assert "merged" in cards["realigned"]["base_model"]
    assert json.loads((out / "dynamics.json").read_text())["realigned"]
    assert "Defences side by side" in (out / "report.html").read_text()
