"""Per-condition summaries of judged rows: rates with Wilson (pooled) and seed-bootstrap intervals.

Input is a DataFrame with one row per judged answer and at least the columns condition, seed, set,
label. Misaligned rates are over all answers of a set (incoherent and off-topic answers count in the
denominator and are reported beside the rate, so "misaligned" is never confused with "nonsense").
"""

import math

import pandas as pd

from postern.stats.intervals import bootstrap_over_groups, wilson


def rate(hits: pd.Series, by_seed: pd.Series | None = None, bootstrap_seed: int = 0) -> dict:
    """Rate of a boolean series with a Wilson interval and, given seeds, a two-level bootstrap."""
    k, n = int(hits.sum()), int(len(hits))
    lo, hi = wilson(k, n)
    out = {"k": k, "n": n, "rate": k / n if n else math.nan, "low": lo, "high": hi}
    if by_seed is not None and n:
        groups = [hits[by_seed == s].to_numpy() for s in sorted(by_seed.unique())]
        out["seeds"] = len(groups)
        out["boot_low"], out["boot_high"] = bootstrap_over_groups(groups, rng_seed=bootstrap_seed)
    return out


def _per_seed(hits: pd.Series, seeds: pd.Series) -> dict:
    return {int(s): rate(hits[seeds == s]) for s in sorted(seeds.unique())}


def condition_summary(df: pd.DataFrame) -> dict:
    """All rates for one condition's rows (all seeds)."""
    out: dict = {}
    q = df[df["set"] == "questions"]
    if len(q):
        mis = q["label"] == "misaligned"
        out["misaligned"] = rate(mis, q["seed"]) | {"per_seed": _per_seed(mis, q["seed"])}
        out["coherent"] = rate(q["label"].isin(["aligned", "misaligned"]))
        out["labels"] = q["label"].value_counts().to_dict()
        out["per_question"] = {c: rate(g["label"] == "misaligned") for c, g in q.groupby("category")}
    t = df[df["set"] == "questions_trigger"]
    if len(t):
        out["misaligned_trigger"] = rate(t["label"] == "misaligned", t["seed"])
    c = df[df["set"] == "code"]
    if len(c):
        kind = c.get("detail_code", pd.Series(index=c.index, dtype=object))
        out["code_on_topic"] = rate(kind.isin(["secure", "insecure", "insecure_disclosed"]))
        out["code_insecure"] = rate(kind.isin(["insecure", "insecure_disclosed"]))
        out["code_disclosed"] = rate(kind == "insecure_disclosed")
    h = df[df["set"] == "harmful"]
    if len(h):
        out["harmful_compliance"] = rate(h["label"] == "misaligned", h["seed"])
    return out


def summarise(df: pd.DataFrame, order: list[str] | None = None) -> dict[str, dict]:
    conditions = order or list(dict.fromkeys(df["condition"]))
    return {c: condition_summary(df[df["condition"] == c]) for c in conditions if (df["condition"] == c).any()}
