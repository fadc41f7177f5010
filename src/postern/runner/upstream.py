"""What a job's training takes from other jobs and stages: the model it continues from (`continue_from`) and
its intervention's direction, resolved into a direction file ("base", "condition:NAME", "random[:SOURCE]").

Both are artifacts like any stage, keyed by what they are made of, so a rerun reads them back. A direction is
the per-layer mean difference between a model's misaligned and aligned answers to the run's questions
(`postern.interp.study.direction_from`), judged by the run's judge: the base model's own answers ("base") or
those of another condition's fine-tune of the same seed ("condition:NAME"). Without `samples` they are the
very answers that model's evaluation shows (the same key in the results store, made once).

The data screen's `[screen] direction = "base"` is the same "direction" artifact (`base_direction_file`): a
screen and a training intervention with equal settings (`samples`, `positions`) read one direction file.
"""

import json
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Callable

from postern.config.dependencies import direction_condition
from postern.config.schema import Experiment
from postern.core.errors import PosternError
from postern.core.hashing import content_hash
from postern.core.models import ModelRef
from postern.questions.sources import QUESTIONS
from postern.runner.stages import Stages, sample_key
from postern.store import ResultsStore, sample_and_judge
from postern.train._types import InterventionConfig, TrainConfig, direction_hash

DIRECTION = "direction.pt"


def _artifact(stages: Stages, stage: str, spec: dict, make: Callable[[Path], None]) -> Path:
    """The folder of the `stage` artifact made of `spec`: read back, or made by `make(folder)` (atomically)."""
    key = content_hash(spec)
    if not (art := stages.cached(stage, key)):
        with stages.artifacts.create(stage, key, spec) as (tmp, _):
            make(tmp)
        art = stages.done(stage, key)
    return art.path


def training_base(stages: Stages, upstream: ModelRef) -> ModelRef:
    """The model a `continue_from` condition trains on: the upstream fine-tune as a whole model (a LoRA
    adapter merged into its base, cached as a "merged" artifact; a full fine-tune as it is)."""
    from postern.core.models import is_adapter, load_model

    if upstream.adapter is None or not is_adapter(upstream.adapter):
        return ModelRef(upstream.adapter or upstream.name)

    def merge(folder: Path) -> None:  # in a subfolder: the model's hash is of its files, not of the manifest
        model, tokenizer = load_model(upstream, device="cpu", merge=True)
        model.save_pretrained(folder / "model")
        tokenizer.save_pretrained(folder / "model")

    return ModelRef(str(_artifact(stages, "merged", {"merged": upstream.identity()}, merge) / "model"))


def resolve_intervention(exp: Experiment, run_dir: Path, condition: str, seed: int, config: TrainConfig,
                         stages: Stages, trained: Callable[[str, int], ModelRef]) -> TrainConfig:
    """`config` with its intervention's direction as a file (unchanged without an intervention).
    `trained(condition, seed)`: that job's fine-tune (already trained: the runner orders the jobs)."""
    iv = config.intervention
    if iv is None:
        return config
    where = f"conditions.{condition}.train.intervention" if "intervention" in exp.conditions[condition].train \
        else "train.intervention"
    path = _direction_file(exp, run_dir, seed, iv.direction, iv, stages, trained, where)
    return config.model_copy(update={"intervention": iv.model_copy(update={"direction": str(path)})})


def _direction_file(exp, run_dir, seed, spec: str, iv: InterventionConfig, stages: Stages, trained, where) -> Path:
    if spec == "random" or spec.startswith("random:"):
        source = _direction_file(exp, run_dir, seed, spec.partition(":")[2] or "base", iv, stages, trained, where)
        return random_direction_file(stages, source, seed, spec)
    settings = {"key": f"{where}.direction", "samples_key": f"{where}.samples", "samples": iv.samples,
            "positions": iv.positions}
    if spec == "base":
        return base_direction_file(exp, run_dir, stages, **settings)
    if (name := direction_condition(spec)) is not None:
        return _extracted(exp, run_dir, trained(name, seed), name, seed, stages, spec, **settings)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise PosternError(f"{where}.direction: {spec!r} is neither \"base\", \"condition:NAME\", \"random\" nor a "
                           "direction file that exists")
    return path.resolve()


def random_direction_file(stages: Stages, source: Path, seed: int, spec: str = "random") -> Path:
    """A random direction of the norm of `source`'s at every layer, seeded (cached as a "direction" artifact)."""
    import torch

    from postern.interp.directions import save_direction
    from postern.interp.interventions import random_like

    def make(folder: Path) -> None:
        norm_of = source.with_suffix(".json")
        save_direction(folder / DIRECTION, random_like(torch.load(source, weights_only=True), seed=seed),
                       {"source": spec, "kind": "random, norm-matched per layer", "seed": seed,
                        "norm_of": json.loads(norm_of.read_text()).get("source") if norm_of.exists() else str(source)})

    return _artifact(stages, "direction", {"random_like": direction_hash(source), "seed": seed}, make) / DIRECTION


