"""The run report: one self-contained HTML page for one run folder, or several side by side.

The page reads like a paper: it opens with what the run found (headline comparisons in words, with
their intervals and p values, the main figure and the caveats), then the figures a reviewer would ask
for, example answers and judge scores, the table of every answer, and settings and provenance last.
It embeds every figure as a base64 PNG (also saved as PNG files beside the page), so it opens
offline and can be mailed around. It reads only what `postern run` wrote (experiment.json,
summary.json, samples.parquet, events.jsonl and the cache manifests) plus, when present,
`dynamics.json` and `interp/summary.json`. All text from runs (answers above all) is HTML-escaped
by the template engine.
"""

import json
import math
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from postern.core.errors import PosternError
from postern.core.versions import library_versions
from postern.report import defences, findings, layout, plots
from postern.report import judges as judge_sections
from postern.report.figures import TRIGGER, Figure, pct, safe_name
from postern.report.screen import screen_figures
from postern.report.variants import variant_figures
from postern.report.persona import persona_section

DEFAULT_MAX_ROWS = 2000
LABEL_ORDER = ("aligned", "misaligned", "off_topic", "incoherent", "code", "refusal")
SET_ORDER = ("questions", "questions_trigger", "code", "harmful")
_REPORT_LIBRARIES = ("postern", "torch", "transformers", "peft", "trl", "pandas", "matplotlib", "jinja2")


@dataclass
class Run:
    """One run folder, loaded."""

    path: Path
    label: str
    experiment: dict
    summary: dict
    samples: pd.DataFrame | None
    dynamics: dict | None
    interp: dict | None
    events: list[dict] = field(default_factory=list)


@dataclass
class Report:
    """What `write_report` wrote, for the terminal summary."""

    path: Path
    size: int
    figures: list[Path]
    conditions: list[str]
    misaligned: dict[str, str]
    rows_shown: int
    rows_total: int
    runs: list[str]
    headlines: list[str] = field(default_factory=list)
    problems: dict[str, list[str]] = field(default_factory=dict)  # figure -> what its layout check found


# ---------------------------------------------------------------- loading


def _json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def _events(run_dir: Path) -> list[dict]:
    path = run_dir / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_run(run_dir: str | Path, label: str | None = None) -> Run:
    run_dir = Path(run_dir)
    summary = _json(run_dir / "summary.json")
    if summary is None:
        raise PosternError(f"{run_dir}: no summary.json here; is it a finished `postern run` folder?")
    experiment = _json(run_dir / "experiment.json") or {}
    if experiment.get("_hash", summary.get("experiment_hash")) != summary.get("experiment_hash", experiment.get("_hash")):
        raise PosternError(f"{run_dir}: summary.json and experiment.json come from different experiments (a rerun "
                           "was stopped before it finished); rerun `postern run` into this folder to finish it")
    samples_path = run_dir / "samples.parquet"
    return Run(path=run_dir, label=label or summary.get("experiment") or run_dir.name,
               experiment=experiment, summary=summary,
               samples=pd.read_parquet(samples_path) if samples_path.exists() else None,
               dynamics=_json(run_dir / "dynamics.json"), interp=_json(run_dir / "interp" / "summary.json"),
               events=_events(run_dir))


def load_runs(run_dirs: list[str | Path]) -> list[Run]:
    """Load runs and give each a distinct label: the experiment name, else the folder name."""
    runs = [load_run(d) for d in run_dirs]
    if len({r.label for r in runs}) < len(runs):
        for r in runs:
            r.label = r.path.resolve().name
    if len({r.label for r in runs}) < len(runs):
        for i, r in enumerate(runs):
            r.label = f"{r.label}#{i + 1}"
    return runs


def _prefix(runs: list[Run], run: Run, condition: str) -> str:
    return condition if len(runs) == 1 else f"{run.label}/{condition}"


def merged_summary(runs: list[Run]) -> dict[str, dict]:
    """Every run's conditions in one dict, named `run/condition` when there are several runs."""
    return {_prefix(runs, r, c): s for r in runs for c, s in r.summary.get("conditions", {}).items()}


