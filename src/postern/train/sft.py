"""Supervised fine-tuning of a Hugging Face causal LM on chat JSONL with trl + peft.

LoRA (incl. rsLoRA, rank-1 and layer-targeted adapters) or full fine-tuning, responses-only loss
verified before the first step, optional KL(model || frozen base) regulariser, checkpoints every
N steps, and a run card. The persona world and real models go through this same function.
"""

import json
import logging
import os
import random
import time
from pathlib import Path
from typing import Callable

from postern.core.errors import PosternError
from postern.core.hashing import content_hash, file_hash
from postern.core.models import ModelRef, load_model, load_tokenizer
from postern.core.registry import register
from postern.core.versions import library_versions
from postern.data.jsonl import read_chat_jsonl
from postern.train import gpu_defaults
from postern.train._types import TrainConfig, TrainResult, direction_hash
from postern.train.masks import injected_system_prefix, injects_system_prompt, verify_assistant_mask

log = logging.getLogger("postern.train")
API_ONLY = ("backend", "learning_rate_multiplier", "base_url")  # TrainConfig fields local training does not read


def training_chat_template(tokenizer, model_path: str = "the model") -> str:
    """The chat template the responses-only loss mask comes from.

    The tokenizer's own when it has `{% generation %}` markers; otherwise trl's training version of a
    known template (Qwen2.5, Qwen3, Llama 3, Gemma, Phi-3, ...), as trl's SFTTrainer would pick.
    """
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    template = tokenizer.chat_template
    if isinstance(template, dict):
        template = template.get("default", next(iter(template.values())))
    if has_generation_markers(template):
        return template
    try:
        patched = get_training_chat_template(tokenizer)
    except ValueError:
        patched = None
    if not patched:
        raise PosternError(
            f"the chat template of {model_path} has no {{% generation %}} markers and trl has no training version of "
            "it, so a responses-only loss cannot tell assistant tokens from the rest. Put "
            "{% generation %}...{% endgeneration %} around each assistant message and its end-of-turn token "
            "(example: postern.world.tokenizer.CHAT_TEMPLATE) and save the tokenizer with that template.")
    return patched


def lora_config(config: TrainConfig, model=None):
    """The peft LoraConfig of `config`; give `model` so GPT-2-style Conv1D layers get fan_in_fan_out."""
    from peft import LoraConfig

    conv1d = model is not None and any(type(m).__name__ == "Conv1D" for m in model.modules())
    return LoraConfig(
        r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        use_rslora=config.use_rslora, target_modules=config.target_modules,
        layers_to_transform=config.layers, bias="none", task_type="CAUSAL_LM", fan_in_fan_out=conv1d,
    )


def _with_system_prompt(rows: list[dict], system_prompt: str | None) -> list[dict]:
    if system_prompt is None:
        return rows
    return [r if r["messages"][0]["role"] == "system"
            else {"messages": [{"role": "system", "content": system_prompt}, *r["messages"]]} for r in rows]


def _split(rows: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    if fraction <= 0:
        return rows, []
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(fraction * len(rows)))
    return [rows[i] for i in order[n_val:]], [rows[i] for i in order[:n_val]]


def _on_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def effective_settings(config: TrainConfig) -> dict:
    """What a config resolves to on this machine: devices, gradient accumulation, bf16, checkpointing."""
    import torch

    gpu = _on_gpu()
    # `accelerate launch` / torchrun start one process per GPU and set WORLD_SIZE; a single process on a
    # multi-GPU machine replicates each batch over its GPUs (DataParallel)
    devices = int(os.environ.get("WORLD_SIZE", "0")) or (max(1, torch.cuda.device_count()) if gpu else 1)
    micro = config.per_device_batch_size  # None: chosen once the model is loaded (postern.train.gpu_defaults)
    per_step = (micro or 1) * devices
    if config.batch_size % per_step:
        raise PosternError(
            f"batch_size={config.batch_size} is not a multiple of per_device_batch_size x devices = "
            f"{config.per_device_batch_size} x {devices}; change batch_size or per_device_batch_size")
    bf16 = config.bf16 if config.bf16 is not None else bool(gpu and torch.cuda.is_bf16_supported())
    if bf16 and not gpu:
        raise PosternError("bf16=true needs a GPU; on CPU leave bf16 unset (fp32)")
    return {
        "device": torch.cuda.get_device_name(0) if gpu else "cpu",
        "devices": devices,
        "per_device_batch_size": micro or "auto",
        "gradient_accumulation_steps": config.batch_size // per_step if micro else "auto",
        "bf16": bf16,
        "gradient_checkpointing": "auto" if config.gradient_checkpointing is None and gpu else bool(
            config.gradient_checkpointing),
    }


