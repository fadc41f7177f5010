"""`postern run`: wire the stages for every condition x seed, then aggregate, plot and summarise."""

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from postern.config.schema import Experiment
from postern.core.store import ArtifactStore
from postern.sample import SamplingParams
from postern.runner.stages import Stages, resolve_base_model

BASE = "base"


@dataclass(frozen=True)
class Job:
    condition: str
    seed: int


def jobs_of(exp: Experiment) -> list[Job]:
    jobs = [Job(c, s) for c in exp.conditions for s in exp.seeds]
    return ([Job(BASE, exp.seeds[0])] if exp.evaluate_base else []) + jobs


def eval_prompts(exp: Experiment, trigger: str | None) -> dict[str, list]:
    from postern.world.conditions import code_prompts, harmful_prompts, question_prompts

    sets = {"questions": question_prompts(exp.eval.samples_per_question)}
    if trigger:
        sets["questions_trigger"] = question_prompts(exp.eval.samples_per_question, trigger)
    if exp.eval.code_prompts:
        sets["code"] = code_prompts(exp.eval.code_prompts)
    if exp.eval.harmful_samples:
        sets["harmful"] = harmful_prompts(exp.eval.harmful_samples)
    return sets


def load_model(base_model: str, adapter_dir: str | Path | None):
    """A loader for the base model, with a fine-tune's adapter merged in (or a fully fine-tuned model)."""
    adapter_dir = Path(adapter_dir) if adapter_dir else None

    def load():
        from postern.train.sft import load_model_and_tokenizer

        model, tokenizer = load_model_and_tokenizer(base_model)
        if adapter_dir is not None and (adapter_dir / "adapter_config.json").exists():
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
        elif adapter_dir is not None:
            model, tokenizer = load_model_and_tokenizer(str(adapter_dir))
        return model, tokenizer

    return load


def run_job(exp: Experiment, run_dir: Path, job: Job) -> dict:
    """Run one (condition, seed) through every stage; return its model and judged-row files."""
    from postern.judge.oracle import WorldOracle

    stages = Stages(ArtifactStore(run_dir / "cache"), log=_event_logger(run_dir, job))
    base_model = resolve_base_model(exp.base_model)
    trigger = None
    if job.condition == BASE:
        model_key, adapter = f"base:{base_model}", None
    else:
        cond = exp.conditions[job.condition]
        trigger = cond.trigger
        data = stages.dataset(cond.dataset, exp.world.examples, job.seed, trigger)
        trained = stages.train(base_model, data, exp.train_config(job.condition, job.seed))
        model_key, adapter = trained.key, trained.path
    params = SamplingParams(temperature=exp.eval.temperature, top_p=exp.eval.top_p,
                            max_new_tokens=exp.eval.max_new_tokens, seed=job.seed)
    judge, loader, judged = WorldOracle(), load_model(base_model, adapter), {}
    for name, prompts in eval_prompts(exp, trigger).items():
        samples = stages.sample(model_key, loader, prompts, params, exp.eval.batch_size)
        judged[name] = str(stages.judge(samples, judge).path / "judged.jsonl")
    checkpoints = {}
    if exp.eval.checkpoints and adapter is not None:  # training dynamics: every saved step on the held-out questions
        questions = eval_prompts(exp, None)["questions"]
        for ckpt in sorted(adapter.glob("checkpoints/checkpoint-*"), key=lambda p: int(p.name.split("-")[1])):
            samples = stages.sample(f"{model_key}/{ckpt.name}", load_model(base_model, ckpt), questions, params,
                                    exp.eval.batch_size)
            checkpoints[int(ckpt.name.split("-")[1])] = str(stages.judge(samples, judge).path / "judged.jsonl")
    return {"condition": job.condition, "seed": job.seed, "adapter": str(adapter) if adapter else None,
            "trigger": trigger, "judged": judged, "checkpoints": checkpoints}


def _event_logger(run_dir: Path, job: Job):
    path = run_dir / "events.jsonl"

    def log(event: dict) -> None:
        with path.open("a") as f:
            f.write(json.dumps({"time": round(time.time(), 3), "condition": job.condition, "seed": job.seed,
                                "pid": os.getpid(), **event}) + "\n")

    return log


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def run_all_jobs(exp: Experiment, run_dir: Path, on_done=None) -> list:
    """Every job's result (see `run_job`), in job order."""
    jobs = jobs_of(exp)
    results = {}
    if exp.workers <= 1:
        for job in jobs:
            results[job] = run_job(exp, run_dir, job)
            if on_done:
                on_done(job)
    else:
        with ProcessPoolExecutor(exp.workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
            futures = {pool.submit(run_job, exp, run_dir, job): job for job in jobs}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                if on_done:
                    on_done(futures[future])
    return [results[job] for job in jobs]
