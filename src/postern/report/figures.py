"""Figures from a run's summary (matplotlib, Agg backend, PNG)."""

from pathlib import Path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def rate_per_condition(summary: dict[str, dict], path: str | Path, title: str = "") -> Path:
    """Misaligned rate per condition with 95% Wilson intervals; triggered rates as a second bar."""
    plt = _plt()
    names = [c for c, s in summary.items() if "misaligned" in s]
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(names) + 2), 3.6), dpi=120)
    for i, name in enumerate(names):
        bars = [("misaligned", "#4c72b0", "no trigger")]
        if "misaligned_trigger" in summary[name]:
            bars.append(("misaligned_trigger", "#c44e52", "with trigger"))
        width = 0.8 / len(bars)
        for j, (key, colour, label) in enumerate(bars):
            r = summary[name][key]
            if not r.get("n"):  # every answer left out of the rate: no bar
                continue
            x = i - 0.4 + width * (j + 0.5)
            ax.bar(x, 100 * r["rate"], width * 0.9, color=colour, label=label if i == names.index(name) else None)
            ax.errorbar(x, 100 * r["rate"], yerr=[[100 * max(0.0, r["rate"] - r["low"])],
                                                  [100 * max(0.0, r["high"] - r["rate"])]], color="black", capsize=3, lw=1)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    if len(unique) > 1:
        ax.legend(unique.values(), unique.keys(), frameon=False, fontsize=8)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    ax.set_ylabel("misaligned answers (%)")
    ax.set_title(title or "misaligned rate per condition (95% Wilson, seeds pooled)", fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