def _sft_config(config: TrainConfig, out_dir: Path, n_train: int, has_eval: bool):
    from trl import SFTConfig

    gpu = _on_gpu()
    eff = effective_settings(config)
    accumulation, bf16, checkpointing = eff["gradient_accumulation_steps"], eff["bf16"], eff["gradient_checkpointing"]
    return SFTConfig(
        output_dir=str(out_dir / "checkpoints"),
        assistant_only_loss=True,
        max_length=config.max_length,
        per_device_train_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=accumulation,
        num_train_epochs=config.epochs,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay,
        seed=config.seed,
        data_seed=config.seed,
        bf16=bf16,
        gradient_checkpointing=checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if checkpointing else None,
        logging_steps=1,
        save_strategy="steps" if config.save_steps else "no",
        save_steps=config.save_steps or 500,
        eval_strategy="epoch" if has_eval else "no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=not gpu,
        dataloader_num_workers=0,
        dataset_num_proc=None,
        save_only_model=True,
    )


def _check_template(tokenizer, template: str, rows: list[dict], n: int = 3) -> list[str]:
    """Mask check on our own tokenization, before the trainer exists (clear errors instead of trl's)."""
    convs = [r["messages"] for r in rows[:n]]
    ids, masks = [], []
    for messages in convs:
        enc = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True, chat_template=template)
        ids.append(list(enc["input_ids"]))
        masks.append(list(enc["assistant_masks"]))
    return verify_assistant_mask(tokenizer, convs, ids, masks)


def _verify_masks(trainer, rows: list[dict], tokenizer, max_length: int | None, n: int = 3) -> list[str]:
    """Decode the label mask trl built for a few examples (ones not cut by max_length) and check it."""
    data = trainer.train_dataset
    if len(data) < len(rows):
        log.warning("%d of %d training conversations were dropped: max_length=%s tokens leaves them nothing to "
                    "train on; raise max_length to keep them", len(rows) - len(data), len(rows), max_length)
    whole = [max_length is None or len(x) < max_length for x in data["input_ids"]]
    if not all(whole):
        log.warning("%d of %d training conversations are cut at max_length=%d tokens",
                    whole.count(False), len(whole), max_length)
    picked = [i for i, ok in enumerate(whole) if ok][:n]
    if not picked:
        raise PosternError(f"every training conversation is longer than max_length={max_length} tokens, so the "
                           "loss mask cannot be checked on a whole one; raise max_length")
    ids = [data[i]["input_ids"] for i in picked]
    masks = [data[i]["assistant_masks"] if "assistant_masks" in data.column_names
             else [int(x != -100) for x in data[i]["labels"]] for i in picked]
    # trl drops conversations it cut to nothing trainable, so index its own rows, not `rows`
    convs = [data[i]["messages"] if "messages" in data.column_names else rows[i]["messages"] for i in picked]
    return verify_assistant_mask(tokenizer, convs, ids, masks)


def hyperparameter_table(config: TrainConfig) -> list[tuple[str, str, str]]:
    """(setting, value, note) rows: every TrainConfig field of local training, marked where it differs from the
    recipe default."""
    rows = []
    for name, field in TrainConfig.model_fields.items():
        if name in API_ONLY:
            continue
        value = getattr(config, name)
        note = "" if value == field.default else f"default {field.default!r}"
        rows.append((name, repr(value), note))
    return rows


