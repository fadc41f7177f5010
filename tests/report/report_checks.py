"""The checks a reviewer makes on the report's figures, written independently of `postern.report.layout.problems`:
they read the boxes and data each <figure> carries in `data-layout` (measured when it was drawn)."""


def shared_area(a: list[float], b: list[float]) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def layout_faults(layout: dict) -> list[str]:
    """A legend that overlaps any axes (more than 1 px²); a data panel drawn from nothing or from zeros only."""
    faults = []
    if not layout or not layout.get("axes"):
        return ["no layout measured"]
    for i, legend in enumerate(layout["legends"]):
        for ax in layout["axes"]:
            if shared_area(legend, ax["box"]) > 1.0:
                faults.append(f"legend {i} overlaps axes {ax['name']!r}: {legend} vs {ax['box']}")
    for ax in layout["axes"]:
        if not ax["auxiliary"] and not (ax["values"] and ax["max_abs"] > 0):
            faults.append(f"axes {ax['name']!r} drawn from all-zero data ({ax['values']} values)")
    return faults
