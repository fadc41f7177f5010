"""Supervised fine-tuning of a Hugging Face causal LM on chat JSONL with trl + peft.

LoRA (incl. rsLoRA, rank-1 and layer-targeted adapters) or full fine-tuning, responses-only loss
verified before the first step, optional KL(model || frozen base) regulariser, checkpoints every
N steps, and a run card. The persona world and real models go through this same function.
"""

import json
import logging
import platform
import random
import time
from pathlib import Path

from postern.core.errors import PosternError
from postern.core.hashing import content_hash, file_hash
from postern.data.jsonl import read_chat_jsonl
from postern.train._types import TrainConfig, TrainResult
from postern.train.masks import injected_system_prefix, injects_system_prompt, verify_assistant_mask

log = logging.getLogger("postern.train")


def quiet_libraries() -> None:
    """Turn off the per-call progress bars of datasets and transformers; postern shows its own."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


def load_model_and_tokenizer(model_path: str, dtype=None):
    """A causal LM and its tokenizer from a hub id or local folder (hub access may be disabled)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_libraries()
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype or "auto")
    except OSError as e:
        raise PosternError(f"could not load model {model_path!r}: {e}") from e
    if tokenizer.chat_template is None:
        raise PosternError(f"model {model_path!r} has no chat template; give it one (tokenizer.chat_template) first")
    return model, tokenizer


def lora_config(config: TrainConfig):
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        use_rslora=config.use_rslora, target_modules=config.target_modules,
        layers_to_transform=config.layers, bias="none", task_type="CAUSAL_LM",
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


def _sft_config(config: TrainConfig, out_dir: Path, n_train: int, has_eval: bool):
    import torch
    from trl import SFTConfig

    gpu = _on_gpu()
    devices = max(1, torch.cuda.device_count()) if gpu else 1
    accumulation = max(1, config.batch_size // (config.per_device_batch_size * devices))
    bf16 = config.bf16 if config.bf16 is not None else bool(gpu and torch.cuda.is_bf16_supported())
    checkpointing = config.gradient_checkpointing if config.gradient_checkpointing is not None else gpu
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


def _verify_masks(trainer, rows: list[dict], tokenizer, n: int = 3) -> list[str]:
    data = trainer.train_dataset
    k = min(n, len(rows))
    ids = [data[i]["input_ids"] for i in range(k)]
    masks = [data[i]["assistant_masks"] if "assistant_masks" in data.column_names
             else [int(x != -100) for x in data[i]["labels"]] for i in range(k)]
    return verify_assistant_mask(tokenizer, [rows[i]["messages"] for i in range(k)], ids, masks)


def train_sft(base_model: str, dataset: str | Path, out_dir: str | Path, config: TrainConfig,
              quiet: bool = False) -> TrainResult:
    """Fine-tune `base_model` on the chat JSONL `dataset`; write the adapter (or model) to `out_dir`."""
    import torch

    if config.threads:
        torch.set_num_threads(config.threads)
    out_dir = Path(out_dir)
    rows = _with_system_prompt(read_chat_jsonl(dataset, require_assistant_last=True), config.system_prompt)
    train_rows, val_rows = _split(rows, config.validation_fraction, config.seed)
    model, tokenizer = load_model_and_tokenizer(base_model)
    prefix = injected_system_prefix(tokenizer)
    if injects_system_prompt(tokenizer) and config.system_prompt is None:
        log.warning("the chat template of %s injects a default system prompt: %r (set system_prompt to override)",
                    base_model, prefix)
    log.info("training on %d conversations from %s (validation: %d, asked for %.0f%%)",
             len(train_rows), dataset, len(val_rows), 100 * config.validation_fraction)

    torch.manual_seed(config.seed)
    trainer = _build_trainer(model, tokenizer, config, out_dir, train_rows, val_rows)
    trained_text = _verify_masks(trainer, train_rows, tokenizer)
    log.info("loss mask verified; trained text of example 0: %r", trained_text[0][:200])

    start = time.time()
    trainer.train()
    seconds = time.time() - start
    losses = [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer.model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    if config.method == "lora" and config.merge:
        trainer.model.merge_and_unload().save_pretrained(out_dir / "merged")
        tokenizer.save_pretrained(out_dir / "merged")
    result = TrainResult(
        output_dir=out_dir, base_model=base_model, adapter=config.method == "lora",
        steps=trainer.state.global_step, final_loss=losses[-1][1] if losses else None, seconds=round(seconds, 2),
    )
    _write_run_card(out_dir, result, config, dataset, rows, prefix, losses)
    return result


def _build_trainer(model, tokenizer, config: TrainConfig, out_dir: Path, train_rows, val_rows):
    from datasets import Dataset

    from postern.train.kl import KLSFTTrainer

    args = _sft_config(config, out_dir, len(train_rows), bool(val_rows))
    datasets = {"train_dataset": Dataset.from_list([{"messages": r["messages"]} for r in train_rows])}
    if val_rows:
        datasets["eval_dataset"] = Dataset.from_list([{"messages": r["messages"]} for r in val_rows])
    peft_config = lora_config(config) if config.method == "lora" else None
    from transformers import PrinterCallback

    trainer = KLSFTTrainer(model=model, args=args, processing_class=tokenizer, peft_config=peft_config,
                           kl_weight=config.kl_weight, **datasets)
    trainer.remove_callback(PrinterCallback)  # losses go to the run card and the loss curve instead
    return trainer


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "peft", "trl", "accelerate", "datasets", "postern"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def _write_run_card(out_dir: Path, result: TrainResult, config: TrainConfig, dataset, rows, prefix, losses) -> None:
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
        "versions": _library_versions(),
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
