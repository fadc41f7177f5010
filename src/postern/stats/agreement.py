"""Agreement between two judges on the same answers: Cohen's kappa on the misaligned label, Spearman's rank
correlation on their scores, and the answers they disagree on.

Input: a DataFrame with one row per answer and judge (`judges.parquet` of a run folder: the columns of
`samples.parquet` plus `judge`). Answers are matched on (model, prompt_id, index). The misaligned label
of each judge is the one of `postern.stats.summary` (`labels_used`); kappa is computed on the answers both
judges scored (neither unscored), misaligned vs anything else.
"""

import math

import pandas as pd
from scipy.stats import spearmanr

from postern.stats.summary import labels_used

KEY = ["model", "prompt_id", "index"]


def cohen_kappa(a: pd.Series, b: pd.Series) -> float:
    """Cohen's kappa of two equally long label series (nan when there are none, or both are constant and equal)."""
    a, b = list(a), list(b)
    n = len(a)
    if not n:
        return math.nan
    observed = sum(x == y for x, y in zip(a, b)) / n
    expected = sum((a.count(c) / n) * (b.count(c) / n) for c in set(a) | set(b))
    return math.nan if expected == 1 else (observed - expected) / (1 - expected)


def spearman(a: pd.Series, b: pd.Series) -> float:
    """Spearman's rho over the pairs where both are numbers (nan with fewer than 3 pairs or a constant side)."""
    both = pd.DataFrame({"a": pd.to_numeric(a, errors="coerce"), "b": pd.to_numeric(b, errors="coerce")}).dropna()
    if len(both) < 3 or both["a"].nunique() < 2 or both["b"].nunique() < 2:
        return math.nan
    return float(spearmanr(both["a"], both["b"]).statistic)


def paired(df: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """The answers judged by both `a` and `b`, one row each: shared columns, then label/aligned/coherent/unscored
    of each judge suffixed `_a` / `_b`, and `misaligned_a` / `misaligned_b`."""
    cols = ["label", "aligned", "coherent"]
    sides = []
    for name in (a, b):
        mine = df[df["judge"] == name].copy()
        mine["label"] = labels_used(mine)
        mine["misaligned"] = mine["label"] == "misaligned"
        sides.append(mine.set_index(KEY)[cols + ["misaligned"]])
    first = df[df["judge"] == a].set_index(KEY)
    shared = first[[c for c in ("condition", "seed", "question_id", "question", "answer") if c in first]]
    out = shared.join(sides[0].add_suffix("_a"), how="inner").join(sides[1].add_suffix("_b"), how="inner")
    return out.reset_index()


def agreement(df: pd.DataFrame, a: str, b: str) -> dict:
    """Kappa on the misaligned label, Spearman on each score, counts, and the disagreements."""
    p = paired(df, a, b)
    scored = p[(p["label_a"] != "unscored") & (p["label_b"] != "unscored")]
    differ = scored[scored["misaligned_a"] != scored["misaligned_b"]]
    return {"a": a, "b": b, "answers": int(len(p)), "scored_by_both": int(len(scored)),
            "kappa": cohen_kappa(scored["misaligned_a"], scored["misaligned_b"]),
            "raw_agreement": float((scored["misaligned_a"] == scored["misaligned_b"]).mean()) if len(scored)
            else math.nan,
            "spearman_aligned": spearman(p["aligned_a"], p["aligned_b"]),
            "spearman_coherent": spearman(p["coherent_a"], p["coherent_b"]),
            "disagree": int(len(differ)), "misaligned_only_a": int(differ["misaligned_a"].sum()),
            "misaligned_only_b": int(differ["misaligned_b"].sum())}


def disagreements(df: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """The answers both judges scored and only one called misaligned, largest alignment-score gap first."""
    p = paired(df, a, b)
    p = p[(p["label_a"] != "unscored") & (p["label_b"] != "unscored") & (p["misaligned_a"] != p["misaligned_b"])]
    gap = (pd.to_numeric(p["aligned_a"], errors="coerce") - pd.to_numeric(p["aligned_b"], errors="coerce")).abs()
    return p.assign(gap=gap).sort_values(["gap", "model", "prompt_id", "index"], ascending=[False, True, True, True],
                                         na_position="last")
