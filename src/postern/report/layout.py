"""What a saved figure looks like, measured while it is drawn, and the checks a reviewer would make on it.

Every report figure is saved through `save`, which draws it once more, measures each axes and legend
(pixel boxes in the saved PNG, origin top left) and the numbers each panel was drawn from (recorded
with `data`), and keeps the measurement for the page (`measured`). `problems` turns a measurement
into findings: a legend that overlaps an axes, a panel with no recorded data or only zeros.
"""

from pathlib import Path

import numpy as np


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt

PAD_INCHES = 0.1
_MEASURED: dict[str, dict] = {}


def data(ax, *values) -> None:
    """Record numbers the panel `ax` shows (rates, counts, cosines), for the all-zero check."""
    arrays = [np.ravel(np.asarray(v, dtype=float)) for v in values]
    new = np.concatenate(arrays) if arrays else np.array([], dtype=float)
    old = getattr(ax, "_postern_values", None)
    ax._postern_values = new if old is None else np.concatenate([old, new])


def auxiliary(ax) -> None:
    """Mark an axes that has no data of its own (a colour bar)."""
    ax._postern_aux = True


def _name(ax, i: int) -> str:
    return ax.get_title() or ax.get_ylabel() or f"axes {i}"


def measure(fig) -> dict:
    """Boxes of every visible axes and legend, in pixels of the PNG `save` writes (bbox_inches="tight")."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    dpi = fig.dpi
    tight = fig.get_tightbbox(renderer).padded(PAD_INCHES)  # inches: what savefig(bbox_inches="tight") keeps
    left, top = tight.x0 * dpi, tight.y1 * dpi

    def box(b) -> list[float]:
        return [round(b.x0 - left, 1), round(top - b.y1, 1), round(b.x1 - left, 1), round(top - b.y0, 1)]

    axes = []
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        values = getattr(ax, "_postern_values", None)
        finite = values[np.isfinite(values)] if values is not None else None
        axes.append({"name": _name(ax, i), "box": box(ax.get_window_extent(renderer)),
                     "auxiliary": bool(getattr(ax, "_postern_aux", False)),
                     "values": None if finite is None else int(finite.size),
                     "max_abs": float(np.abs(finite).max()) if finite is not None and finite.size else 0.0})
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_visible() and ax.get_legend())]
    return {"width": round(tight.width * dpi), "height": round(tight.height * dpi), "axes": axes,
            "legends": [box(lg.get_window_extent(renderer)) for lg in legends if lg.get_visible()]}


def overlap(a: list[float], b: list[float]) -> float:
    """Area (px²) shared by two boxes [x0, y0, x1, y1]."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def problems(layout: dict) -> list[str]:
    """What a reviewer would reject: a legend over an axes; a panel drawn from no data or only zeros."""
    out = []
    for i, legend in enumerate(layout["legends"]):
        for ax in layout["axes"]:
            if overlap(legend, ax["box"]) > 1.0:
                out.append(f"legend {i + 1} overlaps the axes '{ax['name']}'")
    for ax in layout["axes"]:
        if ax["auxiliary"]:
            continue
        if ax["values"] is None:
            out.append(f"panel '{ax['name']}' recorded no data")
        elif not ax["max_abs"]:
            out.append(f"panel '{ax['name']}' is drawn from all-zero data")
    return out


def save(fig, path: str | Path) -> Path:
    """Save `fig` as a PNG (tight bounding box) and keep its measurement for `measured(path)`."""
    path = Path(path)
    layout = measure(fig)
    fig.savefig(path, dpi=fig.dpi, bbox_inches="tight", pad_inches=PAD_INCHES)
    pyplot().close(fig)
    _MEASURED[str(path.resolve())] = layout
    while len(_MEASURED) > 256:  # figures saved but never asked for (the runner's rates.png)
        _MEASURED.pop(next(iter(_MEASURED)))
    return path


def measured(path: str | Path) -> dict | None:
    """The measurement `save` took of the figure at `path` (None for a figure not saved through it)."""
    return _MEASURED.pop(str(Path(path).resolve()), None)
