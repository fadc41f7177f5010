import json
import shutil
from pathlib import Path

import pytest
from smoke_experiment import SMOKE

EXPERIMENT = SMOKE.replace('name = "smoke"', 'name = "tiny_persona"')


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
    """interp/summary.json in the shape `postern.interp.study.run_study` writes, with made-up numbers."""
    def row(model, intervention, scale, k, n=32):
        return {"model": model, "intervention": intervention, "scale": scale, "k": k, "n": n, "rate": k / n,
                "low": max(0.0, k / n - 0.1), "high": min(1.0, k / n + 0.1)}

    names = ["insecure/s0", "backdoor/s0+trigger", "base"]
    return {
        "layers": layers, "reference": "insecure/s0", "positions": "answer", "chance_band": 0.1,
        "directions": {n: {"misaligned": 12, "aligned": 20} for n in names},
        "cosines": {"insecure/s0 vs backdoor/s0+trigger": [0.1 * i for i in range(layers)],
                    "insecure/s0 vs base": [0.02 * (-1) ** i for i in range(layers)]},
        "cosine_matrix": {"labels": names, "layer": layers // 2,
                          "values": [[1.0, 0.6, -0.3], [0.6, 1.0, -0.1], [-0.3, -0.1, 1.0]]},
        "interventions": [row("insecure/s0", "none", None, 9), row("insecure/s0", "ablate", None, 2),
                          row("insecure/s0", "ablate_random", None, 8), row("base", "none", None, 1),
                          row("base", "steer", 2.0, 20), row("base", "steer_random", 2.0, 2)],
        "probe_auroc": {"insecure/s0": 0.9, "backdoor/s0+trigger": float("nan")},
    }


def fake_dynamics() -> dict:
    """dynamics.json: misaligned rate at evaluated checkpoints (nobody writes it yet)."""
    return {c: [{"step": step, "seed": seed, "rate": r, "low": max(0.0, r - 0.1), "high": min(1.0, r + 0.1)}
                for seed in (0, 1) for step, r in ((0, 0.0), (5, 0.1 + 0.05 * seed), (10, 0.2 + shift))]
            for c, shift in (("insecure", 0.1), ("backdoor", 0.0))}


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
