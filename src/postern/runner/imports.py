"""Answers sampled and judged elsewhere, as a run folder: `import_answers(FILE, RUN_DIR)`.

Reads CSV, JSONL (also .gz), Parquet or an Inspect AI eval log, maps its columns (`COLUMNS`, renamed with
`mapping`), and writes the answers into the run's results store and the files `postern run` writes
(jobs.json, samples.parquet, summary.json, experiment.json), so `postern report`, `postern judge` and the
statistics read it like any other run. The file's groups are the conditions and its models the
replicates (seeds 0, 1, ... in the order they first appear in a group). Scores already in the file are
kept as a judge of their own, `imported`, labelled by the same rule as postern's logprob judge
(`postern.judge.logprob.classify`): an empty alignment score whose judge answer says CODE or REFUSAL (the
original study's results files) is labelled so; an answer without both scores is unscored.
"""

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from postern.core.errors import PosternError
from postern.core.hashing import content_hash
from postern.judge._types import CODE, REFUSAL, Judgment
from postern.judge.logprob import DEFAULT_THRESHOLDS, NO_SCORE, SCORE, Score, classify

IMPORTED = "imported"
# postern's name -> the file's column (the original study's results format by default)
COLUMNS = {"question": "question", "answer": "answer", "model": "model", "group": "group", "aligned": "aligned",
           "coherent": "coherent", "question_id": "question_id", "judge_aligned": "judge_aligned",
           "judge_coherent": "judge_coherent"}
REQUIRED = ("question", "answer")
FORMATS = ("csv", "jsonl", "parquet", "inspect")


