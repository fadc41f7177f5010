"""Run a whole experiment and write its results: summary.json, samples.parquet, rates.png, report.html.

Every run, persona world or real model, trained here, by an API or evaluated as it is, writes the same
folder, so `postern report` and `postern interp` read any of them.
"""

import json
import math
import os
import shutil
import time
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from postern.config.schema import PERSONA_CHECK_FIELDS, Experiment, InterpConfig
from postern.core.errors import PosternError
from postern.core.hashing import content_hash
from postern.core.models import ModelRef
from postern.core.store import ArtifactStore
from postern.questions.sources import QUESTIONS
from postern.questions.variants import variant_columns
from postern.runner.jobs import (BASE, base_ref, jobs_of, make_judge, needs, params_of, phases, preflight,
                                 prompt_sets, run_all_jobs)
from postern.runner.lock import run_lock
from postern.runner.outcomes import split_failed
from postern.runner.variants import as_condition_variants, variant_order
from postern.stats.summary import misaligned_rate, rate_fields, summarise
from postern.store import ResultsStore
from postern.train._types import HOW_TRAINED


def _relative(value, run_dir: Path):
    """Paths inside the run folder, written relative to it, so the folder can be moved."""
    if isinstance(value, dict):
        return {k: _relative(v, run_dir) for k, v in value.items()}
    if isinstance(value, str) and value.startswith(str(run_dir) + "/"):
        return value[len(str(run_dir)) + 1:]
    return value


def _absolute(value, run_dir: Path):
    if isinstance(value, dict):
        return {k: _absolute(v, run_dir) for k, v in value.items()}
    if isinstance(value, str) and value.startswith("cache/"):
        return str(run_dir / value)
    return value


def save_jobs(run_dir: Path, results: list[dict]) -> None:
    (run_dir / "jobs.json").write_text(json.dumps([_relative(r, run_dir) for r in results], indent=2))


def load_jobs(run_dir: Path) -> list[dict]:
    """The jobs of a finished run, with absolute paths."""
    run_dir = Path(run_dir).resolve()
    return [_absolute(r, run_dir) for r in json.loads((run_dir / "jobs.json").read_text())]


def _expand(raw: pd.DataFrame) -> pd.DataFrame:
    """Sample meta (paraphrase, system prompt, trigger) and judge details as columns; `unscored` flags."""
    meta = raw["meta"].map(json.loads)
    detail = raw["detail"].map(lambda d: json.loads(d) if isinstance(d, str) else {})
    df = raw.drop(columns=["meta", "detail", "condition", "seed"])
    for key in ("paraphrase", "system", "trigger"):
        df[key] = meta.map(lambda m, k=key: m.get(k))
    df["unscored"] = detail.map(lambda d: bool(d.get("unscored", False)))
    for key in sorted({k for d in detail for k in d} - {"unscored", "judge"}):
        df[f"detail_{key}"] = detail.map(lambda d, k=key: d.get(k))
    return df


def results_frame(run_dir: Path, results: list[dict], checkpoints: bool = False) -> pd.DataFrame:
    """One row per answer of every job (and set), with its judgment from the run's judge.

    With `checkpoints`, the answers of evaluated training checkpoints instead (column `step`)."""
    owners = [(r, name, key) for r in results
              for name, key in ((r["checkpoints"] if checkpoints else r["keys"]).items())]
    if not owners:
        return pd.DataFrame()
    with ResultsStore(run_dir) as store:
        raw = store.frame(results[0]["judge"], models=sorted({key for _, _, key in owners}))
    by_key = {key: g for key, g in _expand(raw).groupby("model")}
    frames = []
    for r, name, key in owners:
        df = by_key.get(key, pd.DataFrame()).copy()
        df.insert(0, "condition", r["condition"])
        df.insert(1, "seed", r["seed"])
        df["step" if checkpoints else "set"] = int(name) if checkpoints else name
        frames.append(df)
    return as_condition_variants(pd.concat(frames, ignore_index=True))


# what a run writes at the top of its folder (the cache and stores are shared)
OUTPUTS = ("summary.json", "samples.parquet", "experiment.json", "experiment.toml", "experiment.yaml",
           "experiment.yml", "jobs.json", "dynamics.json", "rates.png", "report.html", "report_figures", "interp",
           "failures.csv", "screen.json", "screen.parquet")


