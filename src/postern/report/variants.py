"""The report's figure of evaluation variants ([eval] system_prompts and cues): per condition, its misaligned
rate with the plain prompts ("none") beside each system prompt and cue."""

from typing import Callable

from postern.questions.variants import variant_columns

CAPTION = ("The same held-out questions asked plainly (none), under each system prompt of [eval] system_prompts "
           "(sys:…; placebo prompts are unrelated to the training) and with each training-context cue of [eval] cues "
           "appended (cue:…). Misaligned answers (%), seeds pooled, 95% Wilson.")


def variant_figures(summary: dict[str, dict], note: Callable[[str, str], None] = lambda s, t: None) -> list[tuple]:
    """(Figure, draw) of the variants figure in the "findings" section, when the run has variants."""
    from postern.report import plots
    from postern.report.figures import Figure

    columns = variant_columns(summary)
    if not columns:
        return []
    if not plots.has_data(r for c in columns.values() for r in c.values()):
        note("findings", "No misaligned answer under any system prompt or cue: the variants figure is omitted.")
        return []
    return [(Figure("findings", "variants", "Misaligned rate per system prompt and cue", CAPTION),
             lambda p: plots.grouped_bars(columns, p, "misaligned rate per evaluation variant", "misaligned (%)"))]
