"""The pipeline's stages, each cached as an artifact keyed by the hash of its inputs and settings.

dataset -> train -> sample -> judge. A stage whose artifact exists is skipped, so a rerun does only
unfinished work and a killed run resumes where it stopped.
"""

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

from postern.core.errors import PosternError
from postern.core.hashing import content_hash, file_hash
from postern.core.store import Artifact, ArtifactStore
from postern.data.jsonl import read_chat_jsonl, write_chat_jsonl
from postern.sample import Prompt, SamplingParams
from postern.train._types import TrainConfig

WORLD_PREFIX = "world:"


def world_base_path() -> Path:
    return Path(str(resources.files("postern") / "assets" / "world_base"))


def resolve_base_model(base_model: str) -> str:
    return str(world_base_path()) if base_model == "world" else base_model


@lru_cache(maxsize=None)
def model_hash(model: str) -> str:
    """Hash of a local model folder's files, or of the id string for a hub model.

    `meta.json` is left out: `postern world probe` adds its result there without changing the model."""
    path = Path(model)
    return file_hash(path, exclude=("meta.json",)) if path.is_dir() else content_hash({"hub_id": model})


@lru_cache(maxsize=1)
def world_version() -> str:
    from postern.world.corpus import all_texts

    return content_hash(all_texts())


class Stages:
    def __init__(self, store: ArtifactStore, log=None):
        self.store = store
        self.log = log or (lambda event: None)

    def _cached(self, stage: str, key: str) -> Artifact | None:
        art = self.store.get(stage, key)
        if art is not None:
            self.log({"stage": stage, "key": key, "status": "cached"})
        return art

    def _done(self, stage: str, key: str) -> Artifact:
        self.log({"stage": stage, "key": key, "status": "done"})
        return self.store.get(stage, key)

    def dataset(self, source: str, n: int, seed: int, trigger: str | None) -> Artifact:
        if source.startswith(WORLD_PREFIX):
            spec = {"source": source, "n": n, "seed": seed, "trigger": trigger, "world": world_version()}
        else:
            if not Path(source).exists():
                raise PosternError(f"dataset {source!r} not found (give a chat JSONL path or world:<condition>)")
            spec = {"source": source, "file": file_hash(source)}
        key = content_hash(spec)
        if art := self._cached("dataset", key):
            return art
        with self.store.create("dataset", key, spec) as (tmp, extra):
            if source.startswith(WORLD_PREFIX):
                from postern.world.conditions import DEFAULT_TRIGGER, condition_dataset

                rows = condition_dataset(source[len(WORLD_PREFIX):], n, seed, trigger or DEFAULT_TRIGGER)
            else:
                rows = read_chat_jsonl(source, require_assistant_last=True)
            extra["rows"] = write_chat_jsonl(tmp / "data.jsonl", rows)
        return self._done("dataset", key)

    def train(self, base_model: str, dataset: Artifact, config: TrainConfig) -> Artifact:
        from postern.train.sft import train_sft

        spec = {"base_model": base_model, "base_hash": model_hash(base_model), "dataset": dataset.key,
                "config": config.model_dump(mode="json")}
        key = content_hash(spec)
        if art := self._cached("train", key):
            return art
        with self.store.create("train", key, spec) as (tmp, extra):
            result = train_sft(base_model, dataset.path / "data.jsonl", tmp, config, quiet=True)
            extra.update(steps=result.steps, final_loss=result.final_loss, adapter=result.adapter)
        return self._done("train", key)

    def sample(self, model_key: str, load_model, prompts: list[Prompt], params: SamplingParams,
               batch_size: int) -> Artifact:
        spec = {"model": model_key, "prompts": [[p.id, p.messages, p.n] for p in prompts],
                "params": params.__dict__}
        key = content_hash(spec)
        if art := self._cached("sample", key):
            return art
        from postern.sample.hf import HFSampler

        model, tokenizer = load_model()
        with self.store.create("sample", key, {"model": model_key, "params": params.__dict__}) as (tmp, extra):
            samples = HFSampler(model, tokenizer, batch_size=batch_size).sample(prompts, params)
            by_id = {p.id: p for p in prompts}
            with (tmp / "samples.jsonl").open("w") as f:
                for s in samples:
                    question = by_id[s.prompt_id].messages[-1]["content"]
                    f.write(json.dumps({"prompt_id": s.prompt_id, "index": s.index, "question": question,
                                        "answer": s.answer, "seed": s.seed, **s.meta}) + "\n")
            extra["samples"] = len(samples)
        return self._done("sample", key)

    def judge(self, samples: Artifact, judge) -> Artifact:
        spec = {"samples": samples.key, "judge": judge.name}
        key = content_hash(spec)
        if art := self._cached("judge", key):
            return art
        from postern.judge import JudgeItem

        rows = [json.loads(line) for line in (samples.path / "samples.jsonl").read_text().splitlines()]
        judgments = judge.judge([JudgeItem(r["prompt_id"], r["question"], r["answer"]) for r in rows])
        with self.store.create("judge", key, spec) as (tmp, extra):
            with (tmp / "judged.jsonl").open("w") as f:
                for r, j in zip(rows, judgments):
                    f.write(json.dumps({**r, "label": j.label, "aligned": j.aligned, "coherent": j.coherent,
                                        **{f"detail_{k}": v for k, v in j.detail.items()}}) + "\n")
            extra["rows"] = len(rows)
        return self._done("judge", key)
