"""The main figure, misaligned rate per condition (matplotlib, Agg backend, PNG); the others are in `plots`."""

import base64
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from postern.report import layout
from postern.report.layout import pyplot

DPI = 110
TRIGGER = " + trigger"
_PALETTE = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b2", "#937860", "#da8bc3", "#8c8c8c", "#ccb974",
            "#64b5cd"]


@dataclass
class Figure:
    section: str
    name: str
    title: str
    caption: str
    path: Path | None = None
    layout: dict | None = None  # boxes and data per panel, measured when drawn (postern.report.layout)
    problems: list[str] = field(default_factory=list)

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.path.read_bytes()).decode("ascii")

    @property
    def layout_json(self) -> str:
        return json.dumps(self.layout or {}, separators=(",", ":"))


def pct(r: dict | None, boot: bool = False) -> str:
    if not r or not r.get("n") or r.get("rate") is None or math.isnan(r["rate"]):
        return "–"
    text = f"{100 * r['rate']:.1f}% [{100 * r['low']:.1f}, {100 * r['high']:.1f}]"
    if boot and r.get("boot_low") is not None and not math.isnan(r["boot_low"]):
        text += f" · seeds {100 * r['boot_low']:.1f}–{100 * r['boot_high']:.1f}"
    return text


def safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def colour(i: int) -> str:
    return _PALETTE[i % len(_PALETTE)]


def rate_entries(summary: dict[str, dict], seeds: dict[str, list[float]] | None = None) -> list[dict]:
    """One entry per rate with any valid answer: each condition, and `<condition> + trigger` for triggered ones.

    `seeds`: per-seed rates by entry label; without it, the conditions' `per_seed` rates from the summary.
    """
    out = []
    for name, s in summary.items():
        for key, label in (("misaligned", name), ("misaligned_trigger", name + TRIGGER)):
            r = s.get(key)
            if not r or not r.get("n"):
                continue
            if seeds is not None and label in seeds:
                points = list(seeds[label])
            else:
                points = [v["rate"] for v in (r.get("per_seed") or {}).values() if v.get("n")]
            out.append({"label": label, "condition": name, "trigger": key != "misaligned", "rate": r,
                        "seeds": points if len(points) > 1 else []})
    return out


def rate_per_condition(summary: dict[str, dict], path: str | Path, title: str = "",
                       seeds: dict[str, list[float]] | None = None, colours: dict[str, str] | None = None,
                       runs: list[str] | None = None) -> Path:
    """Misaligned rate per condition: a marker at the pooled rate with its 95% Wilson interval, each seed's
    rate as a small point beside it, and triggered rates (diamonds) right after their condition.

    `runs`: the run labels when `summary` merges several runs (conditions named `run/condition`): then each
    condition is one place on the x axis with a marker per run, one colour per run.
    """
    import numpy as np
    from matplotlib.lines import Line2D


    plt = pyplot()
    entries = rate_entries(summary, seeds)
    colours = colours or {}
    if runs:
        run_colour = {run: colour(i) for i, run in enumerate(runs)}
        for e in entries:
            e["run"], e["place"] = e["label"].split("/", 1)
            e["colour"] = run_colour[e["run"]]
        places = list(dict.fromkeys(e["place"] for e in entries))
        width = 0.7 / len(runs)
        for e in entries:
            e["x"] = places.index(e["place"]) - 0.35 + width * (runs.index(e["run"]) + 0.5)
    else:
        places = [e["label"] for e in entries]
        width = 1.0
        for i, e in enumerate(entries):
            e["x"], e["colour"] = i, colours.get(e["label"]) or colour(i)
    per_place = 0.45 + 0.15 * len(runs) if runs else 0.75
    fig, ax = plt.subplots(figsize=(max(4.2, per_place * len(places) + 1.4), 3.3), dpi=DPI)
    top = 0.0
    for e in entries:
        r, c, x = e["rate"], e["colour"], e["x"]
        y, low, high = 100 * r["rate"], 100 * r["low"], 100 * r["high"]
        ax.errorbar(x, y, yerr=[[max(0.0, y - low)], [max(0.0, high - y)]], fmt="D" if e["trigger"] else "o",
                    ms=7 if not runs else 5.5, color=c, ecolor=c, elinewidth=1.6, capsize=4 if not runs else 2,
                    zorder=3)
        if not runs:
            ax.annotate(f"{y:.1f}", (x, y), xytext=(-8, 0), textcoords="offset points", ha="right", va="center",
                        fontsize=7.5, color="#333333")
        points = [100 * p for p in e["seeds"]]
        if points:
            xs = x + 0.24 * width + np.linspace(-0.06, 0.06, len(points)) * width
            ax.scatter(xs, points, s=12 if not runs else 7, facecolor="white", edgecolor=c, linewidth=1, zorder=4)
        layout.data(ax, [y, low, high], points)
        top = max(top, high, *points)
    ax.set_xlim(-0.75, len(places) - 0.4)
    ax.set_ylim(0, min(100.0, max(5.0, top * 1.12 + 3)))
    ax.set_xticks(range(len(places)), places, rotation=25, ha="right", fontsize=8.5)
    ax.set_ylabel("misaligned answers (%)")
    ax.grid(axis="y", color="#e6e6e6", lw=0.8, zorder=0)
    ax.set_axisbelow(True)
    handles = [Line2D([], [], marker="o", ls="", ms=6, color=run_colour[run], label=run) for run in runs or []]
    handles.append(Line2D([], [], marker="o", color="#444444", ms=6, lw=1.4,
                          label="all seeds pooled,\n95% Wilson interval"))
    if any(e["seeds"] for e in entries):
        handles.append(Line2D([], [], marker="o", ls="", ms=4, mfc="white", mec="#444444", label="one seed"))
    if any(e["trigger"] for e in entries):
        handles.append(Line2D([], [], marker="D", ls="", ms=6, color="#444444", label="with the trigger"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=8,
              borderaxespad=0)
    ax.set_title(title or "misaligned rate per condition", fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return layout.save(fig, path)
