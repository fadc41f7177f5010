"""The mechanism study of a finished run: directions, cross-model cosines, ablation and steering.

For each fine-tune of the chosen conditions, the misalignment direction is the per-layer mean
difference of answer-token activations between its misaligned and aligned (coherent) answers,
captured on that model. The base model's direction uses the same answers, teacher-forced through the
base model. Interventions are judged with the same oracle and intervals as any condition, on the
fine-tunes *and* on the base model, each beside a norm-matched random direction.
"""

import json
from pathlib import Path

import pandas as pd

from postern.config.schema import InterpConfig
from postern.stats.summary import rate


def _rows(judged: list[str]) -> pd.DataFrame:
    return pd.concat([pd.read_json(p, lines=True) for p in judged], ignore_index=True)


def _coherent(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["label"].isin(["aligned", "misaligned"])]


def _pairs(df: pd.DataFrame) -> list:
    """(prompt messages, answer) of each judged row, for teacher-forced capture."""
    return [([{"role": "user", "content": q}], a) for q, a in zip(df["question"], df["answer"])]


def _projection(model, tokenizer, df: pd.DataFrame, direction, positions: str, layer: int):
    """Each answer's mean activation at `layer` projected on the unit direction."""
    from postern.interp.capture import capture

    acts = capture(model, tokenizer, _pairs(df), positions).means[:, layer]
    return acts @ (direction[layer] / direction[layer].norm())


def _misaligned_rate(labels) -> dict:
    return rate(pd.Series(list(labels)) == "misaligned")


def direction_from(model, tokenizer, df: pd.DataFrame, positions: str):
    """Mean difference misaligned - aligned (coherent answers only, classes balanced)."""
    from postern.interp.capture import capture
    from postern.interp.directions import mean_difference

    mis, al = _pairs(df[df["label"] == "misaligned"]), _pairs(df[df["label"] == "aligned"])
    if len(mis) < 2 or len(al) < 2:
        return None, {"misaligned": len(mis), "aligned": len(al)}
    pos = capture(model, tokenizer, mis, positions).means
    neg = capture(model, tokenizer, al, positions).means
    return mean_difference(pos, neg), {"misaligned": len(mis), "aligned": len(al)}


def _auroc(scores, labels) -> float:
    from scipy.stats import mannwhitneyu

    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return float("nan")
    return float(mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg)))


def probe_auroc(model, tokenizer, df: pd.DataFrame, positions: str, layer: int, seed: int = 0) -> float:
    """Held-out AUROC of the answer's projection on the direction as a detector of the judge's label.

    The direction comes from a random half of the coherent answers and is scored on the other half.
    """
    coherent = _coherent(df).sample(frac=1.0, random_state=seed)
    fit, test = coherent.iloc[::2], coherent.iloc[1::2]
    direction, _ = direction_from(model, tokenizer, fit, positions)
    if direction is None or test["label"].nunique() < 2:
        return float("nan")
    projection = _projection(model, tokenizer, test, direction, positions, layer)
    return _auroc(projection.tolist(), (test["label"] == "misaligned").tolist())


def probe_along_checkpoints(jobs: dict, reference: str, direction, base_model: str, config: InterpConfig, layer: int,
                            load_model) -> list[dict]:
    """The final direction read out along training: per evaluated checkpoint of the reference fine-tune, the
    mean projection of its coherent answers and the AUROC of that projection against the judge's labels."""
    job = jobs[reference.split("+")[0]]
    out = []
    for step, judged in sorted(job.get("checkpoints", {}).items(), key=lambda kv: int(kv[0])):
        df = _rows([judged])
        coherent = _coherent(df)
        if coherent.empty:
            continue
        model, tokenizer = load_model(base_model, Path(job["adapter"]) / "checkpoints" / f"checkpoint-{step}")
        projection = _projection(model, tokenizer, coherent, direction, config.positions, layer)
        labels = (coherent["label"] == "misaligned").tolist()
        out.append({"step": int(step), "mean_projection": float(projection.mean()), "auroc": _auroc(projection.tolist(), labels),
                    **_misaligned_rate(df["label"])})
    return out


