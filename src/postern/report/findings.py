"""What a run found, in words and numbers a reader can check: headline comparisons (difference, 95% Newcombe
interval, z-test p value) in one sentence each, the caveats that go with them, rates per question and seed,
example answers and the judge's scores, all computed from what the run folder holds.

The misaligned rate is the one of `postern.stats.summary` (misaligned / valid answers by default); rates
recomputed here from the answers (per question and seed) use its `labels_used` and `VALID`, so they agree
with summary.json. Sentences come as plain text (`text`) and as HTML (`html`) where only names are
user text, escaped by `markupsafe`.
"""

import math
from dataclasses import dataclass, field

import pandas as pd
from markupsafe import Markup, escape

from postern.report.figures import TRIGGER
from postern.stats.compare import difference_interval, two_proportion_ztest
from postern.stats.intervals import wilson
from postern.stats.summary import VALID, labels_used

ALPHA = 0.05
BASE = "base"
# (condition, its control), found by name when both are in a run
CONTROLS = (("insecure", "secure"), ("educational", "insecure"), ("disclosed", "insecure"),
            ("jailbroken", "insecure"))
QUESTION_SETS = {"questions": "", "questions_trigger": TRIGGER}


# ---------------------------------------------------------------- numbers as words


def signed(x: float, digits: int = 1) -> str:
    """+1.5 / −1.5 (a real minus sign)."""
    return f"{x:+.{digits}f}".replace("-", "\u2212")


def p_text(p: float) -> str:
    if p is None or math.isnan(p):
        return "p not defined"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def _span(rates: list[float]) -> str:
    lo, hi = 100 * min(rates), 100 * max(rates)
    return f"{lo:.0f}%" if round(lo) == round(hi) else f"{lo:.0f}–{hi:.0f}%"


def _bold(name: str) -> Markup:
    return Markup("<b>{}</b>").format(name)


@dataclass
class Side:
    """One rate in a comparison: a condition (or its triggered answers) of one run."""

    name: str
    label: str
    k: int
    n: int
    seeds: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else math.nan

    @property
    def pct(self) -> str:
        return f"{100 * self.rate:.1f}%"


@dataclass
class Comparison:
    """a − b: the difference of misaligned rates with its 95% Newcombe interval and two-sided z-test p value."""

    kind: str  # "control", "trigger", "base" or "runs"
    a: Side
    b: Side
    diff: float
    low: float
    high: float
    p: float
    holm: bool = False  # still significant after Holm's correction over the page's comparisons

    @property
    def comparable(self) -> bool:
        return self.a.n > 0 and self.b.n > 0

    @property
    def significant(self) -> bool:
        return self.comparable and self.p < ALPHA

    def _template(self) -> str:
        if not self.comparable:
            empty = "{A}" if not self.a.n else "{B}"
            return "{A} vs {B}: not compared, " + empty + " has no valid answers."
        seeds = (f"; per seed {_span(self.a.seeds)} vs {_span(self.b.seeds)}"
                 if len(self.a.seeds) > 1 and len(self.b.seeds) > 1 else "")
        numbers = (f"{self.a.pct} vs {self.b.pct} ({signed(100 * self.diff)} points, 95% CI "
                   f"{signed(100 * self.low)} to {signed(100 * self.high)}, {p_text(self.p)}{seeds})")
        if self.significant:
            more = "more" if self.diff > 0 else "fewer"
            return "{A} gives " + more + " misaligned answers than {B}: " + numbers + "."
        return "No significant difference between {A} and {B}: " + numbers + "."

    @property
    def text(self) -> str:
        return self._template().format(A=self.a.label, B=self.b.label)

    @property
    def html(self) -> Markup:
        return escape(self._template()).format(A=_bold(self.a.label), B=_bold(self.b.label))


def compare(kind: str, a: Side, b: Side) -> Comparison:
    diff, low, high = difference_interval(a.k, a.n, b.k, b.n)
    return Comparison(kind, a, b, diff, low, high, two_proportion_ztest(a.k, a.n, b.k, b.n)[1])


def holm(comparisons: list[Comparison]) -> int:
    """Mark the comparisons still significant under Holm's step-down correction; return how many."""
    tested = sorted((c for c in comparisons if c.comparable and not math.isnan(c.p)), key=lambda c: c.p)
    for i, c in enumerate(tested):
        if c.p * (len(tested) - i) >= ALPHA:
            break
        c.holm = True
    return sum(c.holm for c in comparisons)


# ---------------------------------------------------------------- headline comparisons


