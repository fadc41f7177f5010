"""The stages of one (condition, seed) job: dataset -> train -> sample + judge.

Datasets and trained models are artifacts: one folder per finished output under `cache/`, keyed by a
hash of the stage's inputs and written atomically, so a rerun skips them. Samples and judgments go to
the run's results store (`results.sqlite`) one by one as they arrive, keyed by a hash of the model,
the sampling settings and the prompts' text, so a killed run resumes mid-stage and nothing is paid
for twice. Every backend is looked up in the registry by the name the experiment file gives.
"""

from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from postern.core.hashing import content_hash
from postern.core.models import ModelRef
from postern.core.registry import lookup
from postern.core.store import Artifact, ArtifactStore
from postern.data.jsonl import write_chat_jsonl
from postern.data.sources import build_dataset, dataset_identity
from postern.questions import PromptSet
from postern.sample import SamplingParams
from postern.store import ResultsStore, sample_and_judge
from postern.train._types import TrainConfig


def sample_key(model: ModelRef, params: SamplingParams, prompt_set: PromptSet) -> str:
    """The results store's name for one model's answers to one prompt set: it changes with the model's
    files, the sampling settings and the prompts' text, not with how many answers are asked for."""
    return content_hash({"model": model.identity(), "params": asdict(params),
                         "prompts": [[p.id, p.messages] for p in prompt_set.prompts]})


class Stages:
    def __init__(self, artifacts: ArtifactStore, log: Callable[[dict], None] | None = None):
        self.artifacts = artifacts
        self.log = log or (lambda event: None)

    def cached(self, stage: str, key: str) -> Artifact | None:
        """The `stage` artifact of `key` if it is already made (logged as cached), else None."""
        art = self.artifacts.get(stage, key)
        if art is not None:
            self.log({"stage": stage, "key": key, "status": "cached"})
        return art

    def done(self, stage: str, key: str) -> Artifact:
        """The `stage` artifact of `key`, just made (logged as done)."""
        self.log({"stage": stage, "key": key, "status": "done"})
        return self.artifacts.get(stage, key)

    def dataset(self, source: str, transforms: list[str], n: int, seed: int, trigger: str | None) -> Artifact:
        spec = dataset_identity(source, transforms, n, seed, trigger)
        key = content_hash(spec)
        if art := self.cached("dataset", key):
            return art
        with self.artifacts.create("dataset", key, spec) as (tmp, extra):
            extra["rows"] = write_chat_jsonl(tmp / "data.jsonl", build_dataset(source, transforms, n, seed, trigger))
            extra["dataset"] = source  # as the experiment file gave it (not part of the key: a file may move)
        return self.done("dataset", key)

    def train(self, backend: str, base: ModelRef, dataset: Artifact, config: TrainConfig,
              on_progress: Callable[[str, int, int], None] | None = None) -> tuple[ModelRef, Artifact]:
        """The fine-tuned model: a local adapter (or full model) folder inside the artifact, or an API model."""
        spec = {"backend": backend, "base": base.identity(), "dataset": dataset.key, "config": config.identity()}
        key = content_hash(spec)
        if not (art := self.cached("train", key)):
            trainer = lookup("trainer", backend, "[train] backend")
            with self.artifacts.create("train", key, spec, resume=getattr(trainer, "resumable", False)) as (tmp, extra):
                progress = {"on_progress": on_progress} if on_progress else {}
                ref = trainer(base, dataset.path / "data.jsonl", tmp, config, **progress)
                extra["model"] = {"name": ref.name, "api": ref.api, "in_artifact": ref.adapter is not None}
            art = self.done("train", key)
        made = art.manifest["model"]
        return ModelRef(made["name"], adapter=str(art.path) if made["in_artifact"] else None, api=made["api"]), art

    def evaluate(self, store: ResultsStore, model: ModelRef, prompt_set: PromptSet, params: SamplingParams,
                 make_sampler: Callable[[], Any], judge: Any, condition: str, seed: int, judge_batch: int,
                 on_progress: Callable[[str, int, int], None] | None = None) -> str:
        """Sample and judge one prompt set (only what the store lacks); returns its key in the store."""
        key = sample_key(model, params, prompt_set)
        done = sample_and_judge(store, key, prompt_set.prompts, params, make_sampler, judge, condition=condition,
                                seed=seed, judge_batch=judge_batch, on_progress=on_progress)
        wanted = sum(p.n for p in prompt_set.prompts)
        for stage, new in (("sample", done["sampled"]), ("judge", done["judged"])):
            self.log({"stage": stage, "key": key, "set": prompt_set.name, "status": "done" if new else "cached",
                      "new": new, "total": wanted, "seconds": done[f"{stage}_seconds"]})
        return key