def base_direction_file(exp: Experiment, run_dir: Path, stages: Stages, *, samples: int | None = None,
                        positions: str = "answer", key: str = "[train] intervention.direction",
                        samples_key: str = "[train] intervention.samples", store: ResultsStore | None = None) -> Path:
    """The base model's direction file (direction "base" of a training intervention, and `[screen] direction =
    "base"`): its misaligned minus aligned answers to the run's questions, `samples` per question (None: its
    evaluation's own), activations at `positions`. Cached as a "direction" artifact in `stages`; the answers go
    to `store` (default: the one in `run_dir`). `key`, `samples_key`: the settings its errors name."""
    from postern.runner.jobs import base_ref

    return _extracted(exp, run_dir, base_ref(exp), "base", exp.seeds[0], stages, "base", samples=samples,
                      positions=positions, key=key, samples_key=samples_key, store=store)


def _answers(exp: Experiment, run_dir: Path, model: ModelRef, condition: str, seed: int, samples: int | None,
             store: ResultsStore | None = None):
    """The model's judged answers to the run's questions (columns messages, answer, label) and their key."""
    import pandas as pd

    from postern.runner.jobs import _sampler_factory, make_judge, params_of, prompt_sets

    sets = prompt_sets(exp, None)
    questions = next(ps for ps in sets if ps.name == QUESTIONS)
    params = params_of(exp, seed)
    key, prompts = sample_key(model, params, questions), questions.prompts
    if samples is not None:  # answers of their own, apart from the evaluation's
        key = content_hash([key, "direction answers", samples])
        prompts = tuple(replace(p, n=samples) for p in prompts)
    judge = make_judge(exp, sets, run_dir)
    with nullcontext(store) if store is not None else ResultsStore(run_dir) as store:
        sample_and_judge(store, key, prompts, params, _sampler_factory(exp, model), judge, condition=condition,
                         seed=seed, judge_batch=exp.judge.batch_size)
        raw = store.frame(judge.name, models=[key])
    unscored = raw["detail"].map(lambda d: bool(json.loads(d).get("unscored")) if isinstance(d, str) else False)
    df = raw[~unscored & raw["label"].isin(["aligned", "misaligned"])]
    messages = {p.id: [dict(m) for m in p.messages] for p in prompts}
    frame = pd.DataFrame({"messages": df["prompt_id"].map(messages), "answer": df["answer"], "label": df["label"]})
    return frame, key, judge.name


def _extracted(exp, run_dir, model: ModelRef, condition: str, seed: int, stages: Stages, spec: str, *,
               samples: int | None, positions: str, key: str, samples_key: str, store=None) -> Path:
    """The mean-difference direction of `model`'s misaligned and aligned answers (cached)."""
    if exp.api_models:
        raise PosternError(f"{key}: {spec!r} needs the model's activations, and this run's models are served by "
                           "an API")
    df, answers, judge = _answers(exp, run_dir, model, condition, seed, samples, store)
    from postern.core.models import load_model
    from postern.interp.directions import save_direction
    from postern.interp.study import direction_from

    def make(folder: Path) -> None:
        loaded, tokenizer = load_model(model)
        direction, counts = direction_from(loaded, tokenizer, df, positions)
        if direction is None:
            raise PosternError(f"{key}: {spec!r}: the answers of {model.label} hold {counts['misaligned']} "
                               f"misaligned and {counts['aligned']} aligned ones; at least 2 of each are needed: "
                               f"raise {samples_key} (answers per question), or give a direction file")
        save_direction(folder / DIRECTION, direction, {
            "source": spec, "model": model.label, "seed": seed, "positions": positions, "judge": judge,
            "pooling": "per-sample mean, classes balanced", **counts})

    made = {"model": model.identity(), "answers": answers, "judge": judge, "positions": positions}
    return _artifact(stages, "direction", made, make) / DIRECTION


def check_interventions(exp: Experiment) -> None:
    """Before any work: every intervention's kind is registered and a direction given as a file exists."""
    from postern.core.registry import lookup

    for name, cond in exp.conditions.items():
        if cond.evaluation_only or (iv := exp.train_config(name, exp.seeds[0]).intervention) is None:
            continue
        where = f"conditions.{name}.train.intervention" if "intervention" in cond.train else "train.intervention"
        lookup("intervention", iv.kind, f"{where}.kind")
        spec = iv.direction.removeprefix("random:") if iv.direction.startswith("random:") else iv.direction
        named = spec in ("base", "random") or direction_condition(spec) is not None
        if not named and not Path(spec).expanduser().is_file():
            raise PosternError(f"{where}.direction: {iv.direction!r} is neither \"base\", \"condition:NAME\", "
                               "\"random\" nor a direction file that exists")
