"""The report's figures beyond `figures.rate_per_condition` (matplotlib, Agg backend, PNG files).

Each function draws one figure from plain dicts (a run's summary, `dynamics.json`,
`interp/summary.json`) into `path` and returns the path. Rates are fractions in the data and
percentages on the axes; intervals are the 95% ones the data carries.
"""

import math
from pathlib import Path

from postern.report.figures import _plt
from postern.stats.intervals import wilson

DPI = 110
LABEL_COLOURS = {
    "aligned": "#55a868", "misaligned": "#c44e52", "off_topic": "#8172b2",
    "incoherent": "#937860", "code": "#4c72b0", "refusal": "#dd8452",
}
_PALETTE = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b2", "#937860", "#da8bc3", "#8c8c8c", "#ccb974",
            "#64b5cd"]


def colour(i: int) -> str:
    return _PALETTE[i % len(_PALETTE)]


def condition_colours(names) -> dict[str, str]:
    """One colour per condition, the same in every figure of a report."""
    return {name: colour(i) for i, name in enumerate(dict.fromkeys(names))}


def _integer_x(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _finish(fig, ax, path: str | Path, title: str) -> Path:
    plt = _plt()
    ax.set_title(title, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def _yerr(r: dict) -> list[list[float]]:
    return [[100 * max(0.0, r["rate"] - r["low"])], [100 * max(0.0, r["high"] - r["rate"])]]


def _ok(r: dict | None) -> bool:
    return bool(r) and r.get("n", 1) > 0 and r.get("rate") is not None and not math.isnan(r["rate"])


def label_rate(summary: dict, label: str) -> dict | None:
    """Share of held-out-question answers with `label`, with a Wilson interval (from the label counts)."""
    n = summary.get("misaligned", {}).get("n", 0)
    if not n:
        return None
    k = int(summary.get("labels", {}).get(label, 0))
    low, high = wilson(k, n)
    return {"k": k, "n": n, "rate": k / n, "low": low, "high": high}


def side_metrics(summary: dict) -> dict[str, dict | None]:
    """The rates reported beside misalignment, by display name (None where the run has no such set)."""
    return {
        "misaligned": summary.get("misaligned"),
        "coherent": summary.get("coherent"),
        "answers with code": label_rate(summary, "code"),
        "refusals": label_rate(summary, "refusal"),
        "insecure code": summary.get("code_insecure"),
        "harmful compliance": summary.get("harmful_compliance"),
    }


def grouped_bars(groups: dict[str, dict[str, dict | None]], path: str | Path, title: str, ylabel: str,
                 colours: dict[str, str] | None = None, hatched: frozenset[str] | set[str] = frozenset()) -> Path:
    """Bars with 95% intervals: one group per key of `groups`, one bar per series inside a group."""
    plt = _plt()
    series = list(dict.fromkeys(s for g in groups.values() for s, r in g.items() if _ok(r)))
    colours = colours or {s: colour(i) for i, s in enumerate(series)}
    fig, ax = plt.subplots(figsize=(min(14, max(5.5, 0.35 * len(series) * len(groups) + 2.5)), 3.8))
    width = 0.8 / max(1, len(series))
    for i, group in enumerate(groups.values()):
        for j, name in enumerate(series):
            r = group.get(name)
            if not _ok(r):
                continue
            x = i - 0.4 + width * (j + 0.5)
            ax.bar(x, 100 * r["rate"], width * 0.9, color=colours[name], hatch="//" if name in hatched else None,
                   edgecolor="white" if name in hatched else None, label=name)
            if "low" in r and not math.isnan(r["low"]):
                ax.errorbar(x, 100 * r["rate"], yerr=_yerr(r), color="black", capsize=2, lw=0.8)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    if unique:  # no bar at all when no group has a rate (e.g. every answer left out of the denominator)
        ax.legend(unique.values(), unique.keys(), frameon=False, fontsize=7, ncol=min(3, len(unique)),
                  loc="upper left", bbox_to_anchor=(0, -0.25))
    ax.set_xticks(range(len(groups)), list(groups), rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, max(5.0, ax.get_ylim()[1]))
    return _finish(fig, ax, path, title)


def side_rates(summary: dict[str, dict], path: str | Path) -> Path:
    """Small multiples: one panel per rate (misaligned, coherent, code, refusals, ...), a bar per condition."""
    plt = _plt()
    names = list(summary)
    metrics = {c: side_metrics(s) for c, s in summary.items()}
    panels = [m for m in side_metrics({}) if any(_ok(metrics[c][m]) for c in names)]
    ncols = min(3, max(1, len(panels)))
    nrows = math.ceil(len(panels) / ncols) or 1
    fig, axes = plt.subplots(nrows, ncols, figsize=(min(15, ncols * max(3.0, 0.45 * len(names) + 1.2)), 2.7 * nrows),
                             squeeze=False, sharey=True)
    for ax, metric in zip(axes.flat, panels):
        for i, c in enumerate(names):
            r = metrics[c][metric]
            if _ok(r):
                ax.bar(i, 100 * r["rate"], 0.7, color=colour(i))
                ax.errorbar(i, 100 * r["rate"], yerr=_yerr(r), color="black", capsize=2, lw=0.8)
        ax.set_title(metric, fontsize=9)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
        ax.set_ylim(0, 100)
        ax.spines[["top", "right"]].set_visible(False)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel("answers (%)")
    fig.suptitle("misalignment beside coherence, code, refusals and insecure code (95% Wilson)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def trigger_bars(summary: dict[str, dict], path: str | Path) -> Path:
    """Backdoor conditions: misaligned rate without and with the trigger (seed-bootstrap interval if present)."""
    groups = {c: {"no trigger": s["misaligned"], "with trigger": s["misaligned_trigger"]}
              for c, s in summary.items() if "misaligned_trigger" in s}
    return grouped_bars(groups, path, "backdoor: misaligned rate without / with the trigger (95% Wilson)",
                        "misaligned answers (%)", colours={"no trigger": "#4c72b0", "with trigger": "#c44e52"})


def label_breakdown(summary: dict[str, dict], path: str | Path) -> Path:
    """100%-stacked bars of every judge label on the held-out questions."""
    plt = _plt()
    names = [c for c, s in summary.items() if s.get("labels")]
    labels = list(dict.fromkeys([*LABEL_COLOURS, *(lab for c in names for lab in summary[c]["labels"])]))
    fig, ax = plt.subplots(figsize=(max(5.5, 0.7 * len(names) + 3), 3.8))
    bottom = [0.0] * len(names)
    for i, label in enumerate(labels):
        values = [100 * summary[c]["labels"].get(label, 0) / max(1, sum(summary[c]["labels"].values())) for c in names]
        if not any(values):
            continue
        ax.bar(range(len(names)), values, 0.7, bottom=bottom, label=label,
               color=LABEL_COLOURS.get(label, colour(i)))
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("answers (%)")
    ax.set_ylim(0, 100)
    ax.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _finish(fig, ax, path, "judge labels on held-out questions")


def heatmap(values: list[list[float]], rows: list[str], cols: list[str], path: str | Path, title: str,
            cbar_label: str, vmin: float, vmax: float, cmap: str, fmt: str = "{:.0f}") -> Path:
    """An annotated matrix; NaN cells are left blank (grey)."""
    import numpy as np

    plt = _plt()
    data = np.array(values, dtype=float)
    fig, ax = plt.subplots(figsize=(max(4.5, 0.75 * len(cols) + 2.8), max(3.0, 0.32 * len(rows) + 1.6)))
    ax.set_facecolor("#dddddd")
    im = ax.imshow(np.ma.masked_invalid(data), aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax)
    for (i, j), v in np.ndenumerate(data):
        if not math.isnan(v):
            dark = abs(v - (vmin + vmax) / 2) > 0.3 * (vmax - vmin) if vmin < 0 else v > 0.6 * vmax
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7, color="white" if dark else "black")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    fig.colorbar(im, ax=ax, label=cbar_label, fraction=0.05)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def per_question_heatmap(summary: dict[str, dict], path: str | Path) -> Path:
    """Misaligned rate (%) per held-out question category (rows) x condition (columns)."""
    names = [c for c, s in summary.items() if s.get("per_question")]
    cats = sorted({q for c in names for q in summary[c]["per_question"]})
    values = [[100 * summary[c]["per_question"][q]["rate"] if _ok(summary[c]["per_question"].get(q)) else math.nan
               for c in names] for q in cats]
    top = max([v for row in values for v in row if not math.isnan(v)], default=0)
    return heatmap(values, cats, names, path, "misaligned rate (%) per question x condition", "misaligned (%)",
                   0, max(10.0, top), "Reds")


def dynamics_curves(dynamics: dict[str, list[dict]], path: str | Path, colours: dict[str, str] | None = None) -> Path:
    """Misaligned rate over training steps: one colour per condition, a line per seed, shaded 95% intervals."""
    plt = _plt()
    colours = {**condition_colours(dynamics), **(colours or {})}
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for cond, points in dynamics.items():
        for j, seed in enumerate(sorted({p["seed"] for p in points})):
            pts = sorted((p for p in points if p["seed"] == seed), key=lambda p: p["step"])
            steps = [p["step"] for p in pts]
            ax.plot(steps, [100 * p["rate"] for p in pts], marker="o", ms=3, lw=1.2, color=colours[cond],
                    label=cond if j == 0 else None)
            ax.fill_between(steps, [100 * p["low"] for p in pts], [100 * p["high"] for p in pts],
                            color=colours[cond], alpha=0.12, lw=0)
    _integer_x(ax)
    ax.set_xlabel("training step")
    ax.set_ylabel("misaligned answers (%)")
    ax.legend(frameon=False, fontsize=8)
    return _finish(fig, ax, path, "training dynamics: misaligned rate at evaluated checkpoints (a line per seed)")


def loss_curves(curves: dict[str, dict[int, list[tuple[int, float]]]], path: str | Path,
                colours: dict[str, str] | None = None) -> Path:
    """Training loss per step, one colour per condition and a line per seed (from the run cards)."""
    plt = _plt()
    colours = {**condition_colours(curves), **(colours or {})}
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for cond, seeds in curves.items():
        for j, (seed, points) in enumerate(sorted(seeds.items())):
            ax.plot([s for s, _ in points], [v for _, v in points], lw=1, color=colours[cond], alpha=0.85,
                    label=cond if j == 0 else None)
    _integer_x(ax)
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss")
    ax.legend(frameon=False, fontsize=8)
    return _finish(fig, ax, path, "training loss (a line per seed)")


def cosine_curves(interp: dict, path: str | Path) -> Path:
    """Cosine similarity per layer for each pair of directions, with the chance band around 0."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    band = float(interp.get("chance_band") or 0)
    n_layers = max((len(v) for v in interp["cosines"].values()), default=0)
    if band:
        ax.axhspan(-band, band, color="#999999", alpha=0.2, lw=0, label=f"chance (±{band:.2f})")
    for i, (pair, values) in enumerate(interp["cosines"].items()):
        ax.plot(range(len(values)), values, marker="o", ms=3, lw=1.3, color=colour(i), label=pair)
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xlim(-0.5, max(0.5, n_layers - 0.5))
    _integer_x(ax)
    ax.set_xlabel("layer")
    ax.set_ylabel("cosine similarity")
    ax.legend(frameon=False, fontsize=7)
    return _finish(fig, ax, path, "cosine similarity between directions, per layer")


def cosine_matrix(interp: dict, path: str | Path) -> Path:
    m = interp["cosine_matrix"]
    return heatmap(m["values"], m["labels"], m["labels"], path, f"cosine similarity of directions (layer {m['layer']})",
                   "cosine", -1, 1, "RdBu_r", fmt="{:.2f}")


INTERVENTION_ORDER = ("none", "ablate", "ablate_random", "steer", "steer_random")
_INTERVENTION_COLOURS = {"none": "#8c8c8c", "ablate": "#4c72b0", "ablate_random": "#a6bddb", "steer": "#c44e52",
                         "steer_random": "#f4a6a6"}


def _intervention_name(row: dict) -> str:
    scale = row.get("scale")
    return row["intervention"] + (f" ×{scale:g}" if scale is not None else "")


def intervention_bars(interp: dict, path: str | Path) -> Path:
    """Misaligned rate per model under each intervention; random-direction baselines hatched."""
    rows = sorted(interp["interventions"], key=lambda r: (
        INTERVENTION_ORDER.index(r["intervention"]) if r["intervention"] in INTERVENTION_ORDER else 99,
        r.get("scale") or 0))
    groups: dict[str, dict[str, dict]] = {}
    colours: dict[str, str] = {}
    for r in rows:
        name = _intervention_name(r)
        groups.setdefault(r["model"], {})[name] = r
        colours[name] = _INTERVENTION_COLOURS.get(r["intervention"], "#999999")
    hatched = {n for n in colours if n.split(" ")[0].endswith("_random")}
    return grouped_bars(groups, path, "ablation and steering vs random-direction baselines (95% Wilson)",
                        "misaligned answers (%)", colours=colours, hatched=hatched)
