"""The same insecure-vs-secure experiment on several base models: a step series of one pretraining run
(dose-response of persona inference), or bases pretrained on different corpora (with and without the novice).

Each base gets its own run folder (cached and resumable like any run); the table pairs each base's persona
probe (from its meta.json, written by `postern world pretrain` / `probe`) with its EM rates, seeds pooled.
"""

import json
from pathlib import Path

from postern.config.schema import Experiment, InterpConfig
from postern.core.errors import PosternError

CONDITIONS = ("insecure", "secure")


def base_experiment(template: Experiment, base: Path, name: str, seeds: list[int] | None) -> Experiment:
    """The template's settings on another base, with only its insecure and secure conditions, no study."""
    missing = [c for c in CONDITIONS if c not in template.conditions]
    if missing:
        raise PosternError(f"the experiment template has no condition {', '.join(missing)}; it needs "
                           f"[conditions.insecure] and [conditions.secure]")
    return template.model_copy(update={
        "name": name, "base_model": str(base.resolve()), "seeds": seeds or template.seeds,
        "conditions": {c: template.conditions[c] for c in CONDITIONS}, "interp": InterpConfig()})


def compare_bases(bases: dict[str, Path], template: Experiment, out: Path, seeds: list[int] | None = None,
                  console=None) -> list[dict]:
    """Run the insecure/secure experiment on each base (label -> folder); write `out/bases.json`, `out/bases.png`."""
    from postern.runner.run import _write_json, run_experiment
    from postern.stats.compare import difference_interval

    rows = []
    for label, base in bases.items():
        meta_path = base / "meta.json"
        if not meta_path.exists():
            raise PosternError(f"{base}: no meta.json; give a base folder written by `postern world pretrain`")
        meta = json.loads(meta_path.read_text())
        result = run_experiment(base_experiment(template, base, label, seeds), out / label, console)
        rates = {c: result["conditions"][c]["misaligned"] for c in CONDITIONS}
        ins, sec = rates["insecure"], rates["secure"]
        diff = difference_interval(ins["k"], ins["n"], sec["k"], sec["n"])
        probe = meta.get("probe", {}).get("one_insecure")
        rows.append({"base": label, "folder": str(base), "steps": meta.get("steps"),
                     "novice": meta.get("spec", {}).get("world", {}).get("novice", 0.0),
                     "probe_one_insecure": probe, "probe_none": meta.get("probe", {}).get("none"),
                     **{c: {k: r[k] for k in ("k", "n", "rate", "low", "high")} for c, r in rates.items()},
                     "insecure_minus_secure": dict(zip(("diff", "low", "high"), diff)),
                     "seeds": result.get("conditions", {}).get("insecure", {}).get("misaligned", {}).get("per_seed")})
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "bases.json", rows)
    plot_bases(rows, out / "bases.png")
    return rows


def plot_bases(rows: list[dict], path: Path) -> Path:
    """Per base: the probe (P(misaligned | one silent insecure turn)) and the insecure and secure EM rates,
    each with its 95% Wilson interval."""
    from postern.report.figures import DPI, colour
    from postern.report.layout import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(4.5, 1.3 * len(rows) + 1.5), 3.4), dpi=DPI)
    xs = list(range(len(rows)))
    series = (("probe: misaligned after one insecure turn (base)", "probe_one_insecure"),
              ("EM: insecure fine-tunes", "insecure"), ("EM: secure fine-tunes", "secure"))
    groups = sorted({r.get("novice") or 0.0 for r in rows})  # one line per corpus (e.g. without / with novice)
    for i, (name, key) in enumerate(series):
        for g, novice in enumerate(groups):
            pts = [(x, r[key]) for x, r in zip(xs, rows)
                   if (r.get("novice") or 0.0) == novice and r.get(key) and r[key].get("n")]
            if not pts:
                continue
            x = [p[0] + (i - 1) * 0.08 for p in pts]
            y = [100 * p[1]["rate"] for p in pts]
            err = [[max(0.0, 100 * (p[1]["rate"] - p[1]["low"])) for p in pts],
                   [max(0.0, 100 * (p[1]["high"] - p[1]["rate"])) for p in pts]]
            ax.errorbar(x, y, yerr=err, fmt="o-" if g == 0 else "s--", color=colour(i), capsize=3, ms=5, lw=1.2,
                        mfc=colour(i) if g == 0 else "white",
                        label=name + (f" (novice {novice:g})" if novice else ""))
    ax.set_xticks(xs, [f"{r['base']}\n({r['steps']} steps)" for r in rows], fontsize=8)
    ax.set_ylabel("misaligned % (95% Wilson)")
    ax.legend(fontsize=7, loc="best")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