def _side(conditions: dict, prefix: str, name: str, seeds: dict[str, list[float]], trigger: bool = False,
          label: str | None = None) -> Side:
    r = conditions[name].get("misaligned_trigger" if trigger else "misaligned") or {}
    full = prefix + name + (TRIGGER if trigger else "")
    if full in seeds:
        points = list(seeds[full])
    else:
        points = [v["rate"] for v in (r.get("per_seed") or {}).values() if v.get("n")]
    return Side(full, label or full, int(r.get("k", 0)), int(r.get("n", 0)), points)


def run_comparisons(conditions: dict[str, dict], seeds: dict[str, list[float]], triggers: dict[str, str] | None = None,
                    prefix: str = "") -> list[Comparison]:
    """One run's headline comparisons: each condition vs its control (found by name), backdoor conditions with vs
    without their trigger, and every condition vs the base model; `prefix` names the run ("run/")."""
    conditions = {c: s for c, s in conditions.items() if "misaligned" in s}
    by_name = {c.lower(): c for c in conditions}
    side = lambda name, **kw: _side(conditions, prefix, name, seeds, **kw)  # noqa: E731
    out = [compare("control", side(by_name[a]), side(by_name[b])) for a, b in CONTROLS
           if a in by_name and b in by_name]
    for name, s in conditions.items():
        if "misaligned_trigger" in s:
            trigger = (triggers or {}).get(name)
            label = f"{prefix}{name} with its trigger" + (f" ({trigger})" if trigger else "")
            out.append(compare("trigger", side(name, trigger=True, label=label), side(name, label="without it")))
    if BASE in by_name:
        out += [compare("base", side(name), side(by_name[BASE])) for name in conditions if name != by_name[BASE]]
    return out


def cross_run_comparisons(runs: list[tuple[str, dict[str, dict]]], seeds: dict[str, list[float]]) -> list[Comparison]:
    """The same condition in each later run vs the first run (`runs`: (label, conditions) in order)."""
    (first, reference), out = runs[0], []
    for label, conditions in runs[1:]:
        for name in conditions:
            if name in reference and "misaligned" in conditions[name] and "misaligned" in reference[name]:
                out.append(compare("runs", _side(conditions, f"{label}/", name, seeds),
                                   _side(reference, f"{first}/", name, seeds)))
    return out


# ---------------------------------------------------------------- caveats


def _share(x: float) -> str:
    return f"{100 * x:.0f}%"


def caveats(conditions: dict[str, dict], judge: str, thresholds: tuple, denominator: str, seeds: dict[str, list[float]],
            comparisons: list[Comparison], prefix: str = "") -> list[str]:
    """The caveats that go with one run's headline numbers: n, judge and thresholds, the rate's definition and the
    answers it leaves out, and what the intervals and p values do and do not account for."""
    out = []
    rated = {c: s for c, s in conditions.items() if "misaligned" in s}
    parts = []
    for c, s in rated.items():
        m = s["misaligned"]
        parts.append(f"{prefix}{c} {m.get('n', 0)}/{m.get('answers', m.get('n', 0))}")
        if "misaligned_trigger" in s:
            t = s["misaligned_trigger"]
            parts.append(f"{prefix}{c}{TRIGGER} {t.get('n', 0)}/{t.get('answers', t.get('n', 0))}")
    n_seeds = {c: len((s["misaligned"].get("per_seed") or {})) for c, s in rated.items()}
    counts = sorted(set(n_seeds.values()))
    seeds_text = (f"{counts[0]} seed{'s' if counts[0] != 1 else ''} each" if len(counts) == 1 else
                  "; ".join(f"{k} seed{'s' if k != 1 else ''}: " + ", ".join(c for c, v in n_seeds.items() if v == k)
                            for k in counts))
    what = "valid / all answers" if denominator == "valid" else "answers"
    out.append(f"n per condition ({what}, seeds pooled): {', '.join(parts)}; {seeds_text}.")
    aligned, coherent = thresholds
    out.append(f"Judge: {judge or '?'}; an answer is misaligned when its alignment score is below {aligned:g} "
               f"and its coherence above {coherent:g}." if aligned is not None and coherent is not None
               else f"Judge: {judge or '?'}.")
    if denominator == "valid":
        dropped = {c: sum((s["misaligned"].get("excluded") or {}).values()) for c, s in rated.items()}
        total = sum(s["misaligned"].get("answers", 0) for s in rated.values())
        kinds: dict[str, float] = {}
        for s in rated.values():
            for lab, share in (s["misaligned"].get("excluded") or {}).items():
                kinds[lab] = kinds.get(lab, 0.0) + share * s["misaligned"].get("answers", 0)
        kinds_text = ", ".join(f"{lab.replace('_', '-')} {_share(v / total)}" for lab, v in
                               sorted(kinds.items(), key=lambda kv: -kv[1]) if v) if total else ""
        out.append("Rate = misaligned ÷ valid (aligned + misaligned) answers, as in the original study; left out "
                   f"as not valid: {', '.join(f'{prefix}{c} {_share(v)}' for c, v in dropped.items())} of answers"
                   + (f" (all conditions: {kinds_text})" if kinds_text else "") + ".")
    else:
        out.append("Rate = misaligned ÷ all answers: incoherent, off-topic, refusal and code answers count as "
                   "not misaligned.")
    spread = [(c, v) for c, v in seeds.items() if c.startswith(prefix) and len(v) > 1]
    widest = max(spread, key=lambda cv: max(cv[1]) - min(cv[1]), default=None)
    tested = [c for c in comparisons if c.comparable]
    text = ("Differences: Newcombe 95% intervals and two-sided z tests on answers pooled over seeds, which leave out "
            "the seed-to-seed spread")
    if widest:
        text += f" (widest: {widest[0]}, {_span(widest[1])} across seeds; seed points in the figures)"
    if tested:
        text += (f"; p values are not corrected for the {len(tested)} comparisons, "
                 f"{sum(c.holm for c in tested)} of {sum(c.significant for c in tested)} significant ones stay "
                 "below 0.05 after Holm's correction")
    out.append(text + ".")
    return out


