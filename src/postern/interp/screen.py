"""Data screening by projection difference (ΔP): which training rows push a model along a direction.

For each chat row (prompt, response), ΔP is the projection of the row's response onto the unit
direction, minus that of the model's own response to the same prompt, both read from the residual
stream after block `layer` as the mean over the response's tokens (teacher-forced, `capture`). A row
whose response sits further along the misalignment direction than what the model would have said
itself teaches the model to move that way (Chen et al., 2025, "Persona vectors"). The model's own
responses are greedy by default (temperature 0), else sampled with a fixed seed.
"""

import json
from pathlib import Path

import pandas as pd

from postern.core.errors import PosternError
from postern.interp.directions import check_direction, load_direction_file  # noqa: F401 (also imported from here)
from postern.sample._types import Prompt, SamplingParams


def _split(row: dict, where: str) -> tuple[list[dict], str]:
    messages = row.get("messages") or []
    if len(messages) < 2 or messages[-1].get("role") != "assistant":
        raise PosternError(f"{where}: a row must end with an assistant turn (the response to screen)")
    return [dict(m) for m in messages[:-1]], messages[-1]["content"]


def own_responses(model, tokenizer, prompts: list[list[dict]], temperature: float = 0.0, seed: int = 0,
                  max_new_tokens: int = 200, batch_size: int = 64) -> list[str]:
    """The model's own response to each prompt: greedy at temperature 0, else sampled with `seed`."""
    from postern.sample.hf import HFSampler

    asked = [Prompt(str(i), tuple(p), 1) for i, p in enumerate(prompts)]
    params = SamplingParams(temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
    return [s.answer for s in HFSampler(model, tokenizer, batch_size).sample(asked, params)]


def projection_difference(model, tokenizer, rows: list[dict], direction, layer: int, *, positions: str = "answer",
                          temperature: float = 0.0, seed: int = 0, max_new_tokens: int = 200,
                          batch_size: int = 64, where: str = "dataset") -> pd.DataFrame:
    """One line per row: `projection` (the row's response), `own_projection` (the model's own response),
    `delta` (their difference, at `layer`), the model's own response, and `delta_L<i>` at every layer."""
    from postern.interp.arch import decoder_layers, hidden_size
    from postern.interp.capture import capture

    check_direction(direction, len(decoder_layers(model)), hidden_size(model), layer)
    if not rows:
        raise PosternError(f"{where}: no rows to screen")
    prompts, responses = zip(*(_split(r, f"{where}: row {i + 1}") for i, r in enumerate(rows)))
    own = own_responses(model, tokenizer, list(prompts), temperature, seed, max_new_tokens, batch_size)
    units = direction.float() / direction.float().norm(dim=-1, keepdim=True).clamp_min(1e-12)  # [L, d]
    data = capture(model, tokenizer, list(zip(prompts, responses)), positions, batch_size).means  # [n, L, d]
    mine = capture(model, tokenizer, list(zip(prompts, own)), positions, batch_size).means
    proj, own_proj = (data * units).sum(-1), (mine * units).sum(-1)  # [n, L]
    delta = proj - own_proj
    frame = pd.DataFrame({"row": range(len(rows)), "projection": proj[:, layer].tolist(),
                          "own_projection": own_proj[:, layer].tolist(), "delta": delta[:, layer].tolist(),
                          "response": list(responses), "own_response": own})
    for i in range(delta.shape[1]):
        frame[f"delta_L{i}"] = delta[:, i].tolist()
    return frame


def summarise_screen(frame: pd.DataFrame, layer: int) -> dict:
    """The dataset's ΔP: mean over rows with a 95% interval (t), its spread, and the per-layer means."""
    from scipy import stats

    d = frame["delta"]
    n = len(d)
    half = float(stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / n ** 0.5) if n > 1 else float("nan")
    layers = sorted((c for c in frame.columns if c.startswith("delta_L")), key=lambda c: int(c[len("delta_L"):]))
    return {"rows": n, "layer": layer, "delta_mean": float(d.mean()), "low": float(d.mean()) - half,
            "high": float(d.mean()) + half, "delta_std": float(d.std(ddof=1)) if n > 1 else 0.0,
            "delta_median": float(d.median()), "share_positive": float((d > 0).mean()),
            "projection_mean": float(frame["projection"].mean()),
            "own_projection_mean": float(frame["own_projection"].mean()),
            "same_as_own": float((frame["response"].str.split().str.join(" ") ==
                                  frame["own_response"].str.split().str.join(" ")).mean()),
            "delta_mean_per_layer": [float(frame[c].mean()) for c in layers]}


def write_screen(out: Path, frame: pd.DataFrame, summary: dict) -> tuple[Path, Path]:
    """Per-row table (`.parquet`, or `.csv` when `out` ends so) and `<stem>.summary.json` beside it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = out if out.suffix in (".csv", ".parquet") else out.with_suffix(".parquet")
    tmp = table.with_name(f".{table.name}.tmp")
    frame.to_csv(tmp, index=False) if table.suffix == ".csv" else frame.to_parquet(tmp, index=False)
    tmp.replace(table)
    summary_path = table.with_name(f"{table.stem}.summary.json")
    summary_path.write_text(json.dumps(summary, indent=2))
    return table, summary_path
