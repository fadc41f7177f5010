"""The report's data-screening figure: each condition's ΔP (its training set) against its misaligned rate."""

import json
from pathlib import Path
from typing import Callable

from postern.report import layout
from postern.report.figures import DPI, colour
from postern.report.layout import pyplot

CAPTION = ("Each condition's training set screened before training: mean projection difference ΔP (the rows' "
           "responses minus the base model's own responses to the same prompts, on the direction, at one layer; "
           "95% t interval) against the misaligned rate its fine-tunes reached (%, seeds pooled, 95% Wilson). "
           "The title gives the rank correlation over the conditions.")


def screen_points(screen: dict) -> list[dict]:
    """One point per condition that has both a ΔP and a misaligned rate."""
    return [{"condition": name, "delta": c["delta_mean"], "low": c["low"], "high": c["high"], "rate": m["rate"],
             "rate_low": m["low"], "rate_high": m["high"]}
            for name, c in screen.get("conditions", {}).items() if (m := c.get("misaligned")) and m.get("n")]


def _title(screen: dict) -> str:
    corr = screen.get("rank_correlation") or {}
    if corr.get("spearman") is None:
        return f"ΔP at layer {screen['layer']} vs misaligned rate"
    return (f"ΔP at layer {screen['layer']} vs misaligned rate: Spearman ρ = {corr['spearman']:+.2f} "
            f"(p = {corr['spearman_p']:.2g}, n = {corr['n']})")


def delta_vs_rate(screen: dict, path: str | Path, colours: dict[str, str] | None = None) -> Path:
    plt = pyplot()
    points = screen_points(screen)
    colours = colours or {}
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=DPI)
    for i, p in enumerate(points):
        ax.errorbar(p["delta"], 100 * p["rate"], xerr=[[p["delta"] - p["low"]], [p["high"] - p["delta"]]],
                    yerr=[[100 * (p["rate"] - p["rate_low"])], [100 * (p["rate_high"] - p["rate"])]],
                    fmt="o", color=colours.get(p["condition"], colour(i)), capsize=3, label=p["condition"])
    ax.axvline(0, color="#999999", lw=0.8, ls="--")
    layout.data(ax, [p["rate"] for p in points], [p["delta"] for p in points])
    ax.set_xlabel("ΔP: training response minus the base model's own (mean over rows)")
    ax.set_ylabel("misaligned (%)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, frameon=False, fontsize=8)
    ax.set_title(_title(screen), fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return layout.save(fig, path)


def screen_figures(run, prefix: str, note: Callable[[str, str], None] = lambda s, t: None,
                   colours: dict[str, str] | None = None) -> list[tuple]:
    """(Figure, draw) for a run folder with screen.json (written by `[screen]`), in the "interp" section."""
    from postern.report.figures import Figure

    path = Path(run.path) / "screen.json"
    if not path.exists():
        return []
    screen = json.loads(path.read_text())
    if len(screen_points(screen)) < 2:
        note("interp", f"{run.label}: data screening has fewer than two conditions with a misaligned rate: "
                       "no ΔP figure.")
        return []
    return [(Figure("interp", f"{prefix}screen", f"Data screening: ΔP vs misaligned rate ({run.label})", CAPTION),
             lambda p: delta_vs_rate(screen, p, colours))]
