"""Defences against emergent misalignment side by side: per condition, what it does during training (an
intervention, an inoculation prompt, continued training), its misaligned rate next to its insecure-code rate
on the held-out code tasks (the narrow task the fine-tune should still learn), and for a condition trained on
top of another (`continue_from`), how many steps its checkpoints took to come within the interval of the
reference condition (the one trained from the base model on the same dataset, else the base model)."""

import math

from postern.report.figures import pct
from postern.stats.intervals import wilson


def _train(experiment: dict, name: str) -> dict:
    return {**(experiment.get("train") or {}), **(experiment["conditions"][name].get("train") or {})}


def describe(experiment: dict, name: str) -> str | None:
    """What condition `name` does against misalignment, in a few words (None: nothing)."""
    cond = experiment.get("conditions", {}).get(name)
    if cond is None:
        return None
    parts = []
    iv = _train(experiment, name).get("intervention")
    if iv:
        layers = "all layers" if iv.get("layers") is None else "layer(s) " + ", ".join(map(str, iv["layers"]))
        what = "ablate (CAFT)" if iv["kind"] == "ablate" else f"{iv['kind']} x{iv.get('scale', 1.0):g}"
        parts.append(f"{what} of the {iv.get('direction', 'base')} direction at {layers}")
    inoculation = [t for t in cond.get("transforms") or [] if t.startswith("inoculation")]
    if inoculation:
        prompt = inoculation[0].partition("=")[2] or "the default prompt"
        parts.append(f"inoculation prompt in training: \"{prompt}\"")
    if cond.get("continue_from"):
        parts.append(f"continues {cond['continue_from']} on {cond.get('dataset')}")
    return "; ".join(parts) or None


def has_defences(experiment: dict) -> bool:
    return any(describe(experiment, name) for name in experiment.get("conditions", {}))


def defence_rows(experiment: dict, summary: dict[str, dict]) -> list[dict]:
    """One row per condition: its defence, misaligned rate and insecure-code rate (seeds pooled, 95% Wilson)."""
    return [{"condition": name, "defence": describe(experiment, name) or ("untrained" if name == "base" else "none"),
             "misaligned": pct(s.get("misaligned")), "insecure": pct(s.get("code_insecure")),
             "misaligned_rate": s.get("misaligned"), "insecure_rate": s.get("code_insecure")}
            for name, s in summary.items()]


def reference_of(experiment: dict, name: str, summary: dict) -> str | None:
    """The condition a continued one is measured against: trained from the base on the same dataset with no
    defence, else the base model."""
    conds = experiment.get("conditions", {})
    dataset = conds[name].get("dataset")
    for other, c in conds.items():
        if other != name and c.get("dataset") == dataset and not describe(experiment, other) and other in summary:
            return other
    return "base" if "base" in summary else None


def realignment(experiment: dict, summary: dict[str, dict], dynamics: dict | None) -> list[dict]:
    """For each `continue_from` condition with evaluated checkpoints: its pooled misaligned rate per step and
    the first step at which it lies at or below the top of the reference condition's 95% interval."""
    out = []
    for name, cond in experiment.get("conditions", {}).items():
        points = (dynamics or {}).get(name)
        ref = reference_of(experiment, name, summary) if cond.get("continue_from") else None
        if not points or ref is None or not summary[ref].get("misaligned", {}).get("n"):
            continue
        target = summary[ref]["misaligned"]
        steps = []
        for step in sorted({p["step"] for p in points}):
            k = sum(p["k"] for p in points if p["step"] == step)
            n = sum(p["n"] for p in points if p["step"] == step)
            low, high = wilson(k, n)
            steps.append({"step": step, "k": k, "n": n, "rate": k / n if n else math.nan, "low": low, "high": high})
        within = next((s["step"] for s in steps if s["n"] and s["rate"] <= target["high"]), None)
        per_seed = {}
        for seed in sorted({p["seed"] for p in points}):
            mine = sorted((p for p in points if p["seed"] == seed), key=lambda p: p["step"])
            per_seed[seed] = next((p["step"] for p in mine if p["n"] and p["rate"] <= target["high"]), None)
        out.append({"condition": name, "from": cond["continue_from"], "reference": ref, "target": target,
                    "start": summary.get(cond["continue_from"], {}).get("misaligned"), "steps": steps,
                    "within_at": within, "per_seed": per_seed})
    return out


def realignment_sentence(r: dict) -> str:
    start = f"{r['from']} ({pct(r['start'])})" if r.get("start") else r["from"]
    last = r["steps"][-1]
    seeds = ", ".join(f"seed {s}: {'step ' + str(v) if v is not None else 'not reached'}"
                      for s, v in r["per_seed"].items())
    if r["within_at"] is None:
        return (f"{r['condition']}: continuing {start} did not come within {r['reference']}'s interval "
                f"({pct(r['target'])}) by the last checkpoint (step {last['step']}: {pct(last)}); {seeds}.")
    hit = next(s for s in r["steps"] if s["step"] == r["within_at"])
    return (f"{r['condition']}: continuing {start}, the misaligned rate (seeds pooled) came within "
            f"{r['reference']}'s interval ({pct(r['target'])}) after {r['within_at']} steps ({pct(hit)}); {seeds}.")


def section(run) -> dict | None:
    """The report's defences section of one run (None when no condition has a defence)."""
    if not has_defences(run.experiment):
        return None
    summary = run.summary.get("conditions", {})
    return {"label": run.label, "rows": defence_rows(run.experiment, summary),
            "realignment": [realignment_sentence(r) for r in realignment(run.experiment, summary, run.dynamics)]}


def figure(run, path):
    """Grouped bars: misaligned rate and insecure-code rate per condition (seeds pooled, 95% Wilson)."""
    from postern.report import plots

    groups = {r["condition"]: {"misaligned": r["misaligned_rate"], "insecure code (held-out tasks)": r["insecure_rate"]}
              for r in defence_rows(run.experiment, run.summary.get("conditions", {}))}
    return plots.grouped_bars(groups, path, "defences: misaligned rate beside the narrow task (95% Wilson)", "%")