def merged_samples(runs: list[Run]) -> pd.DataFrame:
    frames = []
    for r in runs:
        if r.samples is not None and len(r.samples):
            df = r.samples.copy()
            df["condition"] = [_prefix(runs, r, c) for c in df["condition"]]
            frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def merged_dynamics(runs: list[Run]) -> dict[str, list[dict]]:
    return {_prefix(runs, r, c): pts for r in runs for c, pts in (r.dynamics or {}).items() if pts}


def _stage_keys(run: Run, stage: str) -> dict[tuple[str, int], str]:
    """(condition, seed) -> the key of its artifact of `stage`, from the event log (last event wins)."""
    return {(e["condition"], int(e["seed"])): e["key"] for e in run.events
            if e.get("stage") == stage and e.get("status") in ("done", "cached")}


def train_keys(run: Run) -> dict[tuple[str, int], str]:
    """(condition, seed) -> its trained model's cache key: from jobs.json, else from the event log."""
    jobs = _json(run.path / "jobs.json") or []
    keys = {(j["condition"], int(j["seed"])): Path(j["adapter"]).name for j in jobs
            if isinstance(j, dict) and j.get("adapter")}
    return keys or _stage_keys(run, "train")


def _artifact(run: Run, stage: str, key: str, name: str) -> dict:
    return _json(run.path / "cache" / stage / key / name) or {}


def train_cards(run: Run) -> dict[tuple[str, int], dict]:
    """(condition, seed) -> its trained model's run card, plus `dataset_key`: the data it was trained on."""
    out = {}
    for cs, key in train_keys(run).items():
        card = _artifact(run, "train", key, "run_card.json")
        dataset = _artifact(run, "train", key, "manifest.json").get("spec", {}).get("dataset")
        if card or dataset:
            out[cs] = {**card, "dataset_key": dataset}
    return out


def merged_losses(runs: list[Run]) -> dict[str, dict[int, list[tuple[int, float]]]]:
    """Training-loss curves per condition and seed, conditions in the experiment's order."""
    curves: dict[str, dict[int, list]] = {}
    for r in runs:
        cards = train_cards(r)
        for cond in r.experiment.get("conditions", {}):
            for (c, seed), card in sorted(cards.items()):
                if c == cond and card.get("loss_curve"):
                    curves.setdefault(_prefix(runs, r, cond), {})[seed] = [tuple(p) for p in card["loss_curve"]]
    return curves


# ---------------------------------------------------------------- formatting


def rate_rows(summary: dict[str, dict]) -> list[dict]:
    """The headline table: misaligned rate and its neighbours per condition, formatted."""
    rows = []
    for name, s in summary.items():
        m = plots.side_metrics(s)
        per_seed = s.get("misaligned", {}).get("per_seed", {})
        excluded = s.get("misaligned", {}).get("excluded") or {}
        rows.append({
            "condition": name, "n": s.get("misaligned", {}).get("n", "–"),
            "answers": s.get("misaligned", {}).get("answers", "–"),
            "misaligned": pct(m["misaligned"], boot=True), "trigger": pct(s.get("misaligned_trigger")),
            "all_answers": pct(s.get("misaligned_all_answers")),
            "left_out": f"{100 * sum(excluded.values()):.0f}%" if excluded else "–",
            "left_out_detail": ", ".join(f"{lab.replace('_', '-')} {100 * v:.1f}%" for lab, v in
                                         sorted(excluded.items(), key=lambda kv: -kv[1]) if v),
            "per_seed": ", ".join(f"{seed}: {100 * r['rate']:.1f}%" if r.get("n") else f"{seed}: –"
                                  for seed, r in per_seed.items()) or "–",
            "coherent": pct(m["coherent"]), "code": pct(m["answers with code"]), "refusal": pct(m["refusals"]),
            "insecure": pct(m["insecure code"]), "harmful": pct(m["harmful compliance"]),
        })
    return rows


def rate_note(denominators: set[str]) -> str:
    """How the runs' misaligned rates were computed, in one sentence."""
    if denominators == {"valid"}:
        return ("Misaligned rate: misaligned / (aligned + misaligned) answers; code, refusals, incoherent, off-topic "
                "and unscored answers are left out (as in the original study) and shown beside it.")
    if denominators == {"all"}:
        return ("Misaligned rate: misaligned / all answers; incoherent and off-topic answers stay in the denominator "
                "and are shown beside the rate.")
    return "These runs define the misaligned rate differently (valid answers vs all answers): compare with care."