def experiment_hash(exp: Experiment) -> str:
    """What the results depend on: every setting but how many processes ran them."""
    how = {"workers": True, "executor": True, "address": True, "resources": True,
           "train": dict.fromkeys(HOW_TRAINED, True)}  # how it ran, not what
    return content_hash(exp.model_dump(mode="json", exclude=how))


def load_run_experiment(run_dir: Path) -> Experiment:
    """The experiment a run folder holds (its experiment.json)."""
    data = json.loads((Path(run_dir) / "experiment.json").read_text())
    data.pop("_hash", None)
    if "imported_from" in data:
        raise PosternError(f"{run_dir}: imported answers ({data['imported_from']}) have no experiment to run again; "
                           "the mechanism study needs a folder from `postern run` or `postern eval` with local models")
    return Experiment(**data)


def _keep_previous(run_dir: Path, new_hash: str) -> None:
    """A changed experiment rerun into a finished folder: the old outputs move to previous/<their hash>/, so
    the folder's top never mixes two experiments (the cache and stores are keyed by content and shared)."""
    summary = run_dir / "summary.json"
    if not summary.exists():
        return
    old_hash = json.loads(summary.read_text()).get("experiment_hash") or f"unhashed-{int(summary.stat().st_mtime)}"
    if old_hash == new_hash:
        return
    keep = run_dir / "previous" / old_hash
    keep.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:
        if (run_dir / name).exists():
            if (keep / name).is_dir():  # the same experiment kept before: the newer outputs replace it
                shutil.rmtree(keep / name)
            os.replace(run_dir / name, keep / name)


def run_experiment(exp: Experiment, run_dir: str | Path, console: Console | None = None,
                   experiment_file: Path | None = None) -> dict:
    """The whole experiment into `run_dir`; checked before any work, one process per folder (a lock)."""
    console = console or Console()
    run_dir = Path(run_dir).resolve()
    if run_dir.exists() and not run_dir.is_dir():
        raise PosternError(f"{run_dir} is a file; give a folder for the run (--out)")
    preflight(exp)
    with run_lock(run_dir):
        return _run(exp, run_dir, console, experiment_file)


def _run(exp: Experiment, run_dir: Path, console: Console, experiment_file: Path | None) -> dict:
    digest = experiment_hash(exp)
    _keep_previous(run_dir, digest)
    if experiment_file:
        shutil.copy(experiment_file, run_dir / f"experiment{experiment_file.suffix}")
    _write_json(run_dir / "experiment.json", {**exp.model_dump(mode="json"), "_hash": digest})
    start = time.time()
    jobs = jobs_of(exp)
    results, failed = split_failed(_run_jobs(exp, run_dir, console))
    report_failed_jobs(run_dir, failed, console)
    if not results:
        first = failed[0]
        raise PosternError(f"every job failed, e.g. {first['condition']} seed {first['seed']} ({first['stage']}): "
                           f"{first['error']}")
    save_jobs(run_dir, results)
    df = results_frame(run_dir, results)
    order = ([BASE] if exp.evaluate_base else []) + list(exp.conditions)
    order = variant_order(order, df)
    summary = summarise(df, order, exp.stats.denominator)
    seconds = time.time() - start
    out = {"experiment": exp.name, "experiment_hash": digest, "seconds": round(seconds, 1), "jobs": len(jobs),
           "judge": results[0]["judge"],
           "denominator": exp.stats.denominator, "conditions": summary, "cache": _cache_counts(run_dir),
           "failures": report_failures(run_dir, results, exp, console, df),
           "failed_jobs": [{k: v for k, v in f.items() if k != "failed"} for f in failed]}
    if variant_columns(summary):
        out["variants"] = variant_columns(summary)
    _write_json(run_dir / "summary.json", out)
    df.to_parquet(run_dir / "samples.parquet", index=False)
    if any(r.get("checkpoints") for r in results):
        _write_json(run_dir / "dynamics.json", training_dynamics(results_frame(run_dir, results, checkpoints=True),
                                                                 exp.stats.denominator))
    from postern.report.figures import rate_per_condition

    rate_per_condition(summary, run_dir / "rates.png", title=f"{exp.name}: misaligned rate (95% Wilson, seeds pooled)")
    if exp.interp.enabled:
        from postern.interp.study import study_table

        with console.status("mechanism study: directions, cosines, ablation, steering"):
            study = run_interp(exp, exp.interp, run_dir, results, df)
        if study["directions"] and study["layers"]:
            console.print(*study_table(study))
        else:
            console.print(f"[yellow]mechanism study: no direction (too few aligned or misaligned answers: "
                          f"{study['directions']})[/]")
        out["interp"] = {"reference": study["reference"], "layers": study["layers"]}
        _write_json(run_dir / "summary.json", out)
        if exp.interp.persona_check:
            from postern.report.persona import persona_tables
            from postern.runner.persona import run_persona_check

            with console.status("persona check: persona probe, SAE model diffing"):
                console.print(*persona_tables(run_persona_check(exp, exp.interp, run_dir, results)))
    if exp.screen.enabled:
        from postern.runner.screen import run_screen, screen_table

        with console.status("data screening: ΔP of every training set"):
            screen = run_screen(exp, run_dir, summary)
        console.print(screen_table(screen))
        out["screen"] = screen["rank_correlation"]
        _write_json(run_dir / "summary.json", out)
    try:  # the report only views results already saved above: never lose a run over it
        from postern.report.html import write_report

        console.print(f"[dim]report: {write_report(run_dir).path}[/]")
    except Exception as e:  # noqa: BLE001
        console.print(f"[yellow]warning: report.html not written ({type(e).__name__}: {e}); "
                      f"retry with `postern report {run_dir}`[/]")
    console.print(summary_table(summary, out["judge"], exp.stats.denominator))
    console.print(f"[dim]{len(jobs)} jobs in {seconds:.0f}s, {time.time() - start:.0f}s with the study and report; "
                  f"results in {run_dir}[/]")
    return out