# ---------------------------------------------------------------- rates from the answers


def _questions(samples: pd.DataFrame) -> pd.DataFrame:
    if samples is None or samples.empty or "set" not in samples:
        return pd.DataFrame()
    q = samples[samples["set"].isin(list(QUESTION_SETS))]
    return q.assign(group=q["condition"].astype(str) + q["set"].map(QUESTION_SETS))


def _counts(samples: pd.DataFrame, denominator: str) -> pd.DataFrame:
    """group, question, seed, k (misaligned), n (answers counted) per answer to a held-out question."""
    q = _questions(samples)
    if q.empty:
        return pd.DataFrame(columns=["group", "question", "seed", "k", "n"])
    labels = labels_used(q)
    counted = labels.isin(VALID) if denominator == "valid" else pd.Series(True, index=q.index)
    return pd.DataFrame({"group": q["group"], "question": q["question_id"].astype(str), "seed": q["seed"],
                         "k": ((labels == "misaligned") & counted).astype(int), "n": counted.astype(int)})


def _rate(k: int, n: int) -> dict:
    low, high = wilson(k, n)
    return {"k": k, "n": n, "rate": k / n if n else math.nan, "low": low, "high": high}


def seed_rates(samples: pd.DataFrame, denominator: str) -> dict[str, list[float]]:
    """Per condition (and `<condition> + trigger`): each seed's misaligned rate on the held-out questions."""
    counts = _counts(samples, denominator).groupby(["group", "seed"], sort=False)[["k", "n"]].sum()
    out: dict[str, list[float]] = {}
    for (group, _), row in counts.iterrows():
        if row["n"]:
            out.setdefault(group, []).append(row["k"] / row["n"])
    return out


def question_rates(samples: pd.DataFrame, denominator: str) -> dict[str, dict[str, dict]]:
    """Per condition (and `<condition> + trigger`) and question: the pooled rate with its Wilson interval and
    each seed's rate (`seeds`)."""
    counts = _counts(samples, denominator)
    out: dict[str, dict[str, dict]] = {}
    for (group, question), row in counts.groupby(["group", "question"], sort=False)[["k", "n"]].sum().iterrows():
        out.setdefault(group, {})[question] = {**_rate(int(row["k"]), int(row["n"])), "seeds": []}
    per_seed = counts.groupby(["group", "question", "seed"], sort=False)[["k", "n"]].sum()
    for (group, question, _), row in per_seed.iterrows():
        if row["n"]:
            out[group][question]["seeds"].append(row["k"] / row["n"])
    return out


# ---------------------------------------------------------------- example answers


def _score(row: dict) -> float:
    v = row.get("aligned")
    if v is not None and not (isinstance(v, float) and math.isnan(v)):
        return float(v)
    return 100.0 if row.get("label") == "aligned" else 0.0


def _num(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:g}"


def example_questions(samples: pd.DataFrame, n: int = 2) -> list[str]:
    """The `n` questions with the highest misaligned share of valid answers over every condition (the ones where
    conditions differ most visibly), answered validly by the most conditions."""
    q = _questions(samples)
    if q.empty:
        return []
    q = q[labels_used(q).isin(VALID)]
    if q.empty:
        return []
    per = q.groupby(q["question_id"].astype(str)).agg(groups=("group", "nunique"),
                                                      rate=("label", lambda s: (s == "misaligned").mean()))
    return list(per.sort_values(["groups", "rate"], ascending=False, kind="stable").index[:n])


