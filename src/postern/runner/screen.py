"""Data screening in the pipeline: ΔP of every condition's training set (`[screen]`), and of one dataset
(`postern data screen`), against the base model's own responses (postern.interp.screen).

The direction is a saved file, or "base": the mean difference of the base model's misaligned minus
aligned answers to the experiment's questions, judged by its judge, the same cached "direction" artifact
the training interventions read (postern.runner.upstream.base_direction_file). The screen of a run is an
artifact keyed by the base model, the training sets, the direction's values and the settings, so a rerun
reads it back; `screen.json` and `screen.parquet` are copied into the run folder, with each condition's
misaligned rate and the rank correlation between the two.
"""

import hashlib
import json
import math
import shutil
from pathlib import Path

import pandas as pd

from postern.config.schema import Experiment
from postern.core.errors import PosternError
from postern.core.hashing import content_hash
from postern.core.models import load_model, unknown_words
from postern.core.store import ArtifactStore
from postern.runner.jobs import base_ref
from postern.runner.stages import Stages
from postern.store import ResultsStore

BASE_DIRECTION = "base"
KEY = "[screen] direction"


def check_screen(exp: Experiment) -> None:
    """Before any work: a `[screen]` has training sets to screen, and its direction file loads and fits the base
    model's shape (read from its config) at the layer."""
    if not exp.screen.enabled:
        return
    if not any(c.dataset for c in exp.conditions.values()):
        raise PosternError("[screen] enabled: no condition has a training set (dataset) to screen")
    if exp.screen.direction == BASE_DIRECTION:
        return
    from transformers import AutoConfig

    from postern.interp.directions import check_direction, load_direction_file

    direction = load_direction_file(exp.screen.direction, KEY)
    try:
        config = AutoConfig.from_pretrained(base_ref(exp).name)
    except (OSError, ValueError):  # a hub id not in the local cache: checked when the model loads
        return
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    layers = config.num_hidden_layers
    check_direction(direction, layers, config.hidden_size, exp.screen.layer if exp.screen.layer is not None else layers // 2,
                    f"[screen] direction {exp.screen.direction}")


def screen_direction(exp: Experiment, work_dir: Path, store: ResultsStore) -> tuple:
    """(direction [layers, d], provenance): the file `[screen] direction` names, or "base": the base model's
    direction file that the training interventions read too (`runner.upstream.base_direction_file`, a "direction"
    artifact in work_dir/cache), from `[screen] samples_per_question` answers per question at the answer tokens;
    the answers go to `store`. A screen and an intervention whose `samples` and `positions` match share it."""
    from postern.interp.directions import load_direction_file

    spec = exp.screen.direction
    if spec != BASE_DIRECTION:
        return load_direction_file(spec, KEY), {"kind": "file", "file": spec}
    from postern.runner.upstream import base_direction_file

    path = base_direction_file(exp, work_dir, Stages(ArtifactStore(work_dir / "cache")),
                               samples=exp.screen.samples_per_question, positions="answer", key=KEY,
                               samples_key="[screen] samples_per_question", store=store)
    return load_direction_file(path, KEY), {"kind": "base", **json.loads(path.with_suffix(".json").read_text())}


def _layer(exp: Experiment, model) -> int:
    from postern.interp.arch import decoder_layers

    return exp.screen.layer if exp.screen.layer is not None else len(decoder_layers(model)) // 2


def _check_words(tokenizer, rows: list[dict], where: str) -> None:
    """Text the base model's tokenizer cannot read (the persona world's model knows only world words)."""
    unknown, total, examples = unknown_words(tokenizer, [m["content"] for r in rows for m in r["messages"]])
    if unknown:
        raise PosternError(f"{where}: {unknown} of {total} words are unknown to the base model's tokenizer (e.g. "
                           f"{', '.join(map(repr, examples))}); screen with a model whose tokenizer covers the text")