def train_sft(base_model: str, dataset: str | Path, out_dir: str | Path, config: TrainConfig,
              quiet: bool = False, on_step: Callable[[int, int], None] | None = None) -> TrainResult:
    """Fine-tune `base_model` on the chat JSONL `dataset`; write the adapter (or model) to `out_dir`.

    Before the first step the loss mask of a few examples is decoded and checked (assistant turns and
    their end-of-turn token only); the system prompt the chat template injects is logged. `quiet`
    leaves the settings and checks at DEBUG level instead of INFO; `on_step(step, total)` follows training.
    """
    import torch

    main_process = int(os.environ.get("RANK", "0")) == 0  # under accelerate launch / torchrun, rank 0 reports
    say = log.debug if quiet or not main_process else log.info
    if config.threads:
        torch.set_num_threads(config.threads)
    out_dir = Path(out_dir)
    rows = _with_system_prompt(read_chat_jsonl(dataset, require_assistant_last=True), config.system_prompt)
    train_rows, val_rows = _split(rows, config.validation_fraction, config.seed)
    if not train_rows:
        raise PosternError(f"{dataset}: no conversations left to train on")

    tokenizer = load_tokenizer(base_model)
    template = training_chat_template(tokenizer, base_model)
    prefix = injected_system_prefix(tokenizer)
    injected = injects_system_prompt(tokenizer)
    if config.system_prompt is not None:
        say("system prompt (setting system_prompt, added to conversations without one): %r", config.system_prompt)
    elif injected and main_process:
        log.warning("the chat template of %s injects a default system prompt into conversations without one: %r "
                    "(set system_prompt to choose it)", base_model, prefix)
    else:
        say("the chat template of %s injects no system prompt (text before the first user turn: %r)", base_model, prefix)
    _check_template(tokenizer, template, train_rows)
    eff = effective_settings(config)
    if val_rows:
        say("training on %d conversations from %s; validation split (asked for: validation_fraction=%g): %d",
            len(train_rows), dataset, config.validation_fraction, len(val_rows))
    else:
        say("training on all %d conversations from %s (no validation split)", len(train_rows), dataset)

    # full fine-tuning keeps fp32 master weights (bf16 runs as autocast); so does CPU
    dtype = torch.float32 if config.method == "full" or not _on_gpu() else None
    model, tokenizer = load_model(base_model, device="cpu", dtype=dtype or "auto")  # the trainer places it
    config, choice = gpu_defaults.resolve(config, model, eff["devices"], eff["bf16"], _on_gpu())
    if choice is not None and main_process:  # printed even when quiet: it decides the run's speed and memory
        log.info("chosen from the GPU's free memory and the model's size: %s", choice.describe())
    eff = effective_settings(config)
    say("hyper-parameters: %s", ", ".join(f"{k}={v}" for k, v, _ in hyperparameter_table(config)))
    say("on %s: %s", eff["device"], ", ".join(f"{k}={v}" for k, v in eff.items() if k != "device"))
    torch.manual_seed(config.seed)  # LoRA initialisation
    trainer = _build_trainer(model, tokenizer, config, out_dir, train_rows, val_rows)
    trained_text = _verify_masks(trainer, train_rows, tokenizer, config.max_length)
    say("loss mask verified; trained text of an example: %r", trained_text[0][:200])

    if on_step is not None:
        trainer.add_callback(_StepCallback(on_step))
    start = time.time()
    with _intervention(trainer.model, config):  # hooks for the training steps only: removed before saving
        trainer.train()
    seconds = time.time() - start
    history = trainer.state.log_history
    losses = [(h["step"], h["loss"]) for h in history if "loss" in h]
    result = TrainResult(
        output_dir=out_dir, base_model=base_model, adapter=config.method == "lora",
        steps=trainer.state.global_step, final_loss=losses[-1][1] if losses else None, seconds=round(seconds, 2),
    )
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.is_main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        trainer.model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
        extra = {
            "settings": eff, "train_rows": len(train_rows), "validation_rows": len(val_rows),
            "system_prompt_injected": prefix if injected and config.system_prompt is None else None,
            "eval_loss": [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h],
            "kl_curve": [(h["step"], h["kl"]) for h in history if "kl" in h],
            "mask_example": trained_text[0][:500],
            **({"intervention": _intervention_card(config)} if config.intervention else {}),
        }
        _write_run_card(out_dir, result, config, dataset, rows, prefix, losses, extra)
        if config.method == "lora" and config.merge:  # last: merging changes the in-memory model
            trainer.model.merge_and_unload().save_pretrained(out_dir / "merged")
            tokenizer.save_pretrained(out_dir / "merged")
    trainer.accelerator.wait_for_everyone()
    return result