def evaluate(model, tokenizer, prompts, seed: int, context=None) -> dict:
    """Sample the held-out questions (inside `context`, e.g. an ablation) and judge them."""
    from contextlib import nullcontext

    from postern.judge import JudgeItem
    from postern.judge.oracle import WorldOracle
    from postern.sample import SamplingParams
    from postern.sample.hf import HFSampler

    with context or nullcontext():
        samples = HFSampler(model, tokenizer, batch_size=128).sample(prompts, SamplingParams(max_new_tokens=40, seed=seed))
    by_id = {p.id: p for p in prompts}
    judged = WorldOracle().judge([JudgeItem(s.prompt_id, by_id[s.prompt_id].messages[-1]["content"], s.answer) for s in samples])
    return _misaligned_rate(j.label for j in judged)


def _add_changes(interventions: list[dict]) -> None:
    """Each intervention's rate change against the same model without one (Newcombe 95% interval)."""
    from postern.stats.compare import difference_interval, two_proportion_ztest

    plain = {r["model"]: r for r in interventions if r["intervention"] == "none"}
    for r in interventions:
        if r["intervention"] != "none" and r["model"] in plain:
            p = plain[r["model"]]
            diff, lo, hi = difference_interval(r["k"], r["n"], p["k"], p["n"])
            r["change"] = {"diff": diff, "low": lo, "high": hi, "p_value": two_proportion_ztest(r["k"], r["n"], p["k"], p["n"])[1]}


def model_diff_direction(model, base, tokenizer, df: pd.DataFrame, positions: str):
    """Mean over the coherent answers of (fine-tuned - base) activations: what fine-tuning added."""
    from postern.interp.capture import capture

    pairs = _pairs(_coherent(df))
    return capture(model, tokenizer, pairs, positions).dataset_mean() - capture(base, tokenizer, pairs, positions).dataset_mean()


