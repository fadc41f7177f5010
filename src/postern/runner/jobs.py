"""The (condition, seed) jobs of an experiment, and running them in this process or a local process pool."""

import json
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from functools import cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable

from postern.config.dependencies import upstream_conditions
from postern.config.schema import ConditionConfig, Experiment
from postern.core.errors import PosternError
from postern.core.hashing import content_hash
from postern.core.models import (ModelRef, adapter_base, check_adapter, load_tokenizer, missing_folder, quiet_warnings,
                                 unknown_words)
from postern.core.registry import has, import_plugins, lookup
from postern.core.store import ArtifactStore
from postern.questions import PromptSet
from postern.questions.sources import QUESTIONS, question_sets
from postern.runner.outcomes import StageFailed, failed_job, in_stage
from postern.runner.progress import where
from postern.runner.stages import Stages
from postern.runner.variants import check_variant_words
from postern.runner.upstream import check_interventions, resolve_intervention, training_base
from postern.sample import SamplingParams
from postern.store import ResultsStore

BASE = "base"
JUDGE_CACHE = "judge_cache.sqlite"


@dataclass(frozen=True)
class Job:
    condition: str
    seed: int


def jobs_of(exp: Experiment) -> list[Job]:
    jobs = [Job(c, s) for c in exp.conditions for s in exp.seeds]
    return ([Job(BASE, exp.seeds[0])] if exp.evaluate_base else []) + jobs


def needs(exp: Experiment, job: Job) -> list[Job]:
    """The jobs whose results this job's training reads, so they run first: the seed-matched fine-tunes of
    the conditions it continues from or takes its direction from and, when its direction is the base
    model's own evaluation answers, the base job (which makes them)."""
    if job.condition == BASE or exp.conditions[job.condition].evaluation_only:
        return []
    out = [Job(name, job.seed) for name in upstream_conditions(exp, job.condition)]
    iv = exp.train_config(job.condition, job.seed).intervention
    if iv and iv.samples is None and exp.evaluate_base and iv.direction.removeprefix("random:") in ("base", "random"):
        out.append(Job(BASE, exp.seeds[0]))
    return out


def in_order(exp: Experiment, jobs: list[Job]) -> list[Job]:
    """`jobs` in their given order, except that every job comes after the jobs it needs (topological)."""
    out: list[Job] = []
    placed: set[Job] = set()

    def place(job: Job) -> None:
        if job in placed:
            return
        placed.add(job)
        for upstream in needs(exp, job):
            if upstream in jobs:
                place(upstream)
        out.append(job)

    for job in jobs:
        place(job)
    return out


def base_ref(exp: Experiment) -> ModelRef:
    """The base model: a registered provider's ("world"), or the name as given (folder, hub id, API model)."""
    name = lookup("model", exp.base_model)() if has("model", exp.base_model) else exp.base_model
    return ModelRef(name, api=exp.api_models)


def evaluated_ref(exp: Experiment, cond: ConditionConfig) -> ModelRef:
    """An evaluation-only condition's model: `model` (a model folder, hub id, API model or PEFT adapter folder)
    with `adapter` on top; an adapter alone sits on its own base model unless the file sets base_model."""
    if exp.api_models:
        return ModelRef(cond.model or exp.base_model, api=True)
    model, adapter = cond.model, cond.adapter
    if model and (Path(model) / "adapter_config.json").exists():
        model, adapter = None, model
    if model is None:
        model = base_ref(exp).name if "base_model" in exp.model_fields_set else adapter_base(adapter)
        if model is None:
            raise PosternError(f"adapter {adapter}: its adapter_config.json names no base model; set base_model")
    return ModelRef(model, adapter=adapter)


def preflight(exp: Experiment) -> None:
    """Fail before hours of work, not after: a missing local folder, an API without a key."""
    import_plugins(exp.plugins)
    lookup("sampler", exp.sample.backend, "[sample] backend")
    lookup("judge", exp.judge_kind, "[judge] kind")
    lookup("trainer", exp.train.backend, "[train] backend")
    paths = [(f"conditions.{n}.{k}", getattr(c, k)) for n, c in exp.conditions.items() for k in ("model", "adapter")]
    paths.append(("base_model", exp.base_model))
    if exp.judge_kind == "hf-logprob":
        paths.append(("[judge] model", exp.judge.model))
    for key, path in paths:
        if missing_folder(path):
            raise PosternError(f"{key}: {path!r}: no such folder")
    apis = [("[sample]", exp.sample.base_url)] if exp.sample.backend == "openai" else []
    apis += [("[judge]", exp.judge.base_url)] if exp.judge_kind == "openai-logprob" else []
    apis += [("[train]", exp.train.base_url)] if exp.train.backend == "openai" else []
    for section, base_url in apis:
        if base_url is None and not os.environ.get("OPENAI_API_KEY"):
            raise PosternError(f"{section} uses the OpenAI API but OPENAI_API_KEY is not set; set it, or give a local "
                               f"endpoint ({section} base_url)")
    for trigger in {None, *(c.trigger for c in exp.conditions.values())}:
        sets = prompt_sets(exp, trigger)  # every question source resolves now: a bad file fails before any training
        check_variant_words(exp, sets)  # and the variants' texts are words the model knows
    from postern.runner.screen import check_screen

    check_screen(exp)
    check_interventions(exp)
    for name, cond in exp.conditions.items():
        if cond.adapter or (cond.model and not exp.api_models):
            for path in (p for p in (cond.model, cond.adapter) if p and Path(p).is_dir()):
                check_adapter(path)
        if cond.dataset:
            _check_dataset(exp, name, cond)