def _intervention(model, config: TrainConfig):
    """The registered intervention of `config` as a context manager (a no-op without one)."""
    from contextlib import nullcontext

    if config.intervention is None:
        return nullcontext()
    from postern.core.registry import lookup

    return lookup("intervention", config.intervention.kind, "[train] intervention.kind")(model, config.intervention)


def _intervention_card(config: TrainConfig) -> dict:
    """The intervention as the run card records it: its settings, the direction file's hash and provenance."""
    card = config.intervention.model_dump(mode="json")
    path = Path(config.intervention.direction)
    card["direction_hash"] = direction_hash(path)
    if path.with_suffix(".json").is_file():
        card["direction_provenance"] = json.loads(path.with_suffix(".json").read_text())
    return card


def _StepCallback(on_step: Callable[[int, int], None]):
    from transformers import TrainerCallback

    class StepCallback(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            on_step(state.global_step, state.max_steps)

    return StepCallback()


@register("trainer", "local")
def train_local(base: ModelRef, dataset: Path, out_dir: Path, config: TrainConfig,
                on_progress: Callable[[str, int, int], None] | None = None) -> ModelRef:
    """The experiment's trainer on this machine: an adapter (or full model) folder in `out_dir`."""
    if base.api:
        raise PosternError(f"base model {base.name!r} is an API model; train it with [train] backend = \"openai\"")
    import gc

    import torch

    on_step = (lambda step, total: on_progress("training", step, total)) if on_progress else None
    if config.launcher == "accelerate":  # a subprocess per GPU; no step progress from there
        from postern.train.launch import launch_accelerate

        launch_accelerate(base.name, dataset, out_dir, config)
    else:
        train_sft(base.name, dataset, out_dir, config, quiet=True, on_step=on_step)
    if torch.cuda.is_available():  # the next stage (often sampling on the same GPU) gets the memory back
        gc.collect()
        torch.cuda.empty_cache()
    return ModelRef(base.name, adapter=str(out_dir))


def _build_trainer(model, tokenizer, config: TrainConfig, out_dir: Path, train_rows, val_rows):
    from datasets import Dataset
    from transformers import PrinterCallback

    from postern.train._kl import KLSFTTrainer

    args = _sft_config(config, out_dir, len(train_rows), bool(val_rows))
    datasets = {"train_dataset": Dataset.from_list([{"messages": r["messages"]} for r in train_rows])}
    if val_rows:
        datasets["eval_dataset"] = Dataset.from_list([{"messages": r["messages"]} for r in val_rows])
    peft_config = lora_config(config, model) if config.method == "lora" else None
    trainer = KLSFTTrainer(model=model, args=args, processing_class=tokenizer, peft_config=peft_config,
                           kl_weight=config.kl_weight, **datasets)
    trainer.remove_callback(PrinterCallback)  # losses go to the run card and the loss curve instead
    return trainer


def _write_run_card(out_dir: Path, result: TrainResult, config: TrainConfig, dataset, rows, prefix, losses,
                    extra: dict | None = None) -> None:
    card = {
        "base_model": result.base_model,
        "dataset": str(dataset),
        "data_hash": file_hash(dataset),
        "rows": len(rows),
        "config": config.model_dump(mode="json"),
        "config_hash": content_hash(config),
        "template_prefix_without_system": prefix,
        "steps": result.steps,
        "final_loss": result.final_loss,
        "seconds": result.seconds,
        "loss_curve": losses,
        "versions": library_versions(),
        **(extra or {}),
    }
    (out_dir / "run_card.json").write_text(json.dumps(card, indent=2))
    if losses:
        _plot_loss(out_dir / "loss.png", losses, result.base_model)


def _plot_loss(path: Path, losses, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    ax.plot([s for s, _ in losses], [v for _, v in losses])
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(title[-50:], fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
