"""Misaligned rates and comparisons between conditions, from a DataFrame of judged rows.

Rows are answers with columns like condition, seed, question_id and label (as written by the
results store). A row counts as a hit when its label is `positive` ("misaligned" by default);
labels in `exclude` (e.g. code, refusal, incoherent) are dropped from the denominator first.
"""

import itertools
import math
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from postern.stats.intervals import bootstrap_over_groups, wilson

MISALIGNED = "misaligned"
DEFAULT_LABELS = ("code", "refusal", "incoherent")


def _hits(df: pd.DataFrame, label_col: str, positive: str, exclude: Sequence[str]) -> pd.DataFrame:
    """The rows left after `exclude`, with a 0/1 `_hit` column."""
    df = df[df[label_col].notna() & ~df[label_col].isin(list(exclude))]
    return df.assign(_hit=(df[label_col] == positive).astype(int))


def _by(by: Sequence[str] | str) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def rates(
    df: pd.DataFrame, by: Sequence[str] | str = ("condition",), *, label_col: str = "label",
    positive: str = MISALIGNED, exclude: Sequence[str] = (), confidence: float = 0.95,
) -> pd.DataFrame:
    """Per group: n, k (hits), rate and a Wilson interval (lo, hi)."""
    keys = _by(by)
    df = _hits(df, label_col, positive, exclude)
    if keys:
        out = df.groupby(keys, sort=True)["_hit"].agg(n="count", k="sum").reset_index()
    else:
        out = pd.DataFrame({"n": [len(df)], "k": [int(df["_hit"].sum())]})
    out["rate"] = out["k"] / out["n"]
    bounds = [wilson(int(k), int(n), confidence) for k, n in zip(out["k"], out["n"])]
    out["lo"], out["hi"] = [b[0] for b in bounds], [b[1] for b in bounds]
    return out


def rates_by_question(
    df: pd.DataFrame, by: Sequence[str] | str = ("condition",), *, question_col: str = "question_id", **kwargs: Any
) -> pd.DataFrame:
    """`rates` per group and question."""
    return rates(df, [*_by(by), question_col], **kwargs)


def _groups(df: pd.DataFrame, col: str) -> list[np.ndarray]:
    return [g["_hit"].to_numpy() for _, g in df.groupby(col, sort=True)]


def overall_rates(
    df: pd.DataFrame, by: Sequence[str] | str = ("condition",), *, label_col: str = "label",
    positive: str = MISALIGNED, exclude: Sequence[str] = (), seed_col: str = "seed",
    question_col: str = "question_id", confidence: float = 0.95, n_boot: int = 2000, rng_seed: int = 0,
) -> pd.DataFrame:
    """`rates` per group, plus bootstrap intervals over seeds (seed_lo, seed_hi) and over questions
    (question_lo, question_hi), each resampling the groups and then the answers within them."""
    keys = _by(by)
    out = rates(df, keys, label_col=label_col, positive=positive, exclude=exclude, confidence=confidence)
    hits = _hits(df, label_col, positive, exclude)
    parts = [g for _, g in hits.groupby(keys, sort=True)] if keys else [hits]  # same order as `out`
    for col, prefix in ((seed_col, "seed"), (question_col, "question")):
        if col not in hits.columns:
            continue
        bounds = [bootstrap_over_groups(_groups(g, col), confidence, n_boot, rng_seed) for g in parts]
        out[f"{prefix}_lo"], out[f"{prefix}_hi"] = [b[0] for b in bounds], [b[1] for b in bounds]
    return out


def label_rates(
    df: pd.DataFrame, by: Sequence[str] | str = ("condition",), *, label_col: str = "label",
    labels: Sequence[str] = DEFAULT_LABELS,
) -> pd.DataFrame:
    """Per group: n and the share of answers the judge gave each label (columns `<label>_rate`),
    e.g. how often it said CODE or REFUSAL or scored an answer incoherent."""
    keys = _by(by)
    df = df[df[label_col].notna()]
    indicators = pd.DataFrame({f"{lab}_rate": (df[label_col] == lab).astype(float) for lab in labels}, index=df.index)
    if not keys:
        return pd.DataFrame({"n": [len(df)], **{c: [indicators[c].mean()] for c in indicators}})
    frame = pd.concat([df[keys], indicators], axis=1)
    out = frame.groupby(keys, sort=True).mean().reset_index()
    out.insert(len(keys), "n", frame.groupby(keys, sort=True).size().to_numpy())
    return out


