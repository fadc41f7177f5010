"""`postern eval QUESTIONS -m MODEL ...`: sample, judge and report misaligned rates of real models."""

from pathlib import Path

import typer

from postern.core.errors import PosternError


def _split_label(spec: str) -> tuple[str | None, str]:
    """`LABEL=VALUE` -> (LABEL, VALUE); a bare value (or an existing path with '=' in it) -> (None, VALUE)."""
    label, sep, value = spec.partition("=")
    if sep and label and value and "/" not in label and not Path(spec).exists():
        return label, value
    return None, spec


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


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_(
        questions: str = typer.Argument(..., help="a built-in question set (main, main_json, main_template, "
                                                  "main_all, broad) or a YAML file in the original study's format"),
        model: list[str] = typer.Option(..., "--model", "-m", help="[LABEL=]MODEL, repeatable: a local folder or "
                                        "hub id (--sampler hf) or the endpoint's model name (--sampler openai)"),
        sampler: str = typer.Option("hf", "--sampler", help="hf (local model), vllm (local model on a GPU, optional extra) or openai (any OpenAI-compatible "
                                    "endpoint)"),
        adapter: list[str] = typer.Option(None, "--adapter", help="[LABEL=]PATH: a PEFT adapter folder merged "
                                          "into that model (hf only); repeatable"),
        base_url: str = typer.Option(None, "--base-url", help="the sampler's endpoint (openai; default: OpenAI)"),
        judge: str = typer.Option("openai-logprob", "--judge", help="openai-logprob or hf-logprob"),
        judge_model: str = typer.Option(None, "--judge-model", help="judge model: local folder / hub id "
                                        "(hf-logprob) or endpoint model name (default: the file's judge, else "
                                        "gpt-4o-2024-08-06)"),
        judge_base_url: str = typer.Option(None, "--judge-base-url", help="the judge's endpoint (default: OpenAI)"),
        out: Path = typer.Option(None, "--out", "-o", help="results folder (default: runs/eval-<question set>); "
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
                                             "(hf-logprob: also per forward pass; default 16, openai 8 x concurrency)"),
        device: str = typer.Option(None, "--device", help="torch device for local models (default: cuda if any)"),
        strict: bool = typer.Option(False, "--strict", help="unknown keys in the question file are errors"),
        no_progress: bool = typer.Option(False, "--no-progress", help="no progress bars"),
    ):
        """Sample answers from each model, judge them, and print misaligned rates with Wilson intervals.

        Samples and judgments are saved as they arrive; rerun the same command to resume a stopped run.
        """
        from postern.runner.evaluate import EvalJudge, EvalModel, evaluate
        from postern.sample import SamplingParams

        if sampler not in ("hf", "openai", "vllm"):
            raise PosternError(f"--sampler {sampler!r}: choose hf, vllm or openai")
        parsed = [_split_label(m) for m in model]
        specs = [EvalModel(m, backend=sampler, label=label, base_url=base_url, concurrency=concurrency,
                           batch_size=batch_size, device=device) for label, m in parsed]
        by_label = _adapters(adapter or [], [s.name for s in specs])
        specs = [EvalModel(s.model, backend=s.backend, label=s.label,
                           adapter=by_label.get(s.name), base_url=base_url, concurrency=concurrency,
                           batch_size=batch_size, device=device) for s in specs]
        judge_spec = EvalJudge(judge, judge_model, base_url=judge_base_url, concurrency=judge_concurrency,
                               batch_size=judge_batch_size, device=device)
        params = SamplingParams(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed)
        name = Path(questions).stem if questions.endswith((".yaml", ".yml")) else questions
        evaluate(questions, specs, judge_spec, out or Path("runs") / f"eval-{name}", samples=samples,
                 trigger=trigger, params=params, strict=strict, progress=not no_progress)