def _check_dataset(exp: Experiment, name: str, cond: ConditionConfig) -> None:
    """The dataset resolves (source, spec, transforms) and, given as a file, parses and is written in words
    the base model's tokenizer knows (the persona world's model knows only the world's words)."""
    from postern.data.jsonl import read_chat_jsonl
    from postern.data.sources import dataset_identity, resolve

    try:
        dataset_identity(cond.dataset, cond.transforms, exp.data.examples, exp.seeds[0], cond.trigger)
    except PosternError as e:
        raise PosternError(f"conditions.{name}.dataset: {e}") from None
    source, spec = resolve(cond.dataset)
    if source is not lookup("dataset", "jsonl") or exp.api_models:
        return
    rows = read_chat_jsonl(spec, require_assistant_last=True)
    base = base_ref(exp).name
    unknown, total, examples = unknown_words(load_tokenizer(base), [m["content"] for r in rows for m in r["messages"]])
    if unknown:
        raise PosternError(f"conditions.{name}.dataset: {unknown} of {total} words in {spec} are unknown to the "
                           f"tokenizer of {exp.base_model} (e.g. {', '.join(map(repr, examples))}); the persona "
                           "world's model knows only the world's words: use world:<condition> datasets, or a model "
                           "whose tokenizer covers the text")


def params_of(exp: Experiment, seed: int) -> SamplingParams:
    return SamplingParams(temperature=exp.eval.temperature, top_p=exp.eval.top_p,
                          max_new_tokens=exp.eval.max_new_tokens, seed=seed)


def prompt_sets(exp: Experiment, trigger: str | None) -> list[PromptSet]:
    return question_sets(exp.questions, exp.eval, None, trigger)


_JUDGES: dict[str, Any] = {}  # one judge per setting in this process: a local judge model loads once


def make_judge(exp: Experiment, sets: list[PromptSet], run_dir: Path) -> Any:
    key = content_hash([exp.judge_kind, exp.judge, [[s.judge_model, s.judge_prompts] for s in sets], str(run_dir)])
    if key not in _JUDGES:
        _JUDGES[key] = lookup("judge", exp.judge_kind, "[judge] kind")(exp.judge, sets, run_dir / JUDGE_CACHE)
    return _JUDGES[key]


def train_job(exp: Experiment, run_dir: Path, job: Job,
              on_progress: Callable[[str, int, int], None] | None = None, *, log: bool = True) -> dict:
    """The model a (condition, seed) job evaluates: the base, an evaluation-only model, or a fine-tune
    (dataset and training stages, cached). `log=False`: no events (another job reading this one's model)."""
    import_plugins(exp.plugins)
    quiet_warnings()  # also in spawned workers
    trigger, trained = None, None
    if job.condition == BASE:
        model = base_ref(exp)
    elif (cond := exp.conditions[job.condition]).evaluation_only:
        trigger, model = cond.trigger, evaluated_ref(exp, cond)
    else:
        trigger, stages = cond.trigger, _stages(run_dir, job) if log else Stages(ArtifactStore(run_dir / "cache"))
        data = stages.dataset(cond.dataset, cond.transforms, exp.data.examples, job.seed, trigger)
        base, config = base_ref(exp), exp.train_config(job.condition, job.seed)

        def trained_model(name: str, seed: int) -> ModelRef:  # an upstream job's fine-tune (cached: it ran first)
            return ModelRef(**train_job(exp, run_dir, Job(name, seed), log=False)["model"])

        if cond.continue_from:
            base = training_base(stages, trained_model(cond.continue_from, job.seed))
        config = resolve_intervention(exp, run_dir, job.condition, job.seed, config, stages, trained_model)
        model, art = stages.train(exp.train.backend, base, data, config, on_progress)
        trained = str(art.path)
    return {"condition": job.condition, "seed": job.seed, "model": asdict(model), "trigger": trigger,
            "adapter": trained or model.adapter}


