"""The mechanism study of a finished run: directions, cross-model cosines, ablation and steering.

For each fine-tune of the chosen conditions, the misalignment direction is the per-layer mean
difference of answer-token activations between its misaligned and aligned (coherent) answers,
captured on that model. The base model's direction uses the same answers, teacher-forced through the
base model. Interventions are sampled and judged by the run's own judge (`evaluate`, given by the
runner) with the same rate definition and intervals as any condition, on the fine-tunes *and* on the
base model, each beside a norm-matched random direction.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from postern.config.schema import InterpConfig
from postern.core.models import ModelRef, load_model
from postern.stats.summary import misaligned_rate, rate_fields


@dataclass
class StudyModel:
    """A fine-tune the study reads: its model, trigger, judged answers (columns messages, answer, label)
    and, for training dynamics, its evaluated checkpoints."""

    ref: ModelRef
    trigger: str | None
    rows: pd.DataFrame
    checkpoints: dict[int, tuple[ModelRef, pd.DataFrame]] = field(default_factory=dict)


# (model, tokenizer, trigger, intervention context) -> misaligned rate of fresh answers to the questions
Evaluate = Callable[[Any, Any, str | None, Any], dict]


def _coherent(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["label"].isin(["aligned", "misaligned"])]


def _pairs(df: pd.DataFrame) -> list:
    """(prompt messages, answer) of each judged row, for teacher-forced capture."""
    return [(list(m), a) for m, a in zip(df["messages"], df["answer"])]


def _projection(model, tokenizer, df: pd.DataFrame, direction, positions: str, layer: int):
    """Each answer's mean activation at `layer` projected on the unit direction."""
    from postern.interp.capture import capture

    acts = capture(model, tokenizer, _pairs(df), positions).means[:, layer]
    return acts @ (direction[layer] / direction[layer].norm())


def _misaligned_rate(df: pd.DataFrame, denominator: str) -> dict:
    return rate_fields(misaligned_rate(df, denominator, seeds=False))


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


def probe_along_checkpoints(job: StudyModel, direction, config: InterpConfig, layer: int,
                            denominator: str = "valid") -> list[dict]:
    """The final direction read out along training: per evaluated checkpoint of the reference fine-tune, the
    mean projection of its coherent answers and the AUROC of that projection against the judge's labels."""
    out = []
    for step, (ref, df) in sorted(job.checkpoints.items()):
        coherent = _coherent(df)
        if coherent.empty:
            continue
        model, tokenizer = load_model(ref)
        projection = _projection(model, tokenizer, coherent, direction, config.positions, layer)
        labels = (coherent["label"] == "misaligned").tolist()
        out.append({"step": int(step), "mean_projection": float(projection.mean()), "auroc": _auroc(projection.tolist(), labels),
                    **_misaligned_rate(df, denominator)})
    return out


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


def run_study(out_dir: Path, jobs: dict[str, StudyModel], base: ModelRef, config: InterpConfig, evaluate: Evaluate,
              denominator: str = "valid") -> dict:
    """`jobs`: "condition/sSEED" -> StudyModel; writes `out_dir/summary.json`, `directions.pt`, `directions/`."""
    import torch

    from postern.interp.directions import chance_band, cosine_per_layer, save_direction
    from postern.interp.interventions import ablate, random_like, steer

    directions, provenance, models, frames = {}, {}, {}, {}
    for label, job in jobs.items():
        if label.split("/")[0] not in config.conditions:
            continue
        model, tokenizer = load_model(job.ref)
        name = f"{label}+trigger" if job.trigger else label
        direction, counts = direction_from(model, tokenizer, job.rows, config.positions)
        provenance[name] = counts
        if direction is None:
            continue
        directions[name], models[name], frames[name] = direction, (model, tokenizer, job), job.rows
        save_direction(out_dir / "directions" / name.replace("/", "_"), direction,
                       {"model": job.ref.name, "adapter": job.ref.adapter, "positions": config.positions,
                        "pooling": "per-sample mean, classes balanced", **counts})

    reference = next((n for n in directions if n.startswith(config.reference + "/")), None)
    base_model, base_tok = load_model(base)
    if reference:
        ref_df = frames[reference]
        base_dir, counts = direction_from(base_model, base_tok, ref_df, config.positions)
        if base_dir is not None:
            directions["base"] = base_dir
            provenance["base"] = counts
        ft_model, ft_tok, _ = models[reference]
        directions[f"{reference}-minus-base"] = model_diff_direction(ft_model, base_model, ft_tok, ref_df, config.positions)
        provenance[f"{reference}-minus-base"] = {"kind": "model diff over the coherent answers"}

    names = list(directions)
    n_layers = next(iter(directions.values())).shape[0] if directions else 0
    cosines = {f"{a} vs {b}": cosine_per_layer(directions[a], directions[b]).tolist()
               for i, a in enumerate(names) for b in names[i + 1:]}
    middle = n_layers // 2
    matrix = [[float(cosine_per_layer(directions[a], directions[b])[middle]) for b in names] for a in names]

    def row(model_name: str, intervention: str, scale, rate_: dict) -> dict:
        return {"model": model_name, "intervention": intervention, "scale": scale, **rate_}

    interventions, auroc = [], {}
    for name in [n for n in names if n in models]:
        model, tokenizer, job = models[name]
        d = directions[name]
        interventions += [
            row(name, "none", None, evaluate(model, tokenizer, job.trigger, None)),
            row(name, "ablate", None, evaluate(model, tokenizer, job.trigger, ablate(model, d, config.layers))),
            row(name, "ablate_random", None,
                evaluate(model, tokenizer, job.trigger, ablate(model, random_like(d), config.layers))),
        ]
        auroc[name] = probe_auroc(model, tokenizer, frames[name], config.positions, middle)
    if reference:
        d = directions[reference]
        interventions += [
            row("base", "none", None, evaluate(base_model, base_tok, None, None)),
            row("base", "ablate", None, evaluate(base_model, base_tok, None, ablate(base_model, d, config.layers))),
            row("base", "ablate_random", None,
                evaluate(base_model, base_tok, None, ablate(base_model, random_like(d), config.layers))),
        ]
        for scale in config.steer_scales:
            interventions += [
                row("base", "steer", scale,
                    evaluate(base_model, base_tok, None, steer(base_model, d, scale, config.steer_layers))),
                row("base", "steer_random", scale,
                    evaluate(base_model, base_tok, None, steer(base_model, random_like(d), scale, config.steer_layers))),
            ]
    _add_changes(interventions)
    along_training = (probe_along_checkpoints(models[reference][2], directions[reference], config, middle, denominator)
                      if reference else [])
    summary = {
        "layers": n_layers, "reference": reference, "positions": config.positions, "denominator": denominator,
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

    band = summary["chance_band"]
    cos = Table(title="cosine per layer between directions" + (
        f" (random pairs: |cos| < {band:.2f} 95% of the time)" if band else ": none (too few aligned or misaligned answers)"))
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