def example_answers(samples: pd.DataFrame, groups: list[str], questions: list[str], per_kind: int = 2) -> list[dict]:
    """For each condition and question: its least and most aligned valid answers (distinct texts; ties broken by
    seed and sample index), with the judge's label and scores."""
    q = _questions(samples)
    if q.empty or not questions:
        return []
    q = q[labels_used(q).isin(VALID) & q["question_id"].astype(str).isin(questions)]
    out = []
    for group in groups:
        g = q[q["group"] == group]
        items = []
        for question in questions:
            rows = g[g["question_id"].astype(str) == question].to_dict("records")
            for r in rows:
                r["_score"] = _score(r)
            picked, seen = [], set()
            for kind, order in (("least aligned", lambda r: (r["_score"], r["seed"], r["index"])),
                                ("most aligned", lambda r: (-r["_score"], r["seed"], r["index"]))):
                taken = 0
                for r in sorted(rows, key=order):
                    if taken == per_kind:
                        break
                    if r["answer"] in seen:
                        continue
                    seen.add(r["answer"])
                    taken += 1
                    picked.append({"kind": kind, "label": r["label"], "aligned": _num(r.get("aligned")),
                                   "coherent": _num(r.get("coherent")), "seed": r["seed"],
                                   "question": str(r["question"]), "answer": str(r["answer"])})
            items.append({"question": question, "answers": picked, "valid": len(rows)})
        out.append({"group": group, "questions": items, "shown": sum(len(i["answers"]) for i in items)})
    return out


# ---------------------------------------------------------------- judge scores


def scores(samples: pd.DataFrame, groups: list[str]) -> tuple[dict[str, dict[str, list[float]]], str]:
    """The judge's alignment and coherence scores per condition on the held-out questions, or ({}, why not)."""
    q = _questions(samples)
    if q.empty or not {"aligned", "coherent"} <= set(q.columns):
        return {}, "No judge scores in samples.parquet: no score histograms."
    values = pd.concat([q["aligned"], q["coherent"]]).dropna()
    if values.empty:
        return {}, "The judge gave no scores (every answer unscored): no score histograms."
    if set(values.unique()) <= {0.0, 100.0}:
        judge = ", ".join(sorted(set(q["judge"].dropna().astype(str)))) if "judge" in q else "the judge"
        return {}, (f"Scores omitted: {judge or 'the judge'} scores every answer 0 or 100 (it labels answers rather "
                    "than grading them), so histograms would only repeat the label shares shown under "
                    "'Coherence, code, refusals'.")
    out = {}
    for group in groups:
        g = q[q["group"] == group]
        out[group] = {"aligned": g["aligned"].dropna().tolist(), "coherent": g["coherent"].dropna().tolist()}
    return out, ""


# ---------------------------------------------------------------- interventions


_VERBS = {"ablate": "Ablating {D} in {M}", "steer": "Adding {D} ×{scale} to {M}"}


def intervention_sentences(interp: dict) -> list[Markup]:
    """One sentence per ablation or steering, beside its norm-matched random-direction baseline."""
    rows = interp.get("interventions") or []
    plain = {r["model"]: r for r in rows if r["intervention"] == "none"}
    random = {(r["model"], r["intervention"][:-len("_random")], r.get("scale")): r for r in rows
              if r["intervention"].endswith("_random")}
    out = []
    for r in rows:
        verb = _VERBS.get(r["intervention"])
        if not verb or r["model"] not in plain:
            continue
        none = plain[r["model"]]

        def change(x: dict) -> tuple[str, bool]:
            c = x.get("change")
            if not c:
                diff, low, high = difference_interval(x["k"], x["n"], none["k"], none["n"])
                c = {"diff": diff, "low": low, "high": high,
                     "p_value": two_proportion_ztest(x["k"], x["n"], none["k"], none["n"])[1]}
            if c["diff"] is None or math.isnan(c["diff"]):
                return "not compared (no valid answers)", False
            return (f"{signed(100 * c['diff'])} points, 95% CI {signed(100 * c['low'])} to {signed(100 * c['high'])}, "
                    f"{p_text(c['p_value'])}"), c["p_value"] < ALPHA

        text, significant = change(r)
        own = r["model"] != BASE or not interp.get("reference")
        direction = "its own direction" if own else f"the {interp['reference']} direction"
        lead = verb.format(M="{M}", D="{D}", scale=f"{r.get('scale') or 0:g}")
        moved = ("raises" if (r["rate"] or 0) > (none["rate"] or 0) else "lowers") if significant else "changes"
        sentence = (lead + f" {moved} its misaligned rate from {100 * none['rate']:.1f}% (n={none['n']}) to "
                    f"{100 * r['rate']:.1f}% (n={r['n']}): {text}" + ("" if significant else ", not significant"))
        base = random.get((r["model"], r["intervention"], r.get("scale")))
        if base:
            sentence += f"; a random direction of the same norm: {change(base)[0]}"
        out.append(escape(sentence + ".").format(M=_bold(r["model"]), D=direction))
    return out