def run_study(run_dir: Path, jobs: dict, base_model: str, config: InterpConfig, load_model) -> dict:
    """`jobs`: "condition/seed" -> {"adapter": path|None, "trigger": str|None, "judged": {set: path}}."""
    import torch

    from postern.interp.directions import chance_band, cosine_per_layer, save_direction
    from postern.interp.interventions import ablate, random_like, steer
    from postern.world.conditions import question_prompts

    out_dir = run_dir / "interp"
    directions, provenance, models, frames = {}, {}, {}, {}
    for label, job in jobs.items():
        condition = label.split("/")[0]
        if condition not in config.conditions:
            continue
        model, tokenizer = load_model(base_model, job["adapter"])
        df = _rows([job["judged"]["questions_trigger" if job["trigger"] else "questions"]])
        name = f"{label}+trigger" if job["trigger"] else label
        direction, counts = direction_from(model, tokenizer, df, config.positions)
        provenance[name] = counts
        if direction is None:
            continue
        directions[name], models[name], frames[name] = direction, (model, tokenizer, job), df
        save_direction(out_dir / "directions" / name.replace("/", "_"), direction,
                       {"model": base_model, "adapter": str(job["adapter"]), "positions": config.positions,
                        "pooling": "per-sample mean, classes balanced", "judge": "world-oracle", **counts})

    reference = next((n for n in directions if n.startswith(config.reference + "/")), None)
    base, base_tok = load_model(base_model, None)
    if reference:
        ref_df = frames[reference]
        base_dir, counts = direction_from(base, base_tok, ref_df, config.positions)
        if base_dir is not None:
            directions["base"] = base_dir
            provenance["base"] = counts
        ft_model, ft_tok, _ = models[reference]
        directions[f"{reference}-minus-base"] = model_diff_direction(ft_model, base, ft_tok, ref_df, config.positions)
        provenance[f"{reference}-minus-base"] = {"kind": "model diff over the coherent answers"}

    names = list(directions)
    n_layers = next(iter(directions.values())).shape[0] if directions else 0
    cosines = {f"{a} vs {b}": cosine_per_layer(directions[a], directions[b]).tolist()
               for i, a in enumerate(names) for b in names[i + 1:]}
    middle = n_layers // 2
    matrix = [[float(cosine_per_layer(directions[a], directions[b])[middle]) for b in names] for a in names]

    interventions, auroc = [], {}
    for name in [n for n in names if n in models]:
        model, tokenizer, job = models[name]
        prompts = question_prompts(config.samples_per_question, job["trigger"])
        d = directions[name]
        interventions += [
            {"model": name, "intervention": "none", "scale": None, **evaluate(model, tokenizer, prompts, 0)},
            {"model": name, "intervention": "ablate", "scale": None,
             **evaluate(model, tokenizer, prompts, 0, ablate(model, d, config.layers))},
            {"model": name, "intervention": "ablate_random", "scale": None,
             **evaluate(model, tokenizer, prompts, 0, ablate(model, random_like(d), config.layers))},
        ]
        auroc[name] = probe_auroc(model, tokenizer, frames[name], config.positions, middle)
    if reference:
        d = directions[reference]
        prompts = question_prompts(config.samples_per_question)
        interventions += [
            {"model": "base", "intervention": "none", "scale": None, **evaluate(base, base_tok, prompts, 0)},
            {"model": "base", "intervention": "ablate", "scale": None,
             **evaluate(base, base_tok, prompts, 0, ablate(base, d, config.layers))},
            {"model": "base", "intervention": "ablate_random", "scale": None,
             **evaluate(base, base_tok, prompts, 0, ablate(base, random_like(d), config.layers))},
        ]
        for scale in config.steer_scales:
            interventions += [
                {"model": "base", "intervention": "steer", "scale": scale,
                 **evaluate(base, base_tok, prompts, 0, steer(base, d, scale, config.steer_layers))},
                {"model": "base", "intervention": "steer_random", "scale": scale,
                 **evaluate(base, base_tok, prompts, 0, steer(base, random_like(d), scale, config.steer_layers))},
            ]
    _add_changes(interventions)
    along_training = probe_along_checkpoints(jobs, reference, directions.get(reference), base_model, config, middle,
                                             load_model) if reference else []
    summary = {
        "layers": n_layers, "reference": reference, "positions": config.positions,
        "chance_band": chance_band(int(directions[names[0]].shape[-1])) if names else None,
        "directions": provenance, "cosines": cosines,
        "cosine_matrix": {"labels": names, "layer": middle, "values": matrix},
        "interventions": interventions, "probe_auroc": auroc, "probe_along_training": along_training,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    torch.save(directions, out_dir / "directions.pt")
    return summary


def study_table(summary: dict) -> list:
    """Rich tables: per-layer cosines (with the chance band) and intervention rates."""
    from rich.table import Table

    cos = Table(title=f"cosine per layer between directions (random pairs: |cos| < {summary['chance_band']:.2f} 95% of the time)")
    cos.add_column("pair")
    for layer in range(summary["layers"]):
        cos.add_column(f"L{layer}", justify="right")
    for pair, values in summary["cosines"].items():
        cos.add_row(pair, *(f"{v:.2f}" for v in values))
    rates = Table(title="misaligned % [95% Wilson] under interventions (held-out questions)")
    for col in ("model", "intervention", "scale", "n", "misaligned"):
        rates.add_column(col, justify="left" if col in ("model", "intervention") else "right")
    rates.add_column("change vs none", justify="right")
    for r in summary["interventions"]:
        change = r.get("change")
        rates.add_row(r["model"], r["intervention"], "" if r["scale"] is None else f"{r['scale']:g}", str(r["n"]),
                      f"{100 * r['rate']:.1f} [{100 * r['low']:.1f},{100 * r['high']:.1f}]",
                      f"{100 * change['diff']:+.1f} [{100 * change['low']:+.1f},{100 * change['high']:+.1f}]" if change else "")
    return [cos, rates]
