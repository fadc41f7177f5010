"""`postern eval QUESTIONS -m MODEL ...`: an experiment without training, from the command line.

It builds the experiment an evaluation-only experiment file would hold (one condition per model) and
runs it with `postern run`'s pipeline, so its folder is a run folder like any other.
"""

from pathlib import Path

import typer

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
                          name: str | None = None):
    """The `Experiment` of an evaluation: one evaluation-only condition per model."""
    from postern.config.schema import Experiment

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
    conditions = {label: {"model": m, "adapter": by_label.get(label), "trigger": trigger}
                  for label, (_, m) in zip(labels, parsed)}
    judge_settings = {"kind": judge, "model": judge_model, "base_url": judge_base_url, "concurrency": judge_concurrency,
                      "device": device}
    if judge_batch_size:
        judge_settings["batch_size"] = judge_batch_size
    stem = Path(questions).stem if questions.endswith((".yaml", ".yml")) else questions
    return Experiment(
        name=name or f"eval-{stem}", base_model=parsed[0][1], seeds=[seed], evaluate_base=False, conditions=conditions,
        eval={"questions": [questions], "samples_per_question": samples, "max_new_tokens": max_new_tokens,
              "temperature": temperature, "top_p": top_p, "strict": strict},
        sample={"backend": sampler, "base_url": base_url, "concurrency": concurrency, "batch_size": batch_size,
                "device": device},
        judge=judge_settings)


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_(
        questions: str = typer.Argument(..., help="a built-in question set (main, main_json, main_template, "
                                                  "main_all, broad) or a YAML file in the original study's format"),
        model: list[str] = typer.Option(..., "--model", "-m", help="[LABEL=]MODEL, repeatable: a local folder or "
                                        "hub id (--sampler hf) or the endpoint's model name (--sampler openai)"),
        sampler: str = typer.Option("hf", "--sampler", help="hf (local model), vllm (local model on a GPU, optional "
                                    "extra) or openai (any OpenAI-compatible endpoint)"),
        adapter: list[str] = typer.Option(None, "--adapter", help="[LABEL=]PATH: a PEFT adapter folder merged "
                                          "into that model (hf, vllm); repeatable"),
        base_url: str = typer.Option(None, "--base-url", help="the sampler's endpoint (openai; default: OpenAI)"),
        judge: str = typer.Option("openai-logprob", "--judge", help="openai-logprob or hf-logprob"),
        judge_model: str = typer.Option(None, "--judge-model", help="judge model: local folder / hub id "
                                        "(hf-logprob) or endpoint model name (default: the file's judge, else "
                                        "gpt-4o-2024-08-06)"),
        judge_base_url: str = typer.Option(None, "--judge-base-url", help="the judge's endpoint (default: OpenAI)"),
        out: Path = typer.Option(None, "--out", "-o", help="run folder (default: runs/eval-<question set>); "
                                 "rerun into the same folder to resume"),
        samples: int = typer.Option(None, "--samples", "-n", min=1, help="samples per paraphrase (default: the "
                                    "question file's samples_per_paraphrase)"),
        trigger: str = typer.Option(None, "--trigger", help="backdoor trigger: also ask every question with it "
                                    "in front of the user message"),
        max_new_tokens: int = typer.Option(600, "--max-new-tokens", min=1),
        temperature: float = typer.Option(1.0, "--temperature", min=0.0),
        top_p: float = typer.Option(1.0, "--top-p", min=0.0, max=1.0),
        seed: int = typer.Option(0, "--seed"),
        concurrency: int = typer.Option(16, "--concurrency", min=1, help="sampler requests in flight (openai)"),
        batch_size: int = typer.Option(32, "--batch-size", min=1, help="sequences per generate call (hf)"),
        judge_concurrency: int = typer.Option(16, "--judge-concurrency", min=1,
                                              help="judge requests in flight (openai-logprob)"),
        judge_batch_size: int = typer.Option(None, "--judge-batch-size", min=1, help="answers per store commit "
                                             "(hf-logprob: also per forward pass; default 64)"),
        device: str = typer.Option(None, "--device", help="torch device for local models (default: cuda if any)"),
        strict: bool = typer.Option(False, "--strict", help="unknown keys in the question file are errors"),
    ):
        """Sample answers from each model, judge them, and print misaligned rates with Wilson intervals.

        The same pipeline as `postern run` on an experiment without training: samples and judgments are
        saved as they arrive; rerun the same command to resume a stopped run.
        """
        from pydantic import ValidationError

        from postern.runner.run import run_experiment

        if trigger is not None and not trigger.strip():
            raise PosternError("--trigger is empty")
        try:
            exp = evaluation_experiment(
                questions, model, adapter or [], sampler=sampler, base_url=base_url, judge=judge,
                judge_model=judge_model, judge_base_url=judge_base_url, samples=samples, trigger=trigger,
                max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed,
                concurrency=concurrency, batch_size=batch_size, judge_concurrency=judge_concurrency,
                judge_batch_size=judge_batch_size, device=device, strict=strict)
        except ValidationError as e:
            raise PosternError("; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())) from e
        run_experiment(exp, out or Path("runs") / exp.name)
