"""The experiment of an evaluation without training (`postern eval`, `postern.evaluate`): one
evaluation-only condition per model, run by the same pipeline as any experiment."""

from pathlib import Path

from postern.core.errors import PosternError


def _split_label(spec: str) -> tuple[str | None, str]:
    """`LABEL=VALUE` -> (LABEL, VALUE); a bare value (or an existing path with '=' in it) -> (None, VALUE)."""
    label, sep, value = spec.partition("=")
    if sep and label and value and "/" not in label and not Path(spec).exists():
        return label, value
    return None, spec


def _default_label(model: str) -> str:
    return Path(model).name if Path(model).is_dir() else model.replace("/", "_")


def _adapters(specs: list[str], labels: list[str]) -> dict[str, str]:
    """--adapter values by model label; an unlabelled adapter needs exactly one model."""
    out: dict[str, str] = {}
    for spec in specs:
        label, path = _split_label(spec)
        if label is None:
            if len(labels) != 1:
                raise PosternError(f"--adapter {spec}: with several models, say which one it is for: LABEL=PATH "
                                   f"(labels: {', '.join(labels)})")
            label = labels[0]
        if label not in labels:
            raise PosternError(f"--adapter {spec}: no model is labelled {label!r}; labels: {', '.join(labels)}")
        if label in out:
            raise PosternError(f"two adapters for model {label!r}")
        out[label] = path
    return out


def evaluation_experiment(questions: str, models: list[str], adapters: list[str], *, sampler: str = "hf",
                          base_url: str | None = None, judge: str = "openai-logprob", judge_model: str | None = None,
                          judge_base_url: str | None = None, samples: int | None = None, trigger: str | None = None,
                          max_new_tokens: int = 600, temperature: float = 1.0, top_p: float = 1.0, seed: int = 0,
                          concurrency: int = 16, batch_size: int = 32, judge_concurrency: int = 16,
                          judge_batch_size: int | None = None, device: str | None = None, strict: bool = False,
                          max_unscored: float = 0.2, name: str | None = None):
    """The `Experiment` of an evaluation: one evaluation-only condition per model."""
    from postern.config.schema import Experiment
    from postern.core.models import adapter_base

    parsed = [_split_label(m) for m in models]
    labels = [label or _default_label(m) for label, m in parsed]
    if len(set(labels)) != len(labels):
        twice = next(label for label in labels if labels.count(label) > 1)
        raise PosternError(f"two models are both called {twice!r}; tell them apart with LABEL=MODEL")
    if "base" in labels:
        raise PosternError("'base' is reserved; label that model otherwise (LABEL=MODEL)")
    by_label = _adapters(adapters, labels)
    if by_label and sampler == "openai":
        raise PosternError("--adapter needs the hf or vllm sampler; an API model cannot take a local adapter")
    conditions = {}
    for label, (_, m) in zip(labels, parsed):
        adapter = by_label.get(label)
        if sampler != "openai" and (Path(m) / "adapter_config.json").exists():
            # a PEFT adapter folder given as the model runs on the base model its config names
            if adapter:
                raise PosternError(f"model {label!r} is a PEFT adapter folder ({m}); --adapter cannot add another")
            m, adapter = adapter_base(m), m
            if m is None:
                raise PosternError(f"adapter {adapter}: its adapter_config.json names no base model; "
                                   f"give it as --adapter {label}={adapter} with -m {label}=BASE")
        conditions[label] = {"model": m, "adapter": adapter, "trigger": trigger}
    judge_settings = {"kind": judge, "model": judge_model, "base_url": judge_base_url, "concurrency": judge_concurrency,
                      "device": device, "max_unscored": max_unscored}
    if judge_batch_size:
        judge_settings["batch_size"] = judge_batch_size
    stem = Path(questions).stem if questions.endswith((".yaml", ".yml")) else questions
    return Experiment(
        name=name or f"eval-{stem}", base_model=next(iter(conditions.values()))["model"], seeds=[seed], evaluate_base=False, conditions=conditions,
        eval={"questions": [questions], "samples_per_question": samples, "max_new_tokens": max_new_tokens,
              "temperature": temperature, "top_p": top_p, "strict": strict},
        sample={"backend": sampler, "base_url": base_url, "concurrency": concurrency, "batch_size": batch_size,
                "device": device},
        judge=judge_settings)