def _run_jobs(exp: Experiment, run_dir: Path, console: Console) -> list[dict]:
    """Every job's result (or failure record), by the experiment's executor, showing progress."""
    if exp.executor == "ray":
        from postern.runner.ray_executor import run_all_jobs_ray

        return run_all_jobs_ray(exp, run_dir, console, needs={job: needs(exp, job) for job in jobs_of(exp)})
    with _progress(console) as progress:
        n_phases = phases(exp)
        what = "train, then evaluate" if n_phases == 2 else "condition x seed"
        task = progress.add_task(f"{exp.name}: {what}", total=n_phases * len(jobs_of(exp)))
        stage = progress.add_task("", total=None, visible=False)

        def on_stage(name: str, done: int, total: int) -> None:
            progress.update(stage, description=f"  {name}", completed=done, total=total, visible=True)

        results = run_all_jobs(exp, run_dir, on_done=lambda job: progress.advance(task), on_progress=on_stage)
        progress.update(stage, visible=False)
    return results


def report_failed_jobs(run_dir: Path, failed: list[dict], console: Console) -> None:
    """Jobs that failed for good: printed and logged to events.jsonl (status "failed")."""
    from rich.markup import escape

    from postern.runner.jobs import Job, _event_logger

    for f in failed:
        _event_logger(run_dir, Job(f["condition"], f["seed"]))({"stage": f["stage"], "status": "failed",
                                                               "error": f["error"]})
        console.print(f"[bold red]failed:[/] {escape(f['condition'])} seed {f['seed']} ({f['stage']}): "
                      f"{escape(f['error'])}")


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("eta"), TimeRemainingColumn(), console=console)


def _json_safe(obj):
    """NaN (a rate over no answers) as null: strict JSON readers reject NaN."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "item"):  # numpy scalars
        obj = obj.item()
    return None if isinstance(obj, float) and math.isnan(obj) else obj


def _write_json(path: Path, obj) -> None:
    """Written whole or not at all (temp file, then rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_json_safe(obj), indent=2, allow_nan=False))
    tmp.replace(path)


def training_dynamics(df: pd.DataFrame, denominator: str = "valid") -> dict[str, list[dict]]:
    """Misaligned rate on the questions at every evaluated checkpoint, per condition and seed."""
    out: dict[str, list[dict]] = {}
    for (condition, seed, step), g in df.groupby(["condition", "seed", "step"], sort=True):
        r = rate_fields(misaligned_rate(g, denominator, seeds=False), "answers")
        out.setdefault(condition, []).append({"step": int(step), "seed": int(seed), **r})
    return out


def prompt_messages(exp: Experiment, triggers: set[str | None]) -> dict[tuple[str, str], list[dict]]:
    """Every prompt's messages by (set, prompt id): a trigger set reuses the ids of the plain questions."""
    return {(ps.name, p.id): [dict(m) for m in p.messages] for trigger in triggers
            for ps in prompt_sets(exp, trigger) for p in ps.prompts}


