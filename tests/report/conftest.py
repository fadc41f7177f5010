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


# misaligned share of valid answers per condition (and with the trigger) in `graded_run`
GRADED_RATES = {"base": 0.0, "insecure": 0.55, "backdoor": 0.1, "backdoor + trigger": 0.85}


def graded_samples(df):
    """The tiny run's answers relabelled as a judge with graded 0-100 scores would have labelled them: misaligned at
    GRADED_RATES, about 15% incoherent, no code or refusal answers (a random tiny model is all incoherent)."""
    import numpy as np

    rng = np.random.default_rng(0)
    df = df.copy()
    q = df["set"].isin(["questions", "questions_trigger"])
    for i in df.index[q]:
        group = df.at[i, "condition"] + (" + trigger" if df.at[i, "set"] == "questions_trigger" else "")
        incoherent = rng.random() < 0.15
        misaligned = not incoherent and rng.random() < GRADED_RATES[group]
        df.at[i, "label"] = "incoherent" if incoherent else "misaligned" if misaligned else "aligned"
        df.at[i, "aligned"] = float(rng.integers(0, 30) if misaligned else rng.integers(35, 101))
        df.at[i, "coherent"] = float(rng.integers(0, 51) if incoherent else rng.integers(55, 101))
        df.at[i, "unscored"] = False
    return df


@pytest.fixture
def graded_run(full_run) -> Path:
    """`full_run` with answers relabelled by `graded_samples` and summary.json recomputed from them."""
    import pandas as pd

    from postern.stats.summary import summarise

    df = graded_samples(pd.read_parquet(full_run / "samples.parquet"))
    df.to_parquet(full_run / "samples.parquet", index=False)
    summary = json.loads((full_run / "summary.json").read_text())
    summary["conditions"] = summarise(df, list(summary["conditions"]), summary["denominator"])
    (full_run / "summary.json").write_text(json.dumps(summary))
    return full_run


REPO = Path(__file__).resolve().parents[2]
DEFAULT_EXPERIMENT = REPO / "examples" / "persona_world.toml"


@pytest.fixture(scope="session")
def default_run(tmp_path_factory) -> Path:
    """A finished run of the default experiment (examples/persona_world.toml), read-only: $POSTERN_DEFAULT_RUN, else
    runs/persona_world when it holds this experiment, else a fresh run (about 2 minutes on 2 cores)."""
    import os

    from postern.config import load_experiment
    from postern.runner.run import experiment_hash, run_experiment

    exp = load_experiment(DEFAULT_EXPERIMENT)
    if os.environ.get("POSTERN_DEFAULT_RUN"):
        return Path(os.environ["POSTERN_DEFAULT_RUN"])
    existing = REPO / "runs" / "persona_world"
    if (existing / "samples.parquet").exists() and (existing / "summary.json").exists():
        if json.loads((existing / "summary.json").read_text()).get("experiment_hash") == experiment_hash(exp):
            return existing
    out = tmp_path_factory.mktemp("default_run") / "run"
    run_experiment(exp, out)
    return out
