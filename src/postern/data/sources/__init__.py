"""Dataset sources: where a condition's fine-tuning rows come from.

A condition's ``dataset`` is ``NAME:SPEC`` with NAME a registered dataset source (``code:insecure``,
``world:insecure``, ...) or a chat JSONL path (``.jsonl`` / ``.jsonl.gz``), relative to the
experiment file's folder. A source registers itself with ``@register("dataset", NAME)`` in a module
of this package (an instance, used as is). Its rows then go through the condition's transforms
(``postern data transform -s`` syntax), in order.
"""

from pathlib import Path
from typing import Protocol

from postern.core import registry
from postern.core.errors import PosternError
from postern.core.hashing import file_hash
from postern.data.transforms import TRANSFORMS, ChatData, apply_pipeline, parse_step

SUFFIXES = (".jsonl", ".jsonl.gz")


class DatasetSource(Protocol):
    def identity(self, spec: str, n: int, seed: int, trigger: str | None) -> dict:
        """Everything the rows depend on (hashed into the cache key)."""

    def rows(self, spec: str, n: int, seed: int, trigger: str | None) -> list[dict]:
        """Chat rows ``{"messages": [...], "meta": {...}}``."""


def _path(value: str, base_dir: Path | None) -> Path:
    path = Path(value)
    return base_dir / path if base_dir is not None and not path.is_absolute() else path


def _resolve(dataset: str, base_dir: Path | None) -> tuple[str, DatasetSource, str]:
    name, sep, spec = dataset.partition(":")
    if sep and name != "jsonl" and registry.has("dataset", name):
        return name, registry.lookup("dataset", name), spec
    path = _path(spec if sep and name == "jsonl" else dataset, base_dir)
    if path.is_file() and path.name.endswith(SUFFIXES):
        return "jsonl", registry.lookup("dataset", "jsonl"), str(path)
    sources = ", ".join(registry.names("dataset"))
    accepted = f"give a chat JSONL file ({' or '.join(SUFFIXES)}) or SOURCE:SPEC with SOURCE one of {sources}"
    if sep and name.isidentifier() and name != "jsonl":
        raise PosternError(f"dataset {dataset!r}: unknown source {name!r} and no file {path}; {accepted}")
    what = "is not a chat JSONL file" if path.is_file() else "not found"
    raise PosternError(f"dataset {dataset!r}: {path} {what}; {accepted}")


def resolve(dataset: str, base_dir: Path | None = None) -> tuple[DatasetSource, str]:
    """The source that makes `dataset` and the SPEC to give it (for a file: its resolved path)."""
    _, source, spec = _resolve(dataset, base_dir)
    return source, spec


def _step_identity(step: str, base_dir: Path | None) -> dict:
    """A transform step, with the content hash of any dataset file it names."""
    name, settings = parse_step(step)
    if name not in TRANSFORMS:
        raise PosternError(f"transform {step!r}: unknown transform {name!r}; known: {', '.join(TRANSFORMS)}")
    files = {}
    for key in TRANSFORMS[name].datasets:
        if key in settings:
            path = _path(settings[key], base_dir)
            if not path.is_file():
                raise PosternError(f"transform {step!r}: {key}={path} not found (a chat JSONL file)")
            files[key] = file_hash(path)
    return {"step": step, "files": files}


def dataset_identity(
    dataset: str, transforms: list[str], n: int, seed: int, trigger: str | None, base_dir: Path | None = None
) -> dict:
    """Everything the condition's rows depend on: the source, its identity and the transforms."""
    name, source, spec = _resolve(dataset, base_dir)
    return {
        "source": name,
        "identity": source.identity(spec, n, seed, trigger),
        "transforms": [_step_identity(s, base_dir) for s in transforms],
    }


def build_dataset(
    dataset: str, transforms: list[str], n: int, seed: int, trigger: str | None, base_dir: Path | None = None
) -> list[dict]:
    """The condition's rows: the source's rows through `transforms`, in order."""
    _, source, spec = _resolve(dataset, base_dir)
    data = ChatData(source.rows(spec, n, seed, trigger), dataset)
    return apply_pipeline(data, [parse_step(s) for s in transforms], base_dir).rows