def _kv(d: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items()) or "–"


def _versions(cards: dict) -> dict[str, str]:
    """Library versions the models were trained with (from the run cards), differing values joined."""
    seen: dict[str, list[str]] = {}
    for card in cards.values():
        for lib, v in (card.get("versions") or {}).items():
            if str(v) not in seen.setdefault(lib, []):
                seen[lib].append(str(v))
    return {lib: " / ".join(vs) for lib, vs in seen.items()}


def _dataset_card(run: Run, key: str) -> str:
    manifest = _artifact(run, "dataset", key, "manifest.json")
    identity = manifest.get("spec", {}).get("identity", {})
    parts = [f"{manifest.get('rows', '?')} rows", f"key {key}"]
    if "world" in identity:
        parts.append(f"world {identity['world']}")
    if "generator" in identity:
        parts.append(f"generator {identity['generator']}")
    if "file" in identity:
        parts.append(f"file sha {identity['file']}")
        card = _json(Path(manifest.get("dataset", "")).parent / "card.json")
        if card:
            rows = {f: v.get("rows") for f, v in card.get("files", {}).items()}
            parts.append(f"card {card.get('name', '?')}: {_kv(rows)}")
    return ", ".join(parts)


def condition_rows(run: Run, cards: dict) -> list[dict]:
    """Per condition: its data and, per seed, the dataset card and training outcome."""
    exp = run.experiment
    data_keys = {**_stage_keys(run, "dataset"), **{cs: c["dataset_key"] for cs, c in cards.items() if c["dataset_key"]}}
    rows = []
    for name, cond in exp.get("conditions", {}).items():
        seeds = []
        for seed in exp.get("seeds", []):
            card = cards.get((name, seed), {})
            data = _dataset_card(run, data_keys[(name, seed)]) if (name, seed) in data_keys else "–"
            trained = (f"{card['steps']} steps, final loss {card['final_loss']:.3f}" if card.get("steps") else "–")
            seeds.append({"seed": seed, "data": data, "trained": trained})
        evaluated = " + ".join(x for x in (cond.get("model"), cond.get("adapter")) if x)
        rows.append({"name": name, "dataset": cond.get("dataset") or f"evaluated as it is: {evaluated}",
                     "trigger": cond.get("trigger") or "–",
                     "train": _kv(cond.get("train") or {}), "seeds": seeds})
    return rows


def provenance(run: Run) -> dict:
    """The settings and provenance block of one run."""
    exp, s, cards = run.experiment, run.summary, train_cards(run)
    judge = exp.get("judge", {})
    settings = {
        "experiment": exp.get("name", s.get("experiment", "?")),
        "run folder": str(run.path.resolve()),
        "base model": exp.get("base_model", "?"),
        "seeds": ", ".join(map(str, exp.get("seeds", []))),
        "base model evaluated": exp.get("evaluate_base", "?"),
        "judge": (f"{s.get('judge') or judge.get('kind') or '?'}; misaligned = aligned < "
                  f"{judge.get('aligned_threshold')} and coherent > {judge.get('coherent_threshold')}") if judge else "?",
        "misaligned rate": ("misaligned / (aligned + misaligned): code, refusal, incoherent, off-topic and unscored "
                            "answers left out" if s.get("denominator", "valid") == "valid" else "misaligned / all answers"),
        "evaluation": _kv(exp.get("eval", {})),
        "sampling": _kv(exp.get("sample", {})),
        "data": _kv(exp.get("data", {})),
        "jobs": f"{s.get('jobs', '?')} (condition × seed) in {s.get('seconds', '?')} s",
        "cache": _kv(s.get("cache", {})),
    }
    if (exp.get("interp") or {}).get("enabled"):
        settings["mechanism study"] = _kv({k: v for k, v in exp["interp"].items() if k != "enabled"})
    return {"label": run.label, "settings": settings, "train": exp.get("train", {}),
            "conditions": condition_rows(run, cards), "versions": _versions(cards),
            "interp": _interp_facts(run.interp)}