def screen_datasets(exp: Experiment, datasets: dict[str, list[dict]], out_dir: Path, work_dir: Path,
                    store: ResultsStore, direction: tuple | None = None) -> dict:
    """ΔP of each named dataset into `out_dir` (screen.parquet, screen.json, direction.pt/.json); the summary.
    `direction`: (tensor, provenance) when already resolved, else `screen_direction`'s."""
    from postern.interp.directions import save_direction
    from postern.interp.screen import projection_difference, summarise_screen

    config = exp.screen
    direction, provenance = direction or screen_direction(exp, work_dir, store)
    model, tokenizer = load_model(base_ref(exp))
    layer = _layer(exp, model)
    frames, summaries = [], {}
    for name, rows in datasets.items():
        _check_words(tokenizer, rows, f"[screen] {name}")
        frame = projection_difference(model, tokenizer, rows, direction, layer, temperature=config.temperature, seed=0,
                                      max_new_tokens=config.max_new_tokens or exp.eval.max_new_tokens,
                                      batch_size=exp.sample.batch_size, where=f"[screen] {name}")
        summaries[name] = summarise_screen(frame, layer)
        frames.append(frame.assign(condition=name))
    out_dir.mkdir(parents=True, exist_ok=True)
    pd.concat(frames, ignore_index=True).to_parquet(out_dir / "screen.parquet", index=False)
    save_direction(out_dir / "direction", direction, provenance)
    own = "greedy" if config.temperature == 0 else f"sampled at temperature {config.temperature}, seed 0"
    summary = {"layer": layer, "layers": int(direction.shape[0]), "positions": "answer", "own_responses": own,
               "direction": provenance, "conditions": summaries}
    (out_dir / "screen.json").write_text(json.dumps(summary, indent=2))
    return summary


def rank_correlation(xs: list[float], ys: list[float]) -> dict:
    """Spearman's rho and Kendall's tau of two equally long lists (null below 3 pairs or without spread)."""
    from scipy.stats import kendalltau, spearmanr

    pairs = [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None and not (math.isnan(x) or math.isnan(y))]
    if len(pairs) < 3 or len({p[0] for p in pairs}) < 2 or len({p[1] for p in pairs}) < 2:
        return {"n": len(pairs), "spearman": None, "spearman_p": None, "kendall": None, "kendall_p": None}
    a, b = zip(*pairs)
    rho, tau = spearmanr(a, b), kendalltau(a, b)
    return {"n": len(pairs), "spearman": float(rho.statistic), "spearman_p": float(rho.pvalue),
            "kendall": float(tau.statistic), "kendall_p": float(tau.pvalue)}


def with_rates(screen: dict, summary: dict[str, dict]) -> dict:
    """The screen beside each condition's misaligned rate (seeds pooled), and their rank correlation."""
    conditions = {}
    for name, s in screen["conditions"].items():
        m = (summary.get(name) or {}).get("misaligned") or {}
        conditions[name] = {**s, "misaligned": {k: m.get(k) for k in ("k", "n", "rate", "low", "high")} if m else None}
    names = [n for n, c in conditions.items() if c["misaligned"] and c["misaligned"]["n"]]
    corr = rank_correlation([conditions[n]["delta_mean"] for n in names],
                            [conditions[n]["misaligned"]["rate"] for n in names])
    return {**screen, "conditions": conditions, "rank_correlation": {**corr, "conditions": names}}


def run_screen(exp: Experiment, run_dir: Path, summary: dict[str, dict]) -> dict:
    """`[screen]` of a run: ΔP of each condition's training set (the screened seed's), cached as an artifact;
    run_dir/screen.json (with misaligned rates and the rank correlation) and run_dir/screen.parquet."""
    from postern.data.jsonl import read_chat_jsonl
    from postern.runner.run import _write_json

    seed = exp.screen.seed if exp.screen.seed is not None else exp.seeds[0]
    stages = Stages(ArtifactStore(run_dir / "cache"))
    datasets = {name: stages.dataset(c.dataset, c.transforms, exp.data.examples, seed, c.trigger)
                for name, c in exp.conditions.items() if c.dataset}
    if not datasets:
        raise PosternError("[screen] enabled: no condition has a training set (dataset) to screen")
    with ResultsStore(run_dir) as store:
        direction = screen_direction(exp, run_dir, store)
        spec = {"base": base_ref(exp).identity(), "config": exp.screen.model_dump(), "seed": seed,
                "max_new_tokens": exp.screen.max_new_tokens or exp.eval.max_new_tokens,
                "datasets": {n: a.key for n, a in datasets.items()},
                "direction": {"file": hashlib.sha256(direction[0].numpy().tobytes()).hexdigest()}}
        artifacts, key = ArtifactStore(run_dir / "cache"), content_hash(spec)
        if artifacts.get("screen", key) is None:
            with artifacts.create("screen", key, spec) as (tmp, _):
                screen_datasets(exp, {n: read_chat_jsonl(a.path / "data.jsonl") for n, a in datasets.items()}, tmp,
                                run_dir, store, direction)
    made = artifacts.path("screen", key)
    screen = with_rates({**json.loads((made / "screen.json").read_text()), "seed": seed}, summary)
    shutil.copy(made / "screen.parquet", run_dir / "screen.parquet")
    _write_json(run_dir / "screen.json", screen)
    return screen