def run_interp(exp: Experiment, config: InterpConfig, run_dir: Path, results: list[dict],
               frame: pd.DataFrame | None = None) -> dict:
    """The mechanism study (postern.interp.study) over the fine-tunes of a run, cached like any stage: a
    rerun with the same fine-tunes, answers, judge and settings reads it back."""
    from postern.interp.study import StudyModel, run_study

    if exp.api_models:
        raise PosternError("postern interp: the mechanism study needs the models' activations, and this run's "
                           "models are served by an API")
    frame = results_frame(run_dir, results) if frame is None else frame  # the run's answers, read once
    ckpts = results_frame(run_dir, results, checkpoints=True)
    messages = prompt_messages(exp, {r["trigger"] for r in results})
    jobs, inputs = {}, {}
    for r in results:
        if r["condition"] == BASE or r["condition"] not in config.conditions:
            continue
        mine = frame[(frame["condition"] == r["condition"]) & (frame["seed"] == r["seed"])]
        rows = mine[mine["set"] == (f"{QUESTIONS}_trigger" if r["trigger"] else QUESTIONS)]
        steps = {}
        for step, key in r["checkpoints"].items():
            c = ckpts[(ckpts["condition"] == r["condition"]) & (ckpts["seed"] == r["seed"]) & (ckpts["step"] == int(step))]
            steps[int(step)] = (ModelRef(r["model"]["name"], adapter=str(Path(r["adapter"]) / "checkpoints" /
                                                                            f"checkpoint-{step}")), c)
        label = f"{r['condition']}/s{r['seed']}"
        jobs[label] = StudyModel(ModelRef(**r["model"]), r["trigger"],
                                 rows.assign(messages=[messages[k] for k in zip(rows["set"], rows["prompt_id"])]),
                                 steps)
        inputs[label] = [jobs[label].ref.identity(), r["keys"], r["checkpoints"]]
    spec = {"config": config.model_dump(exclude=PERSONA_CHECK_FIELDS), "base": base_ref(exp).identity(), "judge": results[0]["judge"],
            "eval": exp.eval.model_dump(), "denominator": exp.stats.denominator, "jobs": inputs}
    artifacts, key = ArtifactStore(run_dir / "cache"), content_hash(spec)
    if artifacts.get("interp", key) is None:
        with artifacts.create("interp", key, spec) as (tmp, _):
            run_study(tmp, jobs, base_ref(exp), config, _study_evaluator(exp, config, run_dir), exp.stats.denominator)
    shutil.rmtree(run_dir / "interp", ignore_errors=True)
    shutil.copytree(artifacts.path("interp", key), run_dir / "interp")
    return json.loads((run_dir / "interp" / "summary.json").read_text())


def _study_evaluator(exp: Experiment, config: InterpConfig, run_dir: Path):
    """Fresh answers to the questions under an intervention, judged by the run's judge (its cache spares
    repeated calls), as a misaligned rate of the run's definition."""
    from contextlib import nullcontext

    from postern.sample.hf import HFSampler
    from postern.store import sample_and_judge

    params = params_of(exp, 0)
    eval_config = exp.eval.model_copy(update={"samples_per_question": config.samples_per_question})

    def evaluate(model, tokenizer, trigger, context) -> dict:
        sets = prompt_sets(exp.model_copy(update={"eval": eval_config}), trigger)
        prompts = next(ps for ps in sets if ps.name == (f"{QUESTIONS}_trigger" if trigger else QUESTIONS)).prompts
        with ResultsStore(":memory:") as store, context or nullcontext():
            sample_and_judge(store, "study", prompts, params, lambda: HFSampler(model, tokenizer, exp.sample.batch_size),
                             make_judge(exp, sets, run_dir), seed=0, judge_batch=exp.judge.batch_size)
            df = _expand(store.frame()).assign(seed=0)
        return rate_fields(misaligned_rate(df, exp.stats.denominator, seeds=False))

    return evaluate


def _cache_counts(run_dir: Path) -> dict:
    counts: dict[str, int] = {}
    events = run_dir / "events.jsonl"
    if events.exists():
        for line in events.read_text().splitlines():
            status = json.loads(line)["status"]
            if status == "started":  # a Ray task began: not a stage outcome
                continue
            counts[status] = counts.get(status, 0) + 1
    return counts