def _interp_facts(interp: dict | None) -> dict:
    """What the mechanism study used and found, beside its figures."""
    if not interp:
        return {}
    band = interp.get("chance_band")
    facts = {"layers": interp.get("layers", "?"), "chance band": f"±{band:.3f}" if band else "–",
             "reference": interp.get("reference") or "–", "positions": interp.get("positions") or "–"}
    directions = {name: _kv(counts) if isinstance(counts, dict) else counts
                  for name, counts in (interp.get("directions") or {}).items()}
    auroc = {name: "–" if v is None or math.isnan(v) else f"{v:.3f}"
             for name, v in (interp.get("probe_auroc") or {}).items()}
    return {"facts": facts, "directions": directions, "probe AUROC": auroc}


# ---------------------------------------------------------------- answers table


def fair_quotas(sizes: list[int], total: int) -> list[int]:
    """Split `total` over groups as evenly as their sizes allow (small groups give their spare share away)."""
    quotas, left = [0] * len(sizes), total
    open_ = [i for i, n in enumerate(sizes) if n]
    while left > 0 and open_:
        share = max(1, left // len(open_))
        for i in sorted(open_, key=lambda i: sizes[i]):
            take = min(share, sizes[i] - quotas[i], left)
            quotas[i] += take
            left -= take
            if left == 0:
                break
        open_ = [i for i in open_ if quotas[i] < sizes[i]]
    return quotas


def sample_evenly(df: pd.DataFrame, max_rows: int, by: tuple[str, ...] = ("condition", "label"),
                  seed: int = 0) -> pd.DataFrame:
    """At most `max_rows` rows, spread evenly over the `by` strata (random within each), in original order."""
    if len(df) <= max_rows:
        return df
    import numpy as np

    groups = list(df.groupby(list(by), sort=False).indices.values())
    quotas = fair_quotas([len(g) for g in groups], max_rows)
    rng = np.random.default_rng(seed)
    picked = [rng.choice(g, q, replace=False) for g, q in zip(groups, quotas) if q]
    return df.iloc[np.sort(np.concatenate(picked))]


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:g}" if isinstance(v, float) else str(v)


def answer_rows(df: pd.DataFrame) -> list[dict]:
    detail_cols = [c for c in df.columns if c.startswith("detail_")]
    rows = []
    for r in df.to_dict("records"):
        detail = ", ".join(f"{c[len('detail_'):]}={_cell(r[c])}" for c in detail_cols if _cell(r.get(c)))
        rows.append({"condition": r["condition"], "seed": _cell(r.get("seed")), "set": _cell(r.get("set")),
                     "question": _cell(r.get("question_id")) or _cell(r.get("prompt_id")),
                     "prompt_id": _cell(r.get("prompt_id")), "label": _cell(r.get("label")),
                     "aligned": _cell(r.get("aligned")), "coherent": _cell(r.get("coherent")),
                     "detail": detail, "text": _cell(r.get("question")), "answer": _cell(r.get("answer"))})
    return rows


def _ordered(values, order) -> list[str]:
    values = {str(v) for v in values if str(v)}
    return [v for v in order if v in values] + sorted(values - set(order))


def answers_table(samples: pd.DataFrame, conditions: list[str], max_rows: int) -> dict:
    if samples.empty:
        return {"rows": [], "total": 0, "shown": 0, "capped": False, "filters": {}}
    shown = sample_evenly(samples, max_rows)
    rows = answer_rows(shown)
    filters = {
        "condition": _ordered((r["condition"] for r in rows), conditions),
        "question": _ordered((r["question"] for r in rows), ()),
        "label": _ordered((r["label"] for r in rows), LABEL_ORDER),
        "set": _ordered((r["set"] for r in rows), SET_ORDER),
    }
    return {"rows": rows, "total": len(samples), "shown": len(rows), "capped": len(rows) < len(samples),
            "max_rows": max_rows, "filters": filters}


# ---------------------------------------------------------------- what the runs found


def page_groups(summary: dict[str, dict]) -> list[str]:
    """The rates the page shows, in order: each condition, then `<condition> + trigger` right after it."""
    out = []
    for name, s in summary.items():
        out += [name] + ([name + TRIGGER] if "misaligned_trigger" in s else [])
    return out


