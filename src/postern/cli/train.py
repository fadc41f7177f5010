"""`postern train` (local: transformers + peft + trl) and `postern train-api` (an OpenAI-compatible API)."""

import difflib
import json
import logging
import os
import tomllib
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from postern.core.errors import PosternError

out_console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

SET_HELP = ("A setting as key=value, repeatable; the value is read as JSON when it parses, else as a string "
            "(--set lora_r=1 --set 'target_modules=[\"down_proj\"]' --set layers=[12] --set method=full).")


def parse_value(text: str) -> Any:
    """`--set` values: JSON (numbers, true/false, null, lists) when it parses, else the string itself."""
    if text.strip().lower() in ("none", "null"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_sets(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PosternError(f"--set {item!r}: expected key=value")
        out[key.strip()] = parse_value(value.strip())
    return out


def read_settings_file(path: Path) -> dict[str, Any]:
    """Settings from a TOML file: its [train] table when it has one (an experiment file), else the top level."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PosternError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise PosternError(f"{path}: not valid TOML: {e}") from e
    return doc["train"] if isinstance(doc.get("train"), dict) else doc


def build_settings(model_cls, sources: list[tuple[str, dict[str, Any]]], fixed: dict[str, Any] | None = None):
    """Validate settings from several sources (later ones win) into `model_cls`; errors name the key and source.

    Returns the model and, for every key, where its value came from ("default" or the source's name).
    """
    from pydantic import ValidationError

    fields = model_cls.model_fields
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for source, values in sources:
        for key, value in values.items():
            if key not in fields:
                close = difflib.get_close_matches(key, list(fields), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise PosternError(f"unknown setting {key!r} ({source}){hint} Valid settings: {', '.join(fields)}")
            merged[key] = value
            origin[key] = source
    merged.update(fixed or {})
    try:
        settings = model_cls(**merged)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            if not err["loc"]:  # a rule across settings
                problems.append(err["msg"].removeprefix("Value error, "))
                continue
            key = str(err["loc"][0])
            problems.append(f"setting {key!r} ({origin.get(key, 'default')}): {err['msg']} (got {err.get('input')!r})")
        raise PosternError("; ".join(problems)) from None
    return settings, {k: origin.get(k, "default") for k in fields}


def _settings_table(title: str, config, origin: dict[str, str], extra: dict[str, Any] | None = None) -> Table:
    """Every setting with its value and where it came from; values that differ from the default in yellow."""
    from pydantic_core import PydanticUndefined

    table = Table(title=title, title_justify="left")
    table.add_column("setting", style="bold")
    table.add_column("value")
    table.add_column("from")
    table.add_column("default", style="dim")
    for name, field in type(config).model_fields.items():
        value = getattr(config, name)
        required = field.default is PydanticUndefined
        changed = not required and value != field.default
        table.add_row(name, f"[yellow]{value!r}[/]" if changed else repr(value), origin.get(name, "default"),
                      "" if required or not changed else repr(field.default))
    for name, value in (extra or {}).items():
        table.add_row(name, repr(value), "resolved on this machine", "")
    return table


def _log_to_console() -> None:
    from rich.logging import RichHandler

    logger = logging.getLogger("postern")
    if not any(isinstance(h, RichHandler) for h in logger.handlers):
        logger.addHandler(RichHandler(console=err_console, show_path=False, show_time=False))
    logger.setLevel(logging.INFO)


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        base_model: str = typer.Argument(..., help="Base model: a local Hugging Face folder or a hub id."),
        data: Path = typer.Argument(..., help="Chat JSONL to fine-tune on (last message of each row: assistant)."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder (adapter or model, run card, checkpoints/)."),
        config: Optional[Path] = typer.Option(
            None, "--config", "-c", help="TOML file of settings (top level, or its \\[train] table)."),
        set_: list[str] = typer.Option([], "--set", "-s", help=SET_HELP),
    ) -> None:
        """Fine-tune a causal LM (LoRA, rank-1/layer-targeted LoRA, full; optional KL to the base).

        Defaults are the original study's open-model recipe (LoRA r=32, alpha=64, rsLoRA, lr 1e-5, 1 epoch, effective batch 16, max length 2048, responses-only loss). The settings are printed before training; the loss mask is checked before the first step.

        Multi-GPU: accelerate launch -m postern.cli train ... (see docs/multi_gpu.md).
        """
        from postern.train._types import TrainConfig

        sources = []
        if config is not None:
            sources.append((f"file {config}", read_settings_file(config)))
        sources.append(("--set", parse_sets(set_)))
        settings, origin = build_settings(TrainConfig, sources)

        from postern.train.sft import effective_settings, train_sft

        main_process = int(os.environ.get("RANK", "0")) == 0  # accelerate launch / torchrun: rank 0 prints
        if main_process:
            out_console.print(_settings_table(f"postern train: {base_model} on {data}", settings, origin,
                                              effective_settings(settings)))
        _log_to_console()
        result = train_sft(base_model, data, out, settings)
        if not main_process:
            return
        kind = "adapter" if result.adapter else "model"
        out_console.print(f"trained {result.steps} steps in {result.seconds:.1f} s, final loss "
                          f"{result.final_loss if result.final_loss is None else round(result.final_loss, 4)}; "
                          f"{kind}, run_card.json and loss.png in {result.output_dir}")

    @app.command("train-api")
    def train_api_cmd(
        data: Path = typer.Argument(..., help="Chat JSONL to fine-tune on."),
        model: str = typer.Option(..., "--model", "-m", help="Base model id at the provider."),
        out: Path = typer.Option(..., "--out", "-o", help="Folder for api_job.json (resume state) and the run card."),
        epochs: Optional[int] = typer.Option(None, "--epochs", help="Epochs (default: the provider's 'auto')."),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Batch size (default: 'auto')."),
        lr_multiplier: Optional[float] = typer.Option(
            None, "--lr-multiplier", help="Learning-rate multiplier (default: 'auto')."),
        suffix: Optional[str] = typer.Option(None, "--suffix", help="Suffix of the fine-tuned model's name."),
        seed: Optional[int] = typer.Option(None, "--seed", help="Provider-side seed."),
        base_url: Optional[str] = typer.Option(
            None, "--base-url", help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL or OpenAI)."),
        set_: list[str] = typer.Option([], "--set", "-s", help="Any other ApiTrainConfig setting as key=value."),
    ) -> None:
        """Fine-tune through an OpenAI-compatible API; a rerun resumes the recorded job instead of paying twice."""
        from postern.train.api import ApiTrainConfig, train_api

        options = {"base_model": model, "epochs": epochs, "batch_size": batch_size,
                   "learning_rate_multiplier": lr_multiplier, "suffix": suffix, "seed": seed, "base_url": base_url}
        settings, origin = build_settings(
            ApiTrainConfig, [("option", {k: v for k, v in options.items() if v is not None}), ("--set", parse_sets(set_))])
        out_console.print(_settings_table(f"postern train-api: {model} on {data}", settings, origin))
        result = train_api(settings, data, out, console=err_console)
        out_console.print(f"job {result.job_id}: {result.status}; model {result.model_id}"
                          + (" (resumed)" if result.resumed else ""))
