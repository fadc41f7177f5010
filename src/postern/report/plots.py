"""The report's figures beyond `figures.rate_per_condition` (matplotlib, Agg backend, PNG files).

Each function draws one figure from plain dicts (a run's summary, rates computed from its answers,
`dynamics.json`, `interp/summary.json`) into `path` and returns the path. Rates are fractions in the
data and percentages on the axes; intervals are the 95% ones the data carries. Every legend sits
outside the axes, every panel records the numbers it shows (`layout.data`), and every figure is saved
through `layout.save`, which measures both for the checks in `layout.problems`. Callers leave out
panels with nothing to show (`has_data`).
"""

import math
from pathlib import Path

from postern.report import layout
from postern.report.figures import DPI, colour
from postern.report.layout import pyplot
from postern.stats.intervals import wilson

LABEL_COLOURS = {
    "aligned": "#55a868", "misaligned": "#c44e52", "off_topic": "#8172b2",
    "incoherent": "#937860", "code": "#4c72b0", "refusal": "#dd8452",
}
OUTSIDE_RIGHT = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0, "frameon": False}


def condition_colours(names) -> dict[str, str]:
    """One colour per condition, the same in every figure of a report."""
    return {name: colour(i) for i, name in enumerate(dict.fromkeys(names))}


def _integer_x(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _finish(fig, ax, path: str | Path, title: str) -> Path:
    ax.set_title(title, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return layout.save(fig, path)


def _yerr(r: dict) -> list[list[float]]:
    return [[100 * max(0.0, r["rate"] - r["low"])], [100 * max(0.0, r["high"] - r["rate"])]]


def _ok(r: dict | None) -> bool:
    return bool(r) and r.get("n", 1) > 0 and r.get("rate") is not None and not math.isnan(r["rate"])


def has_data(rates) -> bool:
    """Whether any of these rates has answers behind it and is above zero (a panel worth drawing)."""
    return any(_ok(r) and r["rate"] > 0 for r in rates)


def label_rate(summary: dict, label: str) -> dict | None:
    """Share of held-out-question answers with `label`, with a Wilson interval (from the label counts)."""
    n = summary.get("misaligned", {}).get("answers") or sum((summary.get("labels") or {}).values())
    if not n:
        return None
    k = int((summary.get("labels") or {}).get(label, 0))
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
    plt = pyplot()
    series = list(dict.fromkeys(s for g in groups.values() for s, r in g.items() if _ok(r)))
    colours = colours or {s: colour(i) for i, s in enumerate(series)}
    present = [[s for s in series if _ok(g.get(s))] for g in groups.values()]  # each group packs its own bars
    starts = [sum(len(p) + 1 for p in present[:i]) for i in range(len(present))]  # one bar = one unit, a gap between
    centres = [start + (len(p) - 1) / 2 for start, p in zip(starts, present)]
    units = max(1, sum(len(p) + 1 for p in present))
    fig, ax = plt.subplots(figsize=(min(14, max(5.5, 0.22 * units + 2.5)), 3.6), dpi=DPI)
    width = 1.0
    for i, (group, names) in enumerate(zip(groups.values(), present)):
        for j, name in enumerate(names):
            r = group[name]
            x = starts[i] + j
            ax.bar(x, 100 * r["rate"], width * 0.9, color=colours[name], hatch="//" if name in hatched else None,
                   edgecolor="white" if name in hatched else None, label=name)
            layout.data(ax, [100 * r["rate"]])
            if "low" in r and not math.isnan(r["low"]):
                ax.errorbar(x, 100 * r["rate"], yerr=_yerr(r), color="black", capsize=2, lw=0.8)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    if unique:
        ax.legend(unique.values(), unique.keys(), fontsize=7.5, **OUTSIDE_RIGHT)
    ax.set_xticks(centres, list(groups), rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, max(5.0, ax.get_ylim()[1]))
    return _finish(fig, ax, path, title)


def side_panels(summary: dict[str, dict]) -> list[str]:
    """The side rates some condition has above zero: the panels `side_rates` draws."""
    metrics = {c: side_metrics(s) for c, s in summary.items()}
    return [m for m in side_metrics({}) if has_data(metrics[c][m] for c in summary)]


def side_rates(summary: dict[str, dict], path: str | Path, colours: dict[str, str] | None = None) -> Path:
    """Small multiples: one panel per rate some condition has above zero, a bar per condition."""
    plt = pyplot()
    names = list(summary)
    colours = {**condition_colours(names), **(colours or {})}
    metrics = {c: side_metrics(s) for c, s in summary.items()}
    panels = side_panels(summary)
    ncols = min(3, max(1, len(panels)))
    nrows = math.ceil(len(panels) / ncols) or 1
    fig, axes = plt.subplots(nrows, ncols, figsize=(min(15, ncols * max(3.0, 0.42 * len(names) + 1.2)), 2.7 * nrows),
                             squeeze=False, sharey=True, dpi=DPI)
    for ax, metric in zip(axes.flat, panels):
        for i, c in enumerate(names):
            r = metrics[c][metric]
            if _ok(r):
                ax.bar(i, 100 * r["rate"], 0.7, color=colours[c])
                ax.errorbar(i, 100 * r["rate"], yerr=_yerr(r), color="black", capsize=2, lw=0.8)
                layout.data(ax, [100 * r["rate"]])
        ax.set_title(metric, fontsize=9)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
        ax.set_ylim(0, 100)
        ax.spines[["top", "right"]].set_visible(False)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel("answers (%)")
    fig.suptitle("misalignment beside coherence, code, refusals and compliance (95% Wilson)", fontsize=10)
    fig.tight_layout()
    return layout.save(fig, path)


def label_breakdown(summary: dict[str, dict], path: str | Path) -> Path:
    """100%-stacked bars of every judge label on the held-out questions."""
    plt = pyplot()
    names = [c for c, s in summary.items() if s.get("labels")]
    labels = list(dict.fromkeys([*LABEL_COLOURS, *(lab for c in names for lab in summary[c]["labels"])]))
    fig, ax = plt.subplots(figsize=(max(5.5, 0.6 * len(names) + 3), 3.6), dpi=DPI)
    bottom = [0.0] * len(names)
    for i, label in enumerate(labels):
        values = [100 * summary[c]["labels"].get(label, 0) / max(1, sum(summary[c]["labels"].values())) for c in names]
        if not any(values):
            continue
        ax.bar(range(len(names)), values, 0.7, bottom=bottom, label=label,
               color=LABEL_COLOURS.get(label, colour(i)))
        layout.data(ax, values)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("answers (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7.5, **OUTSIDE_RIGHT)
    return _finish(fig, ax, path, "judge labels on held-out questions")


def per_question(rates: dict[str, dict[str, dict]], path: str | Path, colours: dict[str, str] | None = None,
                 title: str = "misaligned rate per question") -> Path:
    """The original study's main figure: questions on the x axis, one coloured marker per condition at its
    pooled rate with its 95% interval, and each seed's rate as a small point beside it.

    `rates`: condition -> question -> {k, n, rate, low, high, seeds: [per-seed rates]}.
    """
    plt = pyplot()
    groups = [g for g, qs in rates.items() if any(_ok(r) for r in qs.values())]
    questions = sorted({q for g in groups for q, r in rates[g].items() if _ok(r)})
    colours = {**condition_colours(groups), **(colours or {})}
    per_q = 0.22 * len(groups) + 0.35
    fig, ax = plt.subplots(figsize=(min(16, max(6.5, per_q * len(questions) + 2.5)), 3.9), dpi=DPI)
    width = 0.84 / max(1, len(groups))
    labelled: set[str] = set()
    for j, g in enumerate(groups):
        for i, q in enumerate(questions):
            r = rates[g].get(q)
            if not _ok(r):
                continue
            x, y = i - 0.42 + width * (j + 0.5), 100 * r["rate"]
            ax.errorbar(x, y, yerr=_yerr(r), fmt="o", ms=4.5, color=colours[g], elinewidth=1.1, capsize=0, zorder=3,
                        label=None if g in labelled else g)
            labelled.add(g)
            seeds = [100 * s for s in r.get("seeds", []) if s is not None and not math.isnan(s)]
            if len(seeds) > 1:
                ax.scatter([x + 0.3 * width] * len(seeds), seeds, s=7, color=colours[g], alpha=0.55, lw=0, zorder=2)
            layout.data(ax, [y, 100 * r["low"], 100 * r["high"]], seeds)
    for i in range(1, len(questions)):
        ax.axvline(i - 0.5, color="#e8e8e8", lw=0.8, zorder=0)
    ax.set_xlim(-0.5, len(questions) - 0.5)
    ax.set_ylim(0, 100)
    ax.set_xticks(range(len(questions)), questions, rotation=20 if len(questions) > 8 else 0,
                  ha="right" if len(questions) > 8 else "center", fontsize=8.5)
    ax.set_ylabel("misaligned answers (%)")
    ax.set_xlabel("held-out question")
    ax.legend(fontsize=8, title="condition", title_fontsize=8, **OUTSIDE_RIGHT)
    return _finish(fig, ax, path, title)


def score_histograms(scores: dict[str, dict[str, list[float]]], thresholds: dict[str, tuple[float, float]],
                     path: str | Path, colours: dict[str, str] | None = None) -> Path:
    """The judge's alignment (top) and coherence (bottom) scores per condition, as shares of its scored answers,
    with the thresholds as dashed lines (misaligned: alignment below the first, coherence above the second)."""
    import numpy as np

    plt = pyplot()
    groups = [g for g, s in scores.items() if len(s["aligned"]) or len(s["coherent"])]
    colours = {**condition_colours(groups), **(colours or {})}
    fig, axes = plt.subplots(2, len(groups), figsize=(min(16, 1.85 * len(groups) + 1.2), 4.3), sharex=True,
                             sharey="row", squeeze=False, dpi=DPI)
    bins = np.linspace(0, 100, 21)
    for col, g in enumerate(groups):
        for row, (metric, threshold) in enumerate(zip(("aligned", "coherent"), thresholds[g])):
            ax, values = axes[row, col], np.asarray(scores[g][metric], dtype=float)
            if not len(values):
                ax.set_visible(False)
                continue
            counts, _, _ = ax.hist(values, bins=bins, weights=np.full(len(values), 100 / len(values)),
                                   color=colours[g], alpha=0.85)
            layout.data(ax, counts)
            if threshold is not None:
                ax.axvline(threshold, color="black", ls="--", lw=1)
            ax.set_xlim(0, 100)
            ax.tick_params(labelsize=7)
            ax.spines[["top", "right"]].set_visible(False)
            if row == 0:
                ax.set_title(f"{g}\n(n={len(values)})", fontsize=8.5)
        axes[1, col].set_xlabel("score", fontsize=8)
    axes[0, 0].set_ylabel("alignment score\n(% of answers)", fontsize=8)
    axes[1, 0].set_ylabel("coherence score\n(% of answers)", fontsize=8)
    fig.suptitle("judge scores per condition; dashed: the thresholds", fontsize=10)
    fig.tight_layout()
    return layout.save(fig, path)


def heatmap(values: list[list[float]], rows: list[str], cols: list[str], path: str | Path, title: str,
            cbar_label: str, vmin: float, vmax: float, cmap: str, fmt: str = "{:.0f}") -> Path:
    """An annotated matrix; NaN cells are left blank (grey)."""
    import numpy as np

    plt = pyplot()
    data = np.array(values, dtype=float)
    fig, ax = plt.subplots(figsize=(max(4.5, 0.75 * len(cols) + 2.8), max(3.0, 0.32 * len(rows) + 1.6)), dpi=DPI)
    ax.set_facecolor("#dddddd")
    im = ax.imshow(np.ma.masked_invalid(data), aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax)
    layout.data(ax, data)
    for (i, j), v in np.ndenumerate(data):
        if not math.isnan(v):
            dark = abs(v - (vmin + vmax) / 2) > 0.3 * (vmax - vmin) if vmin < 0 else v > 0.6 * vmax
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7, color="white" if dark else "black")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    layout.auxiliary(fig.colorbar(im, ax=ax, label=cbar_label, fraction=0.05).ax)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return layout.save(fig, path)


def dynamics_curves(dynamics: dict[str, list[dict]], path: str | Path, colours: dict[str, str] | None = None) -> Path:
    """Misaligned rate over training steps: one colour per condition, a line per seed, shaded 95% intervals."""
    plt = pyplot()
    colours = {**condition_colours(dynamics), **(colours or {})}
    fig, ax = plt.subplots(figsize=(6.5, 3.6), dpi=DPI)
    for cond, points in dynamics.items():
        for j, seed in enumerate(sorted({p["seed"] for p in points})):
            pts = sorted((p for p in points if p["seed"] == seed), key=lambda p: p["step"])
            steps = [p["step"] for p in pts]
            ax.plot(steps, [100 * p["rate"] for p in pts], marker="o", ms=3, lw=1.2, color=colours[cond],
                    label=cond if j == 0 else None)
            ax.fill_between(steps, [100 * p["low"] for p in pts], [100 * p["high"] for p in pts],
                            color=colours[cond], alpha=0.12, lw=0)
            layout.data(ax, [100 * p["rate"] for p in pts])
    _integer_x(ax)
    ax.set_xlabel("training step")
    ax.set_ylabel("misaligned answers (%)")
    ax.legend(fontsize=8, **OUTSIDE_RIGHT)
    return _finish(fig, ax, path, "training dynamics: misaligned rate at evaluated checkpoints (a line per seed)")


def loss_curves(curves: dict[str, dict[int, list[tuple[int, float]]]], path: str | Path,
                colours: dict[str, str] | None = None) -> Path:
    """Training loss per step, one colour per condition and a line per seed (from the run cards)."""
    plt = pyplot()
    colours = {**condition_colours(curves), **(colours or {})}
    fig, ax = plt.subplots(figsize=(6.5, 3.4), dpi=DPI)
    for cond, seeds in curves.items():
        for j, (seed, points) in enumerate(sorted(seeds.items())):
            ax.plot([s for s, _ in points], [v for _, v in points], lw=1, color=colours[cond], alpha=0.85,
                    label=cond if j == 0 else None)
            layout.data(ax, [v for _, v in points])
    _integer_x(ax)
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=8, **OUTSIDE_RIGHT)
    return _finish(fig, ax, path, "training loss (a line per seed)")


def cosine_layers(interp: dict, path: str | Path) -> Path:
    """Cosine similarity of every pair of directions (rows) at every layer (columns), one annotated matrix;
    cells inside the chance band for random directions are greyed, and the band is marked on the colour bar."""
    import numpy as np
    from matplotlib.patches import Rectangle

    plt = pyplot()
    pairs = list(interp["cosines"])
    n_layers = max(len(v) for v in interp["cosines"].values())
    data = np.array([v + [math.nan] * (n_layers - len(v)) for v in interp["cosines"].values()], dtype=float)
    band = float(interp.get("chance_band") or 0)
    fig, ax = plt.subplots(figsize=(max(5.5, 0.62 * n_layers + 4.6), 0.24 * len(pairs) + 1.5), dpi=DPI)
    im = ax.imshow(np.ma.masked_invalid(data), aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1)
    layout.data(ax, data)
    for (i, j), v in np.ndenumerate(data):
        if math.isnan(v):
            continue
        chance = abs(v) < band
        if chance:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="#f2f2f2", edgecolor="none"))
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                color="#9a9a9a" if chance else ("white" if abs(v) > 0.6 else "black"))
    first = [p.split(" vs ")[0] for p in pairs]
    for i in range(1, len(pairs)):
        if first[i] != first[i - 1]:
            ax.axhline(i - 0.5, color="white", lw=2)
    ax.set_xticks(range(n_layers), [f"layer {i}" for i in range(n_layers)], fontsize=8)
    ax.set_yticks(range(len(pairs)), pairs, fontsize=7.5)
    ax.tick_params(length=0)
    cbar = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    layout.auxiliary(cbar.ax)
    if band:
        cbar.ax.axhspan(-band, band, color="#bbbbbb", alpha=0.9)
        cbar.set_label(f"cosine (grey: chance band ±{band:.2f})", fontsize=8)
    else:
        cbar.set_label("cosine", fontsize=8)
    ax.set_title("cosine similarity between directions, per layer", fontsize=10)
    fig.tight_layout()
    return layout.save(fig, path)


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
    scales = sorted({r["scale"] for r in rows if r.get("scale") is not None})
    for r in rows:
        name = _intervention_name(r)
        groups.setdefault(r["model"], {})[name] = r
        colours[name] = _INTERVENTION_COLOURS.get(r["intervention"], "#999999")
        if r["intervention"] == "steer" and len(scales) > 1:  # darker for larger scales
            from matplotlib import colormaps

            colours[name] = colormaps["Reds"](0.45 + 0.45 * scales.index(r["scale"]) / (len(scales) - 1))
    hatched = {n for n in colours if n.split(" ")[0].endswith("_random")}
    return grouped_bars(groups, path, "ablation and steering vs random-direction baselines (95% Wilson)",
                        "misaligned answers (%)", colours=colours, hatched=hatched)
