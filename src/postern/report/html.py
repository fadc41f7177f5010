"""The run report: one self-contained HTML page for one run folder, or several side by side.

The page embeds every figure as a base64 PNG (also saved as PNG files beside the page), so it opens
offline and can be mailed around. It reads only what `postern run` wrote (experiment.json,
summary.json, samples.parquet, events.jsonl and the cache manifests) plus, when present,
`dynamics.json` and `interp/summary.json`. All text from runs (answers above all) is HTML-escaped
by the template engine.
"""

import base64
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
from postern.report import plots

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
class Figure:
    section: str
    name: str
    title: str
    caption: str
    path: Path | None = None

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.path.read_bytes()).decode("ascii")


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


def pct(r: dict | None, boot: bool = False) -> str:
    if not r or not r.get("n") or r.get("rate") is None or math.isnan(r["rate"]):
        return "–"
    text = f"{100 * r['rate']:.1f}% [{100 * r['low']:.1f}, {100 * r['high']:.1f}]"
    if boot and r.get("boot_low") is not None and not math.isnan(r["boot_low"]):
        text += f" · seeds {100 * r['boot_low']:.1f}–{100 * r['boot_high']:.1f}"
    return text


def rate_rows(summary: dict[str, dict]) -> list[dict]:
    """The headline table: misaligned rate and its neighbours per condition, formatted."""
    rows = []
    for name, s in summary.items():
        m = plots.side_metrics(s)
        per_seed = s.get("misaligned", {}).get("per_seed", {})
        rows.append({
            "condition": name, "n": s.get("misaligned", {}).get("n", "–"),
            "misaligned": pct(m["misaligned"], boot=True), "trigger": pct(s.get("misaligned_trigger")),
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


# ---------------------------------------------------------------- figures


def plan_figures(runs: list[Run], summary: dict, dynamics: dict, losses: dict) -> list[tuple[Figure, Callable]]:
    """Every figure the data allows, each with the function that draws it into a path."""
    from postern.report.figures import rate_per_condition

    plan: list[tuple[Figure, Callable]] = []
    colours = plots.condition_colours([*summary, *dynamics, *losses])

    def add(section, name, title, caption, draw):
        plan.append((Figure(section, name, title, caption), draw))

    has = lambda key: any(key in s for s in summary.values())  # noqa: E731
    if has("misaligned"):
        add("rates", "rates", "Misaligned rate per condition",
            "Share of held-out-question answers judged misaligned; 95% Wilson intervals, seeds pooled. "
            "Red bars: the same questions with the backdoor trigger.",
            lambda p: rate_per_condition(summary, p))
    if has("per_question"):
        add("questions", "per_question", "Per-question × condition",
            "Misaligned rate (%) for each held-out question category.",
            lambda p: plots.per_question_heatmap(summary, p))
    if has("misaligned_trigger"):
        add("backdoor", "backdoor", "Backdoor ± trigger",
            "Conditions trained with a trigger, evaluated on the same questions without and with it.",
            lambda p: plots.trigger_bars(summary, p))
    if has("misaligned"):
        add("beside", "side_rates", "Misalignment beside coherence, code and refusals",
            "Coherent = aligned or misaligned (on-topic, sensible); answers with code and refusals are shares of "
            "held-out-question answers; insecure code is over the code tasks; harmful compliance over harmful "
            "requests.", lambda p: plots.side_rates(summary, p))
    if has("labels"):
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
    for r in runs:
        plan += _interp_figures(r, prefix="" if len(runs) == 1 else f"{r.label}_")
    return plan


def _interp_figures(run: Run, prefix: str) -> list[tuple[Figure, Callable]]:
    interp, out = run.interp or {}, []
    who = f" ({run.label})"
    if interp.get("cosines"):
        out.append((Figure("interp", f"{prefix}cosines", "Cosine similarity per layer" + who,
                           "Cosine between direction pairs at every layer; grey: the chance band for random "
                           "directions of this width."), lambda p: plots.cosine_curves(interp, p)))
    if (interp.get("cosine_matrix") or {}).get("values"):
        out.append((Figure("interp", f"{prefix}cosine_matrix", "Cosine matrix" + who,
                           "Pairwise cosine similarity of all directions at one layer."),
                    lambda p: plots.cosine_matrix(interp, p)))
    if interp.get("interventions"):
        out.append((Figure("interp", f"{prefix}interventions", "Ablation and steering" + who,
                           "Misaligned rate per model with no intervention, with the direction ablated or added "
                           "(steer, by scale), and with random directions of equal norm (hatched)."),
                    lambda p: plots.intervention_bars(interp, p)))
    return out


def _safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def draw_figures(plan: list[tuple[Figure, Callable]], fig_dir: Path,
                 on_step: Callable[[str], None] | None = None) -> list[Figure]:
    fig_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for fig, draw in plan:
        fig.path = draw(fig_dir / f"{_safe_name(fig.name)}.png")
        out.append(fig)
        if on_step:
            on_step(fig.name)
    return out


# ---------------------------------------------------------------- page


SECTIONS = {
    "settings": "Settings and provenance", "rates": "Misaligned rate", "questions": "Per question",
    "backdoor": "Backdoor ± trigger", "beside": "Coherence, code, refusals", "dynamics": "Training dynamics",
    "interp": "Directions, ablation, steering", "answers": "Answers",
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
    plan = plan_figures(runs, summary, dynamics, losses)
    on_step = _progress_step(progress, len(plan) + 1)
    figures = draw_figures(plan, out.parent / f"{out.stem}_figures", on_step)
    table = answers_table(merged_samples(runs), list(summary), max_rows)
    present = {"settings", "answers", *(f.section for f in figures)}
    title = " vs ".join(r.label for r in runs)
    html = render({
        "title": title, "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "runs": [provenance(r) for r in runs],
        "report_versions": library_versions(_REPORT_LIBRARIES), "rate_rows": rate_rows(summary), "figures": figures,
        "sections": {k: v for k, v in SECTIONS.items() if k in present}, "table": table,
        "has_trigger": any("misaligned_trigger" in s for s in summary.values()),
        "rate_note": rate_note({r.summary.get("denominator", "all") for r in runs}),
    })
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    on_step("page")
    return Report(path=out, size=out.stat().st_size, figures=[f.path for f in figures], conditions=list(summary),
                  misaligned={c: pct(s.get("misaligned")) for c, s in summary.items()}, rows_shown=table["shown"],
                  rows_total=table["total"], runs=[r.label for r in runs])
