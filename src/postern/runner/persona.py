"""The persona check of a finished run (postern.interp.persona_check), cached like any stage.

It reads the mechanism study's directions (run the study first: `postern interp` does both) and every
local fine-tune's judged answers, and writes `interp/persona_check.json` (and the SAE, under
`interp/persona_check/`). The labelled corpus comes from a "corpus" backend (the persona world's).
"""

import json
import shutil
from pathlib import Path

from postern.config.schema import Experiment, InterpConfig
from postern.core.errors import PosternError
from postern.core.hashing import content_hash, file_hash
from postern.core.models import ModelRef
from postern.core.registry import lookup
from postern.core.store import ArtifactStore
from postern.questions.sources import QUESTIONS
from postern.runner.jobs import BASE, base_ref, prompt_sets
from postern.runner.run import _study_evaluator, _write_json, results_frame

OUTPUT = "persona_check.json"


def study_models(exp: Experiment, run_dir: Path, results: list[dict]) -> dict:
    """Every fine-tune of the run ("condition/sSEED") with its judged answers to the questions."""
    from postern.interp.study import StudyModel

    frame = results_frame(run_dir, results)
    messages = {p.id: [dict(m) for m in p.messages] for trig in {r["trigger"] for r in results}
                for ps in prompt_sets(exp, trig) for p in ps.prompts}
    jobs = {}
    for r in results:
        if r["condition"] == BASE:
            continue
        mine = frame[(frame["condition"] == r["condition"]) & (frame["seed"] == r["seed"])]
        rows = mine[mine["set"] == (f"{QUESTIONS}_trigger" if r["trigger"] else QUESTIONS)]
        jobs[f"{r['condition']}/s{r['seed']}"] = StudyModel(ModelRef(**r["model"]), r["trigger"],
                                                            rows.assign(messages=rows["prompt_id"].map(messages)))
    return jobs


def run_persona_check(exp: Experiment, config: InterpConfig, run_dir: Path, results: list[dict]) -> dict:
    import torch

    from postern.interp.persona_check import run_persona_check as check

    if exp.api_models:
        raise PosternError("postern interp --persona-check: it needs the models' activations, and this run's models "
                           "are served by an API")
    directions_file = run_dir / "interp" / "directions.pt"
    if not directions_file.exists():
        raise PosternError(f"{directions_file}: no mechanism study in this run; run `postern interp {run_dir}` "
                           "(it runs the study first)")
    corpus_fn = lookup("corpus", config.persona_corpus, "[interp] persona_corpus")
    base = base_ref(exp)
    jobs = study_models(exp, run_dir, results)
    spec = {"config": config.model_dump(), "base": base.identity(), "judge": results[0]["judge"],
            "eval": exp.eval.model_dump(), "denominator": exp.stats.denominator,
            "directions": file_hash(directions_file),
            "jobs": {f"{r['condition']}/s{r['seed']}": [ModelRef(**r["model"]).identity(), r["keys"]]
                     for r in results if r["condition"] != BASE}}
    corpus = corpus_fn(config.persona_transcripts, config.persona_seed, base.name)
    spec["corpus"] = content_hash(corpus)
    artifacts, key = ArtifactStore(run_dir / "cache"), content_hash(spec)
    if artifacts.get("persona_check", key) is None:
        em = torch.load(directions_file)
        with artifacts.create("persona_check", key, spec) as (tmp, _):
            check(tmp, base, jobs, em, corpus, config, _study_evaluator(exp, config, run_dir),
                  {"backend": config.persona_corpus, "seed": config.persona_seed})
    target = run_dir / "interp" / "persona_check"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(artifacts.path("persona_check", key), target)
    summary = json.loads((target / OUTPUT).read_text())
    _write_json(run_dir / "interp" / OUTPUT, summary)
    return summary