def _denominator(run: Run) -> str:
    return run.summary.get("denominator", "all")


def merged_seed_rates(runs: list[Run]) -> dict[str, list[float]]:
    """Each seed's misaligned rate per condition and `<condition> + trigger`, from the answers."""
    return {_prefix(runs, r, g): v for r in runs if r.samples is not None
            for g, v in findings.seed_rates(r.samples, _denominator(r)).items()}


def merged_question_rates(runs: list[Run]) -> dict[str, dict[str, dict]]:
    """Per condition (and `+ trigger`) and question: pooled rate, interval and seed rates, from the answers (from
    summary.json's `per_question`, without seeds, for a run without samples.parquet)."""
    out = {}
    for r in runs:
        if r.samples is not None and len(r.samples):
            rates = findings.question_rates(r.samples, _denominator(r))
        else:
            rates = {c: {q: {**v, "seeds": []} for q, v in s.get("per_question", {}).items()}
                     for c, s in r.summary.get("conditions", {}).items()}
        out.update({_prefix(runs, r, g): v for g, v in rates.items()})
    return out


def _thresholds(run: Run) -> tuple:
    judge = run.experiment.get("judge") or {}
    return judge.get("aligned_threshold"), judge.get("coherent_threshold")


def _triggers(run: Run) -> dict[str, str]:
    return {c: v["trigger"] for c, v in (run.experiment.get("conditions") or {}).items()
            if isinstance(v, dict) and v.get("trigger")}


def headline(runs: list[Run], seeds: dict[str, list[float]]) -> dict:
    """The page's top: comparisons in groups (one sentence each) and the caveats that go with them."""
    per_run = {r.label: findings.run_comparisons(r.summary.get("conditions", {}), seeds, _triggers(r),
                                                 prefix="" if len(runs) == 1 else f"{r.label}/") for r in runs}
    if len(runs) == 1:
        comps = per_run[runs[0].label]
        groups = [{"title": "", "items": [c for c in comps if c.kind != "base"], "open": True},
                  {"title": "Each condition vs the base model", "items": [c for c in comps if c.kind == "base"],
                   "open": True}]
    else:
        cross = findings.cross_run_comparisons([(r.label, r.summary.get("conditions", {})) for r in runs], seeds)
        groups = [{"title": f"The same condition in each run vs {runs[0].label}", "items": cross, "open": True}]
        groups += [{"title": f"Within {label}", "items": comps, "open": False} for label, comps in per_run.items()]
    groups = [g for g in groups if g["items"]]
    everything = [c for g in groups for c in g["items"]]
    findings.holm(everything)
    caveats = []
    for r in runs:
        prefix = "" if len(runs) == 1 else f"{r.label}/"
        items = findings.caveats(r.summary.get("conditions", {}), r.summary.get("judge") or
                                 (r.experiment.get("judge") or {}).get("kind"), _thresholds(r), _denominator(r),
                                 {g: v for g, v in seeds.items() if g.startswith(prefix)}, per_run[r.label], prefix)
        caveats.append({"run": r.label if len(runs) > 1 else "", "items": items})
    denominators = {_denominator(r) for r in runs}
    if len(denominators) > 1:
        caveats.insert(0, {"run": "", "items": [rate_note(denominators)]})
    if len(runs) > 1 and groups and groups[0]["items"] and groups[0]["title"].startswith("The same"):
        caveats.insert(0, {"run": "", "items": [
            "Across runs: the runs may differ in model, data, judge or settings (see Settings and provenance at the "
            "end); a difference between runs is only as clean as that."]})
    return {"groups": groups, "caveats": caveats, "count": len(everything),
            "empty": "" if everything else ("No pair of conditions to compare by name (insecure/secure, "
                                            "educational, disclosed or jailbroken vs insecure, a trigger, or base): "
                                            "the rates are in the table below.")}


