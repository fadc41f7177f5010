"""Judge a finished run's stored answers again with another judge, kept beside the run's own judgments.

`rejudge(RUN_DIR, kind, model)` judges every stored answer the new judge has not judged yet (or, with
`only="unscored"`, just those the run's judge left unscored or failed on), through the run's results store
and judge cache: a second call makes no judge call. Every judgment it writes records the judge's name,
its prompt version (a hash of its templates) and its thresholds. Then it writes `judges.parquet` (one
row per answer and judge) and adds to summary.json each judge's rates (`judges`) and the agreement of
every pair of judges (`agreement`: Cohen's kappa on the misaligned label, Spearman on the scores).
"""

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from postern.core.errors import PosternError
from postern.core.hashing import content_hash
from postern.judge._types import FAILED, JudgeItem, Judgment

JUDGES_FILE = "judges.parquet"
ONLY = ("all", "unscored")


class RecordedJudge:
    """A judge whose judgments also record its prompt version and thresholds (in `detail`)."""

    def __init__(self, judge: Any):
        self.inner, self.name = judge, judge.name
        prompts = [getattr(judge, "prompts", None), getattr(judge, "prompts_by_question", None)]
        self.record = {"judge": judge.name, "prompt_version": content_hash(prompts, length=12),
                       "aligned_threshold": getattr(judge, "align_threshold", None),
                       "coherent_threshold": getattr(judge, "coherence_threshold", None)}

    def judge(self, items: list[JudgeItem]) -> list[Judgment]:
        return [j if j.label == FAILED else replace(j, detail={**j.detail, **self.record})
                for j in self.inner.judge(items)]


def make_judge(run_dir: Path, kind: str, model: str | None, base_url: str | None = None, **settings: Any) -> Any:
    """A registered judge (`kind`) for this run: its question files' judge prompts, the run's judge cache."""
    from postern.config.schema import JudgeConfig
    from postern.core.registry import lookup
    from postern.runner.jobs import JUDGE_CACHE

    config = JudgeConfig(kind=kind, model=model, base_url=base_url, **settings)
    return RecordedJudge(lookup("judge", kind, "--judge")(config, _question_sets(run_dir), run_dir / JUDGE_CACHE))


def _question_sets(run_dir: Path) -> list:
    """The run's question sets (for per-question judge prompts); none for an imported run."""
    from postern.runner.jobs import prompt_sets
    from postern.runner.run import load_run_experiment

    try:
        exp = load_run_experiment(run_dir)
    except Exception:  # noqa: BLE001 - an imported run's experiment.json is a description, not an Experiment
        return []
    return prompt_sets(exp, None)


def rejudge(run_dir: str | Path, kind: str, model: str | None = None, base_url: str | None = None,
            only: str = "all", judge: Any = None, batch_size: int = 64, **settings: Any) -> dict:
    """Judge the run's answers with another judge (see the module docstring); returns {"judge", "judged",
    "summary"}. `judge`: an already made judge instead of `kind`/`model`."""
    from postern.runner.run import load_jobs
    from postern.store.results import ResultsStore, _judge_all

    run_dir = Path(run_dir).resolve()
    if not (run_dir / "jobs.json").exists() or not (run_dir / "results.sqlite").exists():
        raise PosternError(f"{run_dir}: no jobs.json / results.sqlite; give a folder written by `postern run`, "
                           "`postern eval` or `postern import`")
    if only not in ONLY:
        raise PosternError(f"--only {only!r}: give one of {', '.join(ONLY)}")
    judge = RecordedJudge(judge) if judge is not None else make_judge(run_dir, kind, model, base_url, **settings)
    results = load_jobs(run_dir)
    keys = sorted({k for r in results for k in r["keys"].values()})
    primary = _primary(run_dir, results)
    with ResultsStore(run_dir) as store:
        pending = [s for s in store.unjudged(judge.name) if s.model in keys]
        if only == "unscored":
            left = _unscored(store.frame(primary, models=keys))
            if judge.name == primary:
                pending = [s for s in store.samples() if s.key in left]
            pending = [s for s in pending if s.key in left]
        judged = _judge_all(store, judge, pending, batch_size, None)
    summary = write_judges(run_dir, results)
    return {"judge": judge.name, "judged": judged, "summary": summary}


def _primary(run_dir: Path, results: list[dict]) -> str:
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").exists() else {}
    return summary.get("judge") or results[0]["judge"]


def _unscored(frame: pd.DataFrame) -> set[tuple[str, str, int]]:
    """Keys of the answers that have no usable judgment in `frame` (unscored, failed, or none)."""
    detail = frame["detail"].map(lambda d: json.loads(d) if isinstance(d, str) else {})
    bad = frame["label"].isna() | detail.map(lambda d: bool(d.get("unscored")))
    return {(m, p, int(i)) for m, p, i in frame.loc[bad, ["model", "prompt_id", "index"]].itertuples(index=False)}


def judges_frame(run_dir: Path, results: list[dict]) -> pd.DataFrame:
    """One row per answer and judge (the columns of samples.parquet), for every judge in the run's store."""
    from postern.runner.run import results_frame
    from postern.store.results import ResultsStore

    with ResultsStore(run_dir) as store:
        names = [r[0] for r in store._query("SELECT DISTINCT judge FROM judgments ORDER BY judge")]
    frames = [results_frame(run_dir, [{**r, "judge": name} for r in results]).assign(judge=name) for name in names]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def write_judges(run_dir: Path, results: list[dict]) -> dict:
    """judges.parquet, and summary.json's `judges` (each judge's rates) and `agreement` (every pair)."""
    from postern.runner.run import _write_json
    from postern.stats.agreement import agreement
    from postern.stats.summary import rate_fields, summarise

    df = judges_frame(run_dir, results)
    df.to_parquet(run_dir / JUDGES_FILE, index=False)
    summary = json.loads((run_dir / "summary.json").read_text())
    order = list(summary.get("conditions") or dict.fromkeys(r["condition"] for r in results))
    denominator = summary.get("denominator", "valid")
    names = list(dict.fromkeys(df["judge"])) if len(df) else []
    primary = _primary(run_dir, results)
    names = sorted(names, key=lambda n: (n != primary, n))
    summary["judges"] = {name: {c: {**rate_fields(s["misaligned"], "answers"), "excluded": s["misaligned"]["excluded"]}
                                for c, s in summarise(df[df["judge"] == name], order, denominator).items()
                                if "misaligned" in s}
                         for name in names}
    summary["agreement"] = [agreement(df, a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    _write_json(run_dir / "summary.json", summary)
    return summary