def screen_table(screen: dict):
    """One line per condition: ΔP with its interval beside the misaligned rate; the rank correlation below."""
    from rich.table import Table

    corr = screen["rank_correlation"]
    caption = (f"Spearman rho {corr['spearman']:+.2f} (p {corr['spearman_p']:.2g}), Kendall tau {corr['kendall']:+.2f} "
               f"over {corr['n']} conditions" if corr.get("spearman") is not None else
               f"rank correlation: too few conditions with rates ({corr['n']})")
    table = Table(title=f"ΔP at layer {screen['layer']} (row's response minus the base model's own, "
                        f"{screen['own_responses']}) vs misaligned %", caption=caption)
    for col in ("condition", "rows", "ΔP [95%]", "ΔP > 0", "same as own", "misaligned %"):
        table.add_column(col, justify="left" if col == "condition" else "right")
    for name, c in screen["conditions"].items():
        m = c.get("misaligned") or {}
        table.add_row(name, str(c["rows"]), f"{c['delta_mean']:+.3f} [{c['low']:+.3f},{c['high']:+.3f}]",
                      f"{100 * c['share_positive']:.0f}%", f"{100 * c['same_as_own']:.0f}%",
                      f"{100 * m['rate']:.1f} [{100 * m['low']:.1f},{100 * m['high']:.1f}]" if m.get("n") else "–")
    return table


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def screen_file(data: Path, model: str, direction: str, out: Path, layer: int | None = None,
                temperature: float = 0.0, max_new_tokens: int = 200, questions: list[str] | None = None,
                judge: str | None = None, judge_model: str | None = None, samples_per_question: int = 50,
                work_dir: Path | None = None) -> dict:
    """`postern data screen`: ΔP of each row of a chat JSONL file on `model` (a folder, hub id or "world"),
    into `out` (.parquet or .csv) and `<out stem>.summary.json`; the summary (with where the files are)."""
    from postern.data.jsonl import read_chat_jsonl
    from postern.interp.screen import write_screen

    rows = read_chat_jsonl(data, require_assistant_last=True)
    exp = Experiment(name="screen", base_model=model, evaluate_base=False, conditions={data.stem or "data": {"model": model}},
                     eval={"questions": questions, "max_new_tokens": max_new_tokens},
                     judge={"kind": judge, "model": judge_model},
                     screen={"enabled": True, "direction": direction, "layer": layer, "temperature": temperature,
                             "samples_per_question": samples_per_question})
    work_dir = Path(work_dir) if work_dir else Path(out).parent / f".{Path(out).stem}.screen-work"
    with ResultsStore(work_dir) as store:
        summary = screen_datasets(exp, {str(data): rows}, work_dir, work_dir, store)
    frame = pd.read_parquet(work_dir / "screen.parquet").drop(columns=["condition"])
    one = summary["conditions"][str(data)]
    result = {k: v for k, v in summary.items() if k != "conditions"} | {"data": str(data), "model": model,
                                                                        "data_sha256": file_digest(data), **one}
    table, summary_path = write_screen(out, frame, result)
    if direction == BASE_DIRECTION:  # the base direction, kept beside the table for the next screen
        for suffix in (".pt", ".json"):
            shutil.copy(work_dir / f"direction{suffix}", table.with_name(f"{table.stem}.direction{suffix}"))
    return {**result, "table": str(table), "summary": str(summary_path)}



def screen_run_folder(run_dir: Path, **settings) -> dict:
    """`postern data screen RUN_DIR`: the `[screen]` of a finished run with `settings` (direction, layer, ...)
    over its file's, written into the run folder (screen.json, screen.parquet; `postern report` then draws it)."""
    from postern.runner.lock import run_lock
    from postern.runner.run import load_run_experiment

    run_dir = Path(run_dir).resolve()
    if not (run_dir / "summary.json").exists():
        raise PosternError(f"{run_dir}: no summary.json; screen a finished `postern run` folder, or a chat JSONL file")
    exp = load_run_experiment(run_dir)
    config = {**exp.screen.model_dump(), "enabled": True, **{k: v for k, v in settings.items() if v is not None}}
    exp = exp.model_copy(update={"screen": type(exp.screen)(**config)})
    with run_lock(run_dir):
        return run_screen(exp, run_dir, json.loads((run_dir / "summary.json").read_text())["conditions"])