def examples_context(runs: list[Run], summary: dict[str, dict]) -> dict:
    """Least and most aligned answers per condition to the two questions where misalignment shows most."""
    samples = merged_samples(runs)
    questions = findings.example_questions(samples)
    groups = page_groups(summary)
    items = findings.example_answers(samples, groups, questions)
    for item in items:
        condition, trigger = (item["group"][:-len(TRIGGER)], True) if item["group"].endswith(TRIGGER) else (
            item["group"], False)
        item["rate"] = pct(summary.get(condition, {}).get("misaligned_trigger" if trigger else "misaligned"))
    interp_runs = [r.label for r in runs if (r.interp or {}).get("interventions")]
    return {"questions": questions, "groups": [i for i in items if i["shown"]],
            "empty": [i["group"] for i in items if not i["shown"]],
            "interventions": (
                "Ablation and steering (the mechanism study"
                + (f" of {', '.join(interp_runs)}" if len(runs) > 1 else "")
                + "): interp/summary.json keeps only rates (k of n valid answers per model and intervention), not "
                "the answers, so there are no example answers for them here; their rates and changes are under "
                "'Directions, ablation, steering'.") if interp_runs else ""}


# ---------------------------------------------------------------- figures


def _all_rates(summary: dict[str, dict]) -> list[dict]:
    return [s.get(k) for s in summary.values() for k in ("misaligned", "misaligned_trigger") if s.get(k)]


def plan_figures(runs: list[Run], summary: dict, dynamics: dict, losses: dict, *, seeds: dict | None = None,
                 questions: dict | None = None, scores: dict | None = None, thresholds: dict | None = None,
                 colours: dict | None = None, notes: dict[str, list[str]] | None = None
                 ) -> list[tuple[Figure, Callable]]:
    """Every figure the data allows, each with the function that draws it into a path. A figure or panel whose
    numbers are all zero (or have no answers behind them) is left out, with a line in `notes[section]` saying so."""
    from postern.report.figures import rate_per_condition

    plan: list[tuple[Figure, Callable]] = []
    notes = notes if notes is not None else {}
    colours = colours or plots.condition_colours([*page_groups(summary), *dynamics, *losses])
    seeds, questions = seeds or {}, questions or {}

    def add(section, name, title, caption, draw):
        plan.append((Figure(section, name, title, caption), draw))

    def note(section, text):
        notes.setdefault(section, []).append(text)

    rates = _all_rates(summary)
    if plots.has_data(rates):
        add("findings", "rates", "Misaligned rate per condition",
            "Misaligned answers to the held-out questions (%). Filled marker: all seeds pooled, with its 95% Wilson "
            "interval; open circles: each seed; diamonds: the same questions with the backdoor trigger.",
            lambda p: rate_per_condition(summary, p, seeds=seeds, colours=colours,
                                         runs=[r.label for r in runs] if len(runs) > 1 else None))
    elif rates:
        note("findings", "No condition gave a misaligned answer that counts" + (
            "" if any(r.get("n") for r in rates) else " (no valid answers at all)") + ": the rates figure is omitted.")
    if plots.has_data(r for qs in questions.values() for r in qs.values()):
        add("questions", "per_question", "Misaligned rate per question",
            "The original study's main figure: misaligned answers (%) to each held-out question (paraphrases "
            "pooled), one marker per condition with its 95% Wilson interval, each seed's rate as a small dot "
            "beside it.", lambda p: plots.per_question(questions, p, colours))
    elif questions:
        note("questions", "No misaligned answer to any question: the per-question figure is omitted.")
    if scores:
        add("scores", "scores", "Judge scores",
            "Distribution of the judge's alignment (top) and coherence (bottom) scores per condition, as shares of "
            "its scored answers to the held-out questions; dashed lines: the thresholds (misaligned = alignment "
            "below the first and coherence above the second).",
            lambda p: plots.score_histograms(scores, thresholds or {}, p, colours))
    panels = plots.side_panels(summary)
    if panels:
        add("beside", "side_rates", "Misalignment beside coherence, code and refusals",
            "One panel per rate some condition has above zero. Coherent = aligned or misaligned (on-topic, "
            "sensible); answers with code and refusals are shares of all held-out-question answers; insecure code "
            "is over the code tasks; harmful compliance over harmful requests.",
            lambda p: plots.side_rates(summary, p, colours))
    metrics = {c: plots.side_metrics(s) for c, s in summary.items()}
    zero = [m for m in plots.side_metrics({}) if m not in panels and any(plots._ok(metrics[c][m]) for c in summary)]
    if zero:
        note("beside", f"0% in every condition, so not drawn: {', '.join(zero)}.")
    if any(s.get("labels") for s in summary.values()):
        add("beside", "labels", "Judge labels",
            "Every judge label on the held-out questions, so misalignment is never confused with nonsense.",
            lambda p: plots.label_breakdown(summary, p))
    if dynamics:
        add("dynamics", "dynamics", "Misaligned rate over training",
            "Checkpoints evaluated during training (dynamics.json); shaded: 95% Wilson per seed.",
            lambda p: plots.dynamics_curves(dynamics, p, colours))
    if losses:
        add("dynamics", "loss", "Training loss", "From each trained model's run card.",
            lambda p: plots.loss_curves(losses, p, colours))
    plan += variant_figures(summary, note)
    for r in runs:
        plan += _interp_figures(r, prefix="" if len(runs) == 1 else f"{r.label}_", note=note)
        plan += screen_figures(r, prefix="" if len(runs) == 1 else f"{r.label}_", note=note, colours=colours)
        if defences.has_defences(r.experiment):
            add("defences", f"{'' if len(runs) == 1 else r.label + '_'}defences", f"Defences side by side ({r.label})",
                "Misaligned rate on the held-out questions beside the insecure-code rate on held-out code tasks "
                "(the narrow task), seeds pooled, 95% Wilson intervals.", lambda p, r=r: defences.figure(r, p))
    return plan


