"""Fine-tuning: local (transformers + peft + trl: LoRA, rank-1/layer-targeted LoRA, full, KL to the base)
and through an OpenAI-compatible API.

Names load on first use, so `import postern.train` does not import torch, trl or openai.
"""

from importlib import import_module
from typing import TYPE_CHECKING

_EXPORTS = {
    "TrainConfig": "postern.train._types",
    "TrainResult": "postern.train._types",
    "train_sft": "postern.train.sft",
    "training_chat_template": "postern.train.sft",
    "effective_settings": "postern.train.sft",
    "lora_config": "postern.train.sft",
    "KLSFTTrainer": "postern.train._kl",
    "verify_assistant_mask": "postern.train.masks",
    "injected_system_prefix": "postern.train.masks",
    "injects_system_prompt": "postern.train.masks",
    "ApiTrainConfig": "postern.train.api",
    "ApiTrainResult": "postern.train.api",
    "train_api": "postern.train.api",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from postern.train._types import TrainConfig, TrainResult
    from postern.train.api import ApiTrainConfig, ApiTrainResult, train_api
    from postern.train._kl import KLSFTTrainer
    from postern.train.masks import injected_system_prefix, injects_system_prompt, verify_assistant_mask
    from postern.train.sft import effective_settings, lora_config, train_sft, training_chat_template


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'postern.train' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
