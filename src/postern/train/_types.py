"""Training settings and results. Defaults follow the original study's open-model recipe."""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class InterventionConfig(BaseModel):
    """A forward hook on the decoder blocks during training only (`postern.interp.defences`): `ablate`
    projects the direction's span out of the residual stream (CAFT), `steer` adds scale x direction
    (preventative steering). The fine-tune is evaluated without it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field(description='a registered intervention: "ablate" (CAFT) or "steer" (preventative)')
    direction: str = Field("base", description='"base" (mean difference of the base model\'s own misaligned and '
                           'aligned answers), "condition:NAME" (that condition\'s seed-matched fine-tune), "random" '
                           'or "random:SOURCE" (norm-matched random directions, seeded by the job\'s seed; SOURCE '
                           'default base) or a saved direction file (.pt: [layers, d] or [layers, k, d])')
    layers: list[int] | None = Field(None, description="decoder layers hooked (None: all)")
    scale: float = Field(1.0, description="steer: multiple of the direction added (0: no change)")
    positions: Literal["answer", "prompt", "all", "last_prompt"] = Field(
        "answer", description="tokens whose activations the direction is the mean difference of")
    samples: int | None = Field(None, ge=1, description="answers per question the direction is extracted from "
                                "(None: the run's own evaluation answers of that model)")

    @field_validator("layers")
    @classmethod
    def _distinct_layers(cls, layers):
        if layers is not None and (not layers or min(layers) < 0 or len(set(layers)) < len(layers)):
            raise ValueError(f"give distinct layer indices >= 0 (or leave layers out: all), not {layers}")
        return layers

    @field_validator("scale")
    @classmethod
    def _scale_is_for_steer(cls, scale, info):
        if info.data.get("kind") == "ablate" and scale != 1.0:
            raise ValueError('ablate projects the direction out and has no scale; remove scale or use kind = "steer"')
        return scale

    @field_validator("direction")
    @classmethod
    def _named_condition(cls, direction):
        if direction.removeprefix("random:") == "condition:":
            raise ValueError('"condition:" needs a condition name, e.g. "condition:insecure"')
        return direction


HOW_TRAINED = {"launcher", "accelerate_config"}  # how a model is trained, not what: not part of its cache key


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str = Field("local", description='local (trl + peft on this machine) or openai (an API fine-tuning job)')
    method: Literal["lora", "full"] = Field("lora", description="LoRA adapter or full fine-tuning")
    lora_r: int = Field(32, ge=1, description="LoRA rank (1 for rank-1 adapters)")
    lora_alpha: float = Field(64, gt=0, description="LoRA scaling numerator")
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    use_rslora: bool = Field(True, description="scale by alpha/sqrt(r) instead of alpha/r")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", description='module names to adapt, e.g. ["down_proj"] for a rank-1 down_proj adapter')
    layers: list[int] | None = Field(None, description="adapt only these decoder layers (None: all)")
    learning_rate: float = Field(1e-5, gt=0)
    epochs: float = Field(1.0, gt=0)
    batch_size: int = Field(16, ge=1, description="effective batch size (per-device batch x accumulation x devices)")
    per_device_batch_size: int | None = Field(None, ge=1, description="micro-batch per device (None: on a GPU, the "
                                              "largest that fits its free memory, see postern.train.gpu_defaults; "
                                              "2 on CPU)")
    max_length: int = Field(2048, ge=8)
    warmup_steps: int = Field(5, ge=0)
    weight_decay: float = Field(0.01, ge=0)
    lr_scheduler: str = "linear"
    seed: int = Field(0, description="seed for initialisation and data order")
    kl_weight: float = Field(0.0, ge=0, description="lambda of KL(model || frozen base) on assistant tokens; 0 = plain SFT")
    save_steps: int | None = Field(None, ge=1, description="save a checkpoint every N optimizer steps")
    validation_fraction: float = Field(0.0, ge=0, lt=1, description="explicit validation split; 0 = none (no hidden hold-out)")
    system_prompt: str | None = Field(
        None, description="system message added to conversations without one (overrides a template's default)")
    merge: bool = Field(False, description="also save LoRA weights merged into the base model")
    bf16: bool | None = Field(None, description="None: bf16 on a GPU that supports it, fp32 on CPU")
    gradient_checkpointing: bool | None = Field(None, description="None: on a GPU only when the micro-batch would "
                                                "not fit without it; off on CPU")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (None: torch default)")
    learning_rate_multiplier: float | None = Field(None, gt=0, description="openai backend: the job's multiplier "
                                                   "(None: the provider's default); learning_rate is not sent")
    base_url: str | None = Field(None, description="openai backend: the fine-tuning endpoint (default: OpenAI's)")
    intervention: InterventionConfig | None = Field(None, description="a hook during training: CAFT (ablate) or "
                                                    "preventative steering (steer); see InterventionConfig")
    launcher: Literal["python", "accelerate"] = Field("python", description='local backend: "python" trains in the '
                                                      'stage\'s process; "accelerate" runs `accelerate launch` (one '
                                                      "process per GPU, DDP or FSDP) as a subprocess")
    accelerate_config: str | None = Field(None, description="launcher = \"accelerate\": the --config_file it gets "
                                                            "(e.g. examples/accelerate_multi_gpu.yaml)")

    @model_validator(mode="after")
    def _lora_only_settings(self):
        if self.method == "full" and self.layers is not None:
            raise ValueError("layers selects the decoder layers of a LoRA adapter; with method='full' every layer "
                             "is trained (use method='lora' to train chosen layers)")
        if self.accelerate_config is not None and self.launcher != "accelerate":
            raise ValueError('accelerate_config is read by launcher = "accelerate"; set launcher too')
        if self.method == "full" and self.merge:
            raise ValueError("merge folds a LoRA adapter into the base; method='full' already saves whole weights")
        return self

    def identity(self) -> dict:
        """The settings a trained model depends on, for its cache key: not how it is launched (HOW_TRAINED); a
        direction file counts by its content, and a config without an intervention hashes as it did before
        interventions existed."""
        out = self.model_dump(mode="json", exclude=HOW_TRAINED | ({"intervention"} if self.intervention is None else set()))
        if self.intervention is not None and Path(self.intervention.direction).is_file():
            out["intervention"]["direction"] = {"hash": direction_hash(self.intervention.direction)}
        return out


def direction_hash(path: str | Path) -> str:
    """Hash of a direction file's tensor (values, shape, dtype), not of its bytes: torch.save writes the file's
    name into the archive, so the same direction saved under two names must still hash the same."""
    import hashlib

    import torch

    tensor = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(tensor, torch.Tensor):
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]  # not a direction: the trainer says so
    head = f"{list(tensor.shape)}:{tensor.dtype}".encode()
    values = tensor.detach().to(torch.float64).contiguous().numpy().tobytes()  # any dtype, bf16 included
    return hashlib.sha256(head + values).hexdigest()[:16]


class TrainResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    output_dir: Path
    base_model: str
    adapter: bool
    steps: int
    final_loss: float | None
    seconds: float