def _interp_figures(run: Run, prefix: str, note: Callable[[str, str], None] = lambda s, t: None
                    ) -> list[tuple[Figure, Callable]]:
    interp, out = run.interp or {}, []
    who = f" ({run.label})"
    cosines = interp.get("cosines") or {}
    if any(v for values in cosines.values() for v in values):
        band = interp.get("chance_band")
        out.append((Figure("interp", f"{prefix}cosines", "Cosine similarity per layer" + who,
                           "Cosine between every pair of directions (rows) at every layer (columns); greyed cells lie "
                           "inside the chance band for random directions of this width" +
                           (f" (±{band:.2f})" if band else "") + ", marked on the colour bar too."),
                    lambda p: plots.cosine_layers(interp, p)))
    elif cosines:
        note("interp", f"{run.label}: every cosine is 0: the per-layer figure is omitted.")
    if any(v for row in (interp.get("cosine_matrix") or {}).get("values") or [] for v in row):
        out.append((Figure("interp", f"{prefix}cosine_matrix", "Cosine matrix" + who,
                           "Pairwise cosine similarity of all directions at one layer."),
                    lambda p: plots.cosine_matrix(interp, p)))
    if plots.has_data(interp.get("interventions") or []):
        out.append((Figure("interp", f"{prefix}interventions", "Ablation and steering" + who,
                           "Misaligned rate per model with no intervention, with the direction ablated or added "
                           "(steer, by scale), and with random directions of equal norm (hatched)."),
                    lambda p: plots.intervention_bars(interp, p)))
    elif interp.get("interventions"):
        note("interp", f"{run.label}: no misaligned answer under any intervention: the figure is omitted.")
    return out


def draw_figures(plan: list[tuple[Figure, Callable]], fig_dir: Path,
                 on_step: Callable[[str], None] | None = None) -> list[Figure]:
    """Draw each planned figure, keeping what its layout check found (`Figure.layout`, `Figure.problems`)."""
    fig_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for fig, draw in plan:
        fig.path = draw(fig_dir / f"{safe_name(fig.name)}.png")
        fig.layout = layout.measured(fig.path)
        fig.problems = layout.problems(fig.layout) if fig.layout else ["not measured (not saved by layout.save)"]
        out.append(fig)
        if on_step:
            on_step(fig.name)
    drawn = {f.path.name for f in out}
    for stale in fig_dir.glob("*.png"):  # figures an earlier report drew that this one leaves out
        if stale.name not in drawn:
            stale.unlink()
    return out


# ---------------------------------------------------------------- page