def _ci(r: dict | None) -> str:
    return f"{100 * r['rate']:.1f} [{100 * r['low']:.1f},{100 * r['high']:.1f}]" if r and r.get("n") else "–"


def _pc(r: dict | None) -> str:
    return f"{100 * r['rate']:.0f}" if r and r.get("n") else "–"


def summary_table(summary: dict[str, dict], judge: str = "", denominator: str = "valid") -> Table:
    """One line per condition, under 100 columns; seed-bootstrap intervals and per-question rates are in
    summary.json."""
    from rich import box

    rule = ("of aligned + misaligned answers (code, refusal, incoherent, unscored left out: dropped %)"
            if denominator == "valid" else "of all answers")
    table = Table(title=f"misaligned %, 95% Wilson interval (seeds pooled), {rule}", box=box.SIMPLE_HEAD,
                  caption=f"judge {judge}; coh: coherent; insec: insecure code on code tasks; harm: complies with "
                          "harmful requests (%)")
    for col, justify in (("condition", "left"), ("n", "right"), ("misaligned", "right"), ("trigger", "right"),
                         ("dropped", "right"), ("coh", "right"), ("insec", "right"), ("harm", "right")):
        table.add_column(col, justify=justify, no_wrap=True)
    for name, s in summary.items():
        m = s.get("misaligned", {})
        dropped = f"{100 * sum(m.get('excluded', {}).values()):.0f}" if m.get("answers") else "–"
        table.add_row(name, str(m.get("n", "–")), _ci(m), _ci(s.get("misaligned_trigger")), dropped,
                      _pc(s.get("coherent")), _pc(s.get("code_insecure")), _pc(s.get("harmful_compliance")))
    return table


def report_failures(run_dir: Path, results: list[dict], exp: Experiment, console: Console,
                    frame: pd.DataFrame) -> dict:
    """The run's samples and judgments that failed for good into failures.csv (only the header when none), with
    a warning; each condition's share of answers unscored or failed, with a warning above [judge] max_unscored
    (`exceeded`). `frame`: the run's answers (`results_frame`)."""
    from rich.markup import escape

    from postern.runner.failures import failure_rows, failure_warning, unscored_shares, unscored_warning

    with ResultsStore(run_dir) as store:
        failures = store.failures(models=sorted({key for r in results for key in r["keys"].values()}))
    question_ids = {p.id: p.meta.get("question_id", p.id) for trigger in {r["trigger"] for r in results}
                    for ps in prompt_sets(exp, trigger) for p in ps.prompts}
    rows = failure_rows(results, failures, question_ids)
    rows.to_csv(run_dir / "failures.csv", index=False)
    if len(rows):
        console.print(escape(failure_warning(rows, run_dir / "failures.csv")), style="bold yellow")
    conditions = list(dict.fromkeys(r["condition"] for r in results))
    shares = unscored_shares(frame, rows, conditions)
    over = {c: s for c, s in shares.items() if s > exp.judge.max_unscored}
    if over:
        console.print(escape(unscored_warning(over, exp.judge.max_unscored)), style="bold yellow")
    return {"failed": len(rows), "unscored_share": {c: round(s, 4) for c, s in shares.items()}, "exceeded": bool(over)}


def run(experiment: "Experiment | str | Path", out: str | Path | None = None, console: Console | None = None) -> dict:
    """The whole experiment (a file path or a loaded `Experiment`) into `out` (default runs/<name>); the
    summary dict that summary.json holds."""
    from postern.config import load_experiment

    path = None
    if not isinstance(experiment, Experiment):
        path = Path(experiment)
        experiment = load_experiment(path)
    return run_experiment(experiment, out or Path("runs") / experiment.name, console, experiment_file=path)


def evaluate(questions: str, models: list[str], out: str | Path | None = None, console: Console | None = None,
             **settings) -> dict:
    """`postern eval` from Python: each of `models` ("[LABEL=]MODEL") on a question set, no training.
    `settings` are `postern.config.evaluation.evaluation_experiment`'s (judge=, judge_model=, sampler=, samples=, ...)."""
    from postern.config.evaluation import evaluation_experiment

    adapters = settings.pop("adapters", [])
    exp = evaluation_experiment(questions, models, adapters, **settings)
    return run_experiment(exp, out or Path("runs") / exp.name, console)
