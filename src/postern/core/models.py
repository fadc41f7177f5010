"""Which model a stage works on (`ModelRef`), its cache identity, and the one loader for local models.

A `ModelRef` is a local folder or hub id (optionally with a PEFT adapter folder, or a fully fine-tuned
model folder, on top) or the name of a model behind an API. `load_model` is the only place postern
turns a reference into a (model, tokenizer) pair: training, sampling, local judges, interp and the
persona world all go through it.
"""

import gc
import json
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

from postern.core.errors import PosternError
from postern.core.hashing import content_hash, file_hash

_BIG_FILE = 64 * 1024**2  # files above this are hashed by name and size, not bytes (a 32B model is 64 GB)


@dataclass(frozen=True)
class ModelRef:
    name: str  # a local folder, a hub id, or the model's name behind an API
    adapter: str | None = None  # a PEFT adapter folder, or the folder of a fully fine-tuned model
    api: bool = False  # served by an OpenAI-compatible endpoint, not loaded here

    @property
    def label(self) -> str:
        base = Path(self.name).name if not self.api and Path(self.name).is_dir() else self.name
        return f"{base}+{Path(self.adapter).name}" if self.adapter else base

    def identity(self) -> dict[str, Any]:
        """What the model's outputs depend on: file contents for local folders, names otherwise."""
        if self.api:
            return {"api": self.name}
        return {"model": model_hash(self.name), "adapter": model_hash(self.adapter) if self.adapter else None}

    def key(self) -> str:
        return content_hash(self.identity())


@lru_cache(maxsize=None)
def model_hash(model: str) -> str:
    """Hash of a local model folder's files, or of the id string for a hub model.

    `meta.json` is left out: `postern world probe` adds its result there without changing the model;
    so are `checkpoints/` (training snapshots beside a final adapter). Files over 64 MiB count by name
    and size, so a large model is not read whole to name it."""
    if not Path(model).is_dir():
        return content_hash({"hub_id": model})
    return file_hash(model, exclude=("meta.json",), skip_dirs=("checkpoints",), by_size_above=_BIG_FILE)


def quiet_warnings() -> None:
    """Deprecation notices of the libraries postern drives are for postern's developers, not its users
    (e.g. transformers 5.2x renaming gradient checkpointing while 5.20 needs the old name)."""
    import warnings

    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=r"(transformers|trl|peft|accelerate|datasets|torch)\b")


def quiet_libraries() -> None:
    """Turn off the per-call progress bars and advisory warnings of datasets and transformers; postern
    shows its own progress."""
    import datasets
    import transformers

    quiet_warnings()
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def load_tokenizer(model_path: str, require_chat_template: bool = True) -> Any:
    """The tokenizer of a hub id or local folder; it must have a chat template unless told otherwise."""
    from transformers import AutoTokenizer

    quiet_libraries()
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path)
    except (OSError, ValueError) as e:
        raise PosternError(f"could not load the tokenizer of {model_path!r}: {e}") from e
    if require_chat_template and tokenizer.chat_template is None:
        raise PosternError(f"model {model_path!r} has no chat template; give it one (tokenizer.chat_template) first")
    return tokenizer


def missing_folder(path: str | None) -> bool:
    """`path` is written as a local path (not a hub id) and nothing is there."""
    return bool(path) and path.startswith(("/", "./", "../", "~")) and not Path(path).expanduser().exists()


def is_adapter(path: str | None) -> bool:
    return path is not None and (Path(path) / "adapter_config.json").exists()


def adapter_config(adapter: str) -> dict:
    """A PEFT adapter folder's config; a one-line error when it is not one."""
    path = Path(adapter) / "adapter_config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise PosternError(f"{path}: not a readable PEFT adapter config ({e})") from e
    if not isinstance(config, dict) or "peft_type" not in config:
        raise PosternError(f"{path}: no peft_type; is this folder a PEFT adapter (saved with save_pretrained)?")
    return config


def adapter_base(adapter: str) -> str | None:
    """The base model a PEFT adapter folder names, if any."""
    return adapter_config(adapter).get("base_model_name_or_path")


def check_adapter(path: str) -> None:
    """`path` is a PEFT adapter folder or a full model folder (config.json); a one-line error otherwise."""
    if is_adapter(path):
        adapter_config(path)
    elif Path(path).is_dir() and not (Path(path) / "config.json").exists():
        raise PosternError(f"{path}: neither a PEFT adapter (adapter_config.json) nor a model folder (config.json)")


def unknown_words(tokenizer: Any, texts: list[str]) -> tuple[int, int, list[str]]:
    """(words the tokenizer can only map to its unknown token, words in all, a few of them). Byte-level
    tokenizers know every word; the persona world's word-level one only the world's."""
    unk = tokenizer.unk_token_id
    words = [w for text in texts for w in text.split()]
    if unk is None or not words:
        return 0, len(words), []
    vocab = sorted(set(words))
    ids = tokenizer(vocab, add_special_tokens=False)["input_ids"]
    unknown = {w for w, w_ids in zip(vocab, ids) if unk in w_ids}
    return sum(w in unknown for w in words), len(words), sorted(unknown)[:5]


def load_model(ref: ModelRef | str, *, device: str | None = None, dtype: Any = "auto", merge: bool = True,
               require_chat_template: bool = True) -> tuple[Any, Any]:
    """(model, tokenizer) of a local folder or hub id, with `ref.adapter` on top: a PEFT adapter is merged
    in (kept as a PeftModel with merge=False); a fully fine-tuned folder replaces the base. The tokenizer
    comes from the adapter folder when it saved one (a fine-tune may carry its own chat template).
    `device`: default cuda when available, else cpu."""
    import torch
    from transformers import AutoModelForCausalLM

    ref = ModelRef(ref) if isinstance(ref, str) else ref
    if ref.api:
        raise PosternError(f"model {ref.name!r} is served by an API; it cannot be loaded locally")
    for path, what in ((ref.name, "model"), (ref.adapter, "adapter")):
        if missing_folder(path):
            raise PosternError(f"{what} {path!r}: no such folder")
    full_finetune = ref.adapter is not None and not is_adapter(ref.adapter)
    weights = ref.adapter if full_finetune else ref.name
    tokenizer_source = ref.adapter if ref.adapter and (Path(ref.adapter) / "tokenizer_config.json").exists() else ref.name
    tokenizer = load_tokenizer(tokenizer_source, require_chat_template)
    try:
        model = AutoModelForCausalLM.from_pretrained(weights, dtype=dtype)
    except (OSError, ValueError) as e:
        raise PosternError(f"could not load model {weights!r} ({e}); give a local folder or a cached hub id") from e
    if is_adapter(ref.adapter):
        from peft import PeftModel

        adapter_config(ref.adapter)
        model = PeftModel.from_pretrained(model, ref.adapter)
        if merge:
            model = model.merge_and_unload()
    model = model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return model.eval(), tokenizer


@contextmanager
def loaded(ref: ModelRef | str, **kwargs: Any) -> Iterator[tuple[Any, Any]]:
    """`load_model` as a context manager that frees the model (and the GPU's cache) on exit."""
    model, tokenizer = load_model(ref, **kwargs)
    try:
        yield model, tokenizer
    finally:
        del model
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
