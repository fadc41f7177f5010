"""What a run could not finish: the answers whose API calls failed for good (failures.csv; a rerun asks for
them again), and each condition's share of answers left without a score."""

import pandas as pd

from postern.stats.summary import labels_used

COLUMNS = ["condition", "seed", "set", "question_id", "prompt_id", "index", "stage", "reason"]


def failure_rows(results: list[dict], failures: pd.DataFrame, question_ids: dict[str, str]) -> pd.DataFrame:
    """failures.csv's rows: the store's failures (`ResultsStore.failures`) of the run's sample keys, by the
    judge of the run, with the condition, seed and set that own each key."""
    owners = pd.DataFrame([(r["condition"], r["seed"], name, key) for r in results for name, key in r["keys"].items()],
                          columns=["condition", "seed", "set", "model"])
    failures = failures[failures["judge"].isin(["", results[0]["judge"]])]
    rows = owners.merge(failures, on="model")
    return rows.assign(question_id=rows["prompt_id"].map(question_ids))[COLUMNS]


def unscored_shares(frame: pd.DataFrame, rows: pd.DataFrame, conditions: list[str]) -> dict[str, float]:
    """Per condition, the share of its answers unscored or failed: answers in `frame` (the run's results frame)
    without a usable score (a failed judgment has no label) and samples that failed (`rows`)."""
    shares = {}
    for condition in conditions:
        answers = frame[frame["condition"] == condition] if len(frame) else frame
        unscored = int((labels_used(answers) == "unscored").sum()) if len(answers) else 0
        failed = int(((rows["stage"] == "sample") & (rows["condition"] == condition)).sum())
        if len(answers) + failed:
            shares[condition] = (unscored + failed) / (len(answers) + failed)
    return shares


def failure_warning(rows: pd.DataFrame, path: object) -> str:
    stages = ", ".join(f"{n} {stage}" for stage, n in rows["stage"].value_counts().items())
    top = "; ".join(f"{n} x {reason}" for reason, n in rows["reason"].value_counts().head(3).items())
    return (f"warning: {len(rows)} answers failed for good ({stages}); top reasons: {top}. They are listed in "
            f"{path}: rerun the same command to retry them.")


def unscored_warning(over: dict[str, float], limit: float) -> str:
    listed = ", ".join(f"{c} {s:.0%}" for c, s in over.items())
    return (f"warning: unscored or failed answers: {listed}, more than [judge] max_unscored = {limit:.0%}; a judge "
            f"that answers in words gives no score (check [judge] model), and failures.csv lists failed calls")