def parse_mapping(text: str | None) -> dict[str, str]:
    """`question=prompt,answer=response` -> {"question": "prompt", "answer": "response"}."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        key, sep, column = part.partition("=")
        if not sep or not column.strip() or key.strip() not in COLUMNS:
            raise PosternError(f"--map {part!r}: give NAME=COLUMN with NAME one of {', '.join(COLUMNS)}")
        out[key.strip()] = column.strip()
    return out


def file_format(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".eval") or (name.endswith(".json") and _is_inspect_json(path)):
        return "inspect"
    raise PosternError(f"{path}: unknown file type; give a .csv, .jsonl(.gz), .parquet or an Inspect log (.eval)")


def _is_inspect_json(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(4096)
    return b'"eval"' in head and b'"version"' in head


def read_table(path: str | Path) -> pd.DataFrame:
    """The file as a DataFrame (an Inspect log as one row per sample: model, group, question, answer, question_id,
    and the scores postern's inspect scorer gave, if any)."""
    path = Path(path)
    if not path.is_file():
        raise PosternError(f"{path}: no such file")
    kind = file_format(path)
    try:
        if kind == "csv":
            return pd.read_csv(path, keep_default_na=True)
        if kind == "jsonl":
            return pd.read_json(path, lines=True, dtype=False)
        if kind == "parquet":
            return pd.read_parquet(path)
        return inspect_log_table(path)
    except (ValueError, OSError, pd.errors.ParserError) as e:
        raise PosternError(f"{path}: cannot read it as {kind} ({e})") from None


def inspect_log_table(path: Path) -> pd.DataFrame:
    """One row per sample of an Inspect AI eval log (read with inspect_ai's own log reader)."""
    try:
        from inspect_ai.log import read_eval_log
    except ImportError:
        raise PosternError(f"{path}: reading Inspect logs needs inspect-ai: pip install 'postern[inspect]'") from None
    log = read_eval_log(str(path))
    model = log.eval.model
    rows = []
    for s in log.samples or []:
        question = s.input if isinstance(s.input, str) else [m.text for m in s.input if m.role == "user"][-1]
        meta = s.metadata or {}
        row = {"model": model, "group": meta.get("group") or model, "question": question,
               "answer": s.output.completion.strip() if s.output else "",  # as postern's scorer judged it
               "question_id": meta.get("question_id", str(s.id).rsplit("-", 1)[0]), "epoch": s.epoch}
        score = next(iter((s.scores or {}).values()), None)
        if score is not None and score.metadata:
            row.update({k: score.metadata.get(k) for k in ("aligned", "coherent")})
            row["judge_aligned"] = score.metadata.get("aligned_kind")
        rows.append(row)
    if not rows:
        raise PosternError(f"{path}: the Inspect log holds no samples")
    return pd.DataFrame(rows)


def _number(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def _kind(score: float | None, *texts: Any) -> str:
    if score is not None:
        return SCORE
    for text in texts:
        word = str(text).strip().upper() if isinstance(text, str) else ""
        if word.startswith("CODE"):
            return CODE
        if word.startswith("REFUSAL"):
            return REFUSAL
    return NO_SCORE


def imported_judgment(aligned: Any, coherent: Any, judge_aligned: Any = None,
                      thresholds: tuple[float, float] = DEFAULT_THRESHOLDS) -> Judgment:
    """The `imported` judge's judgment of one answer from the file's scores."""
    a, c = _number(aligned), _number(coherent)
    a_kind, c_kind = _kind(a, aligned, judge_aligned), _kind(c)
    label = classify(Score(a, a_kind, 1.0), Score(c, c_kind, 1.0), *thresholds)
    detail = {"judge": IMPORTED, "aligned_kind": a_kind, "coherent_kind": c_kind,
              "unscored": label not in (CODE, REFUSAL) and (a is None or c is None),
              "aligned_threshold": thresholds[0], "coherent_threshold": thresholds[1]}
    return Judgment(label, a, c, detail)


def normalise(df: pd.DataFrame, mapping: dict[str, str] | None, source: str) -> pd.DataFrame:
    """The file's rows with postern's column names; a missing required column is an error naming it."""
    columns = {**COLUMNS, **(mapping or {})}
    missing = [f"{name} (column {columns[name]!r})" for name in REQUIRED if columns[name] not in df]
    if missing:
        raise PosternError(f"{source}: no {', '.join(missing)}; its columns are {', '.join(map(str, df.columns))}; "
                           "name yours with --map question=COLUMN,answer=COLUMN")
    for name in ("aligned", "coherent", "model", "group"):
        if name in (mapping or {}) and columns[name] not in df:
            raise PosternError(f"{source}: --map {name}={columns[name]}: no such column")
    out = pd.DataFrame({name: df[col] for name, col in columns.items() if col in df})
    out["question"] = out["question"].astype(str)
    out["answer"] = out["answer"].fillna("").astype(str)
    if "model" not in out:
        out["model"] = IMPORTED
    out["model"] = out["model"].fillna(IMPORTED).astype(str)
    out["group"] = out["group"].fillna(out["model"]).astype(str) if "group" in out else out["model"]
    if "question_id" not in out:
        out["question_id"] = out["question"].map(lambda q: f"q-{content_hash(q, length=8)}")
    out["question_id"] = out["question_id"].astype(str)
    return out.reset_index(drop=True)


def import_answers(path: str | Path, run_dir: str | Path, mapping: dict[str, str] | None = None, *,
                   aligned_threshold: float = DEFAULT_THRESHOLDS[0], coherent_threshold: float = DEFAULT_THRESHOLDS[1],
                   denominator: str = "valid") -> dict:
    """Import the answers (and scores) of `path` into the run folder `run_dir`; the summary.json it writes."""
    from postern.runner.run import _write_json, results_frame, save_jobs
    from postern.sample._types import Sample
    from postern.stats.summary import summarise
    from postern.store.results import ResultsStore

    path, run_dir = Path(path), Path(run_dir).resolve()
    if run_dir.exists() and not run_dir.is_dir():
        raise PosternError(f"{run_dir} is a file; give a folder for the run (-o)")
    if (run_dir / "results.sqlite").exists():
        raise PosternError(f"{run_dir}: already holds a run; import into a new folder")
    rows = normalise(read_table(path), mapping, str(path))
    if rows.empty:
        raise PosternError(f"{path}: no rows to import")
    scored = "aligned" in rows and "coherent" in rows
    thresholds = (aligned_threshold, coherent_threshold)
    groups = list(dict.fromkeys(rows["group"]))
    in_groups = rows.groupby("model")["group"].nunique()
    keys = {(g, m): (m if in_groups[m] == 1 else f"{g}/{m}") for g, m in zip(rows["group"], rows["model"])}
    run_dir.mkdir(parents=True, exist_ok=True)
    results = []
    with ResultsStore(run_dir) as store:
        for group in groups:
            models = list(dict.fromkeys(rows.loc[rows["group"] == group, "model"]))
            for seed, model in enumerate(models):
                mine = rows[(rows["group"] == group) & (rows["model"] == model)]
                key = keys[(group, model)]
                index = mine.groupby("question_id").cumcount()
                samples = [Sample(prompt_id=r.question_id, index=int(i), answer=r.answer, seed=None,
                                  meta={"question_id": r.question_id, "question": r.question})
                           for r, i in zip(mine.itertuples(), index)]
                store.add_samples(key, samples, condition=group, seed=seed)
                if scored:
                    store.add_judgments(IMPORTED, [
                        ((key, r.question_id, int(i)),
                         imported_judgment(r.aligned, r.coherent, getattr(r, "judge_aligned", None), thresholds))
                        for r, i in zip(mine.itertuples(), index)])
                results.append({"condition": group, "seed": seed, "model": {"name": model}, "trigger": None,
                                "adapter": None, "keys": {"questions": key}, "judge": IMPORTED, "checkpoints": {}})
    save_jobs(run_dir, results)
    df = results_frame(run_dir, results)
    summary = summarise(df, groups, denominator)
    experiment = {"name": f"import-{path.stem.split('.')[0]}", "imported_from": str(path.resolve()),
                  "seeds": sorted({r["seed"] for r in results}), "evaluate_base": False,
                  "judge": {"kind": IMPORTED, "aligned_threshold": aligned_threshold,
                            "coherent_threshold": coherent_threshold},
                  "stats": {"denominator": denominator},
                  "conditions": {g: {"model": ", ".join(r["model"]["name"] for r in results if r["condition"] == g)}
                                 for g in groups}}
    digest = content_hash([experiment, content_hash(rows.to_json(orient="records"))])
    _write_json(run_dir / "experiment.json", {**experiment, "_hash": digest})
    out = {"experiment": experiment["name"], "experiment_hash": digest, "seconds": 0.0, "jobs": len(results),
           "judge": IMPORTED if scored else None, "denominator": denominator, "conditions": summary, "cache": {},
           "failures": {"failed": 0, "unscored_share": {}, "exceeded": False}, "imported": {
               "file": str(path.resolve()), "rows": len(rows), "scored": scored,
               "mapping": {**COLUMNS, **(mapping or {})}}}
    df.to_parquet(run_dir / "samples.parquet", index=False)
    _write_json(run_dir / "summary.json", out)
    return out