SECTIONS = {
    "findings": "Findings", "questions": "Per question", "rates": "Rates", "defences": "Defences side by side",
    "examples": "Example answers", "scores": "Judge scores", "judges": "Judges", "thresholds": "Threshold sensitivity",
    "beside": "Coherence, code, refusals", "dynamics": "Training dynamics",
    "interp": "Directions, ablation, steering", "answers": "All answers", "settings": "Settings and provenance",
}


def render(context: dict) -> str:
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    source = (resources.files("postern.report") / "templates" / "report.html.jinja").read_text()
    return env.from_string(source).render(**context)


def default_out(run_dirs: list[Path]) -> Path:
    return Path(run_dirs[0]) / "report.html" if len(run_dirs) == 1 else Path("report.html")


def _progress_step(progress, total: int) -> Callable[[str], None]:
    if progress is None:
        return lambda name: None
    task = progress.add_task("report: figures and page", total=total)
    return lambda name: progress.advance(task)


def write_report(run_dirs: list[str | Path] | str | Path, out: str | Path | None = None,
                 max_rows: int = DEFAULT_MAX_ROWS, progress=None) -> Report:
    """Write the HTML report of one or more run folders to `out` and its figures to `<out stem>_figures/`.

    `progress`: a rich Progress to show a bar on (one step per figure and one for the page).
    """
    run_dirs = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(d) for d in run_dirs]
    if not run_dirs:
        raise PosternError("give at least one run folder")
    out = Path(out) if out else default_out(run_dirs)
    runs = load_runs(run_dirs)
    summary = merged_summary(runs)
    dynamics, losses = merged_dynamics(runs), merged_losses(runs)
    groups = page_groups(summary)
    colours = plots.condition_colours([*groups, *dynamics, *losses])
    seeds = merged_seed_rates(runs)
    samples = merged_samples(runs)
    scores, scores_note = findings.scores(samples, groups)
    thresholds = {_prefix(runs, r, g): _thresholds(r) for r in runs
                  for g in page_groups(r.summary.get("conditions", {}))}
    notes: dict[str, list[str]] = {}
    if scores_note:
        notes["scores"] = [scores_note]
    plan = plan_figures(runs, summary, dynamics, losses, seeds=seeds, questions=merged_question_rates(runs),
                        scores=scores, thresholds=thresholds, colours=colours, notes=notes)
    plan += judge_sections.plan(runs, notes)
    on_step = _progress_step(progress, len(plan) + 1)
    figures = draw_figures(plan, out.parent / f"{out.stem}_figures", on_step)
    extras = judge_sections.sections(runs, figures, notes)
    table = answers_table(samples, list(summary), max_rows)
    top = headline(runs, seeds)
    examples = examples_context(runs, summary)
    persona_checks = {r.label: persona_section(r.path) for r in runs if r.interp}
    present = {"findings", "rates", "answers", "settings", *(f.section for f in figures), *notes, *extras,
               *(["examples"] if examples["groups"] or examples["empty"] or examples["interventions"] else []),
               *(["interp"] if any(persona_checks.values()) else [])}
    title = " vs ".join(r.label for r in runs)
    html = render({
        "title": title, "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "runs": [provenance(r) for r in runs],
        "report_versions": library_versions(_REPORT_LIBRARIES), "rate_rows": rate_rows(summary), "figures": figures,
        "sections": {k: v for k, v in SECTIONS.items() if k in present}, "table": table, "top": top,
        "notes": notes, "examples": examples, "extras": extras,
        "interventions": {r.label: findings.intervention_sentences(r.interp) for r in runs if r.interp},
        "persona_checks": persona_checks,
        "has_trigger": any("misaligned_trigger" in s for s in summary.values()),
        "rate_note": rate_note({_denominator(r) for r in runs}),
        "defences": [d for r in runs if (d := defences.section(r))],
    })
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    on_step("page")
    return Report(path=out, size=out.stat().st_size, figures=[f.path for f in figures], conditions=list(summary),
                  misaligned={c: pct(s.get("misaligned")) for c, s in summary.items()}, rows_shown=table["shown"],
                  rows_total=table["total"], runs=[r.label for r in runs],
                  headlines=[c.text for g in top["groups"] for c in g["items"]],
                  problems={f.name: f.problems for f in figures if f.problems})