def bootstrap_over_questions(
    df: pd.DataFrame, *, question_col: str = "question_id", label_col: str = "label", positive: str = MISALIGNED,
    exclude: Sequence[str] = (), confidence: float = 0.95, n_boot: int = 2000, rng_seed: int = 0,
) -> tuple[float, float]:
    """Interval for the pooled rate of `df`, treating the questions as a sample from a larger pool."""
    groups = _groups(_hits(df, label_col, positive, exclude), question_col)
    return bootstrap_over_groups(groups, confidence, n_boot, rng_seed)


def two_proportion_ztest(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """Pooled two-proportion z test of p1 == p2: (z, two-sided p)."""
    if n1 == 0 or n2 == 0:
        return (math.nan, math.nan)
    p1, p2, pooled = k1 / n1, k2 / n2, (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return (0.0, 1.0)  # both rates are 0 or both are 1
    z = (p1 - p2) / se
    return (z, float(2 * norm.sf(abs(z))))


def difference_interval(k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """p1 - p2 with Newcombe's hybrid score interval (from the two Wilson intervals): (diff, lo, hi)."""
    if n1 == 0 or n2 == 0:
        return (math.nan, math.nan, math.nan)
    p1, p2 = k1 / n1, k2 / n2
    (l1, u1), (l2, u2) = wilson(k1, n1, confidence), wilson(k2, n2, confidence)
    diff = p1 - p2
    return (diff, diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), diff + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def _p_values(null: np.ndarray, observed: float, alternative: str, exact: bool) -> float:
    tol = 1e-12 * max(1.0, abs(observed))
    adjust = 0 if exact else 1  # Monte Carlo p values count the observed split as one of the draws
    greater = (np.sum(null >= observed - tol) + adjust) / (len(null) + adjust)
    less = (np.sum(null <= observed + tol) + adjust) / (len(null) + adjust)
    if alternative == "greater":
        return float(greater)
    if alternative == "less":
        return float(less)
    if alternative == "two-sided":
        return float(min(1.0, 2 * min(greater, less)))
    raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less', not {alternative!r}")


def permutation_test(
    a: Sequence[float], b: Sequence[float], *, alternative: str = "two-sided", n_resamples: int = 9999,
    rng_seed: int = 0,
) -> float:
    """p value for mean(a) - mean(b) under random reassignment of the pooled values.

    Exact (all splits) when there are at most `n_resamples` of them, else Monte Carlo. Use per-answer
    0/1 outcomes, or per-seed rates to make seeds the unit. Two-sided p = twice the smaller one-sided p.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) == 0 or len(y) == 0:
        return math.nan
    pooled, na = np.concatenate([x, y]), len(x)
    observed = x.mean() - y.mean()
    total = pooled.sum()
    if math.comb(len(pooled), na) <= n_resamples:
        sums = np.array([pooled[list(c)].sum() for c in itertools.combinations(range(len(pooled)), na)])
        exact = True
    else:
        rng = np.random.default_rng(rng_seed)
        sums = np.concatenate([
            rng.permuted(np.tile(pooled, (m, 1)), axis=1)[:, :na].sum(axis=1)
            for m in _chunks(n_resamples, max(1, 2_000_000 // len(pooled)))
        ])
        exact = False
    null = sums / na - (total - sums) / len(y)
    return _p_values(null, observed, alternative, exact)


def _chunks(total: int, size: int) -> list[int]:
    return [min(size, total - start) for start in range(0, total, size)]


def bootstrap_difference(
    groups_a: list[np.ndarray], groups_b: list[np.ndarray], confidence: float = 0.95, n_boot: int = 2000,
    rng_seed: int = 0,
) -> tuple[float, float]:
    """Interval for pooled rate(a) - rate(b), resampling each condition's groups (seeds) and then the
    answers within them, independently for the two conditions."""
    rng = np.random.default_rng(rng_seed)
    draws = np.empty(n_boot)
    for i in range(n_boot):
        draws[i] = _resampled_rate(groups_a, rng) - _resampled_rate(groups_b, rng)
    alpha = (1 - confidence) / 2
    return (float(np.quantile(draws, alpha)), float(np.quantile(draws, 1 - alpha)))


def _answers_rate(groups: list[np.ndarray], rng: np.random.Generator) -> float:
    """Pooled rate after resampling the answers within each of the given groups."""
    hits = sum(g[rng.integers(len(g), size=len(g))].sum() for g in groups)
    return float(hits / sum(len(g) for g in groups))


def _resampled_rate(groups: list[np.ndarray], rng: np.random.Generator) -> float:
    return _answers_rate([groups[j] for j in rng.integers(len(groups), size=len(groups))], rng)


def paired_bootstrap_over_questions(
    hits_a: pd.DataFrame, hits_b: pd.DataFrame, question_col: str, confidence: float = 0.95, n_boot: int = 2000,
    rng_seed: int = 0,
) -> tuple[float, float]:
    """Interval for rate(a) - rate(b) resampling the questions both conditions share (one draw of
    questions for both), then the answers within each question and condition."""
    questions = sorted(set(hits_a[question_col]) & set(hits_b[question_col]))
    if not questions:
        return (math.nan, math.nan)
    ga = {q: g["_hit"].to_numpy() for q, g in hits_a.groupby(question_col)}
    gb = {q: g["_hit"].to_numpy() for q, g in hits_b.groupby(question_col)}
    rng = np.random.default_rng(rng_seed)
    draws = np.empty(n_boot)
    for i in range(n_boot):
        picked = [questions[j] for j in rng.integers(len(questions), size=len(questions))]
        draws[i] = _answers_rate([ga[q] for q in picked], rng) - _answers_rate([gb[q] for q in picked], rng)
    alpha = (1 - confidence) / 2
    return (float(np.quantile(draws, alpha)), float(np.quantile(draws, 1 - alpha)))


def compare_conditions(
    df: pd.DataFrame, a: str, b: str, *, condition_col: str = "condition", seed_col: str = "seed",
    question_col: str = "question_id", label_col: str = "label", positive: str = MISALIGNED,
    exclude: Sequence[str] = (), confidence: float = 0.95, n_boot: int = 2000, n_resamples: int = 9999,
    rng_seed: int = 0,
) -> dict[str, Any]:
    """Condition a versus b: rates, difference with Newcombe interval, z test, permutation test
    (over seeds when both conditions have at least two, else over answers), and bootstrap
    intervals for the difference over seeds and over questions."""
    hits = _hits(df, label_col, positive, exclude)
    ha, hb = hits[hits[condition_col] == a], hits[hits[condition_col] == b]
    ka, na, kb, nb = int(ha["_hit"].sum()), len(ha), int(hb["_hit"].sum()), len(hb)
    diff, lo, hi = difference_interval(ka, na, kb, nb, confidence)
    z, p_z = two_proportion_ztest(ka, na, kb, nb)
    result = {"a": a, "b": b, "n_a": na, "k_a": ka, "rate_a": ka / na if na else math.nan, "n_b": nb, "k_b": kb,
              "rate_b": kb / nb if nb else math.nan, "diff": diff, "diff_lo": lo, "diff_hi": hi, "z": z, "p_z": p_z}
    seeded = seed_col in df.columns and ha[seed_col].nunique() >= 2 and hb[seed_col].nunique() >= 2
    if seeded:
        per_seed_a = ha.groupby(seed_col)["_hit"].mean().to_numpy()
        per_seed_b = hb.groupby(seed_col)["_hit"].mean().to_numpy()
        result["p_perm"] = permutation_test(per_seed_a, per_seed_b, n_resamples=n_resamples, rng_seed=rng_seed)
        result["perm_unit"] = "seed"
        result["diff_seed_lo"], result["diff_seed_hi"] = bootstrap_difference(
            _groups(ha, seed_col), _groups(hb, seed_col), confidence, n_boot, rng_seed)
    else:
        result["p_perm"] = permutation_test(ha["_hit"], hb["_hit"], n_resamples=n_resamples, rng_seed=rng_seed)
        result["perm_unit"] = "answer"
    if question_col in df.columns:
        result["diff_question_lo"], result["diff_question_hi"] = paired_bootstrap_over_questions(
            ha, hb, question_col, confidence, n_boot, rng_seed)
    return result