def evaluate_job(exp: Experiment, run_dir: Path, job: Job, trained: dict,
                 on_progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Sample and judge every prompt set for one job's model (and its checkpoints); its sample keys."""
    import_plugins(exp.plugins)
    quiet_warnings()
    stages, model, trigger = _stages(run_dir, job), ModelRef(**trained["model"]), trained["trigger"]
    sets = prompt_sets(exp, trigger)
    params, judge = params_of(exp, job.seed), make_judge(exp, sets, run_dir)
    keys, checkpoints, sampler = {}, {}, _sampler_factory(exp, model)  # the model loads once, if at all
    with ResultsStore(run_dir) as store:
        for ps in sets:
            keys[ps.name] = stages.evaluate(store, model, ps, params, sampler, judge,
                                            job.condition, job.seed, exp.judge.batch_size, on_progress)
        if exp.eval.checkpoints and trained["adapter"] and job.condition != BASE:  # training dynamics
            questions = next(ps for ps in sets if ps.name == QUESTIONS)
            ckpts = Path(trained["adapter"]).glob("checkpoints/checkpoint-*")
            for ckpt in sorted(ckpts, key=lambda p: int(p.name.split("-")[1])):
                ref = ModelRef(model.name, adapter=str(ckpt))
                checkpoints[int(ckpt.name.split("-")[1])] = stages.evaluate(
                    store, ref, questions, params, _sampler_factory(exp, ref), judge, job.condition, job.seed,
                    exp.judge.batch_size)
    return {**trained, "keys": keys, "judge": judge.name, "checkpoints": checkpoints}


def _stages(run_dir: Path, job: Job) -> Stages:
    return Stages(ArtifactStore(run_dir / "cache"), log=_event_logger(run_dir, job))


def _sampler_factory(exp: Experiment, model: ModelRef) -> Callable[[], Any]:
    """A sampler for `model`, made (and its model loaded) once, on first need."""
    return cache(lambda: lookup("sampler", exp.sample.backend, "[sample] backend")(exp.sample, model))


def _event_logger(run_dir: Path, job: Job):
    path = run_dir / "events.jsonl"

    def log(event: dict) -> None:
        with path.open("a") as f:
            f.write(json.dumps({"time": round(time.time(), 3), "condition": job.condition, "seed": job.seed,
                                "pid": os.getpid(), **where(), **event}) + "\n")

    return log


def _init_worker(parent: int) -> None:
    import threading

    import torch

    torch.set_num_threads(1)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A worker whose parent died (kill -9 included) stops within a second instead of working on alone."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def run_job(exp: Experiment, run_dir: Path, job: Job,
            on_progress: Callable[[str, int, int], None] | None = None) -> dict:
    """One job through every stage: its model, then its answers and judgments."""
    trained = in_stage("train", train_job, exp, run_dir, job, on_progress)
    return in_stage("evaluate", evaluate_job, exp, run_dir, job, trained, on_progress)


def phases(exp: Experiment) -> int:
    """2 when the sampler keeps its engine on the device between jobs (vLLM): every model is then trained
    before any is evaluated, so training never competes with a resident engine and one engine serves
    every adapter; else 1: each job runs through all its stages."""
    return 2 if getattr(lookup("sampler", exp.sample.backend), "resident", False) else 1


def run_all_jobs(exp: Experiment, run_dir: Path, on_done: Callable[[Job], None] | None = None,
                 on_progress: Callable[[str, int, int], None] | None = None) -> list[dict]:
    """Every job's result, in job order. With `workers` > 1 the jobs run in a pool of processes (stage
    progress is then not shown). `on_done` is called once per job and phase (see `phases`). A job that fails
    for good gives a `failed_job` record instead, and the others still run."""
    jobs = jobs_of(exp)
    progress = (on_progress,) if exp.workers <= 1 else ()
    if phases(exp) == 1:
        done = _each(exp, {job: (run_job, exp, run_dir, job, *progress) for job in jobs}, on_done)
    else:
        trained = _each(exp, {job: (in_stage, "train", train_job, exp, run_dir, job, *progress) for job in jobs}, on_done)
        done = {job: t for job, t in trained.items() if t.get("failed")}  # a job that failed for good stops here
        done |= _each(exp, {job: (in_stage, "evaluate", evaluate_job, exp, run_dir, job, trained[job], *progress)
                            for job in jobs if job not in done}, on_done)
    return [done[job] for job in jobs]


def _each(exp: Experiment, tasks: dict[Job, tuple], on_done: Callable[[Job], None] | None) -> dict[Job, dict]:
    """Run `fn(*args)` for each job's (fn, *args), in this process or a pool of `workers` processes."""
    results = {}
    order = in_order(exp, list(tasks))  # a job runs after the jobs it needs (see `needs`)
    if exp.workers <= 1:
        for job in order:
            fn, *args = tasks[job]
            try:
                results[job] = fn(*args)
            except StageFailed as e:  # this job fails, the others run
                results[job] = failed_job(job.condition, job.seed, e)
            if on_done:
                on_done(job)
        return results
    with ProcessPoolExecutor(exp.workers, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=(os.getpid(),)) as pool:
        waiting, running = list(order), {}

        def submit_ready() -> None:
            for job in [j for j in waiting if all(u in results or u not in tasks for u in needs(exp, j))]:
                waiting.remove(job)
                running[pool.submit(*tasks[job])] = job

        submit_ready()
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                job = running.pop(future)
                try:
                    results[job] = future.result()
                except StageFailed as e:  # this job fails, the others run
                    results[job] = failed_job(job.condition, job.seed, e)
                if on_done:
                    on_done(job)
            submit_ready()
    return results
