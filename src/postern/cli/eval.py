"""`postern eval QUESTIONS -m MODEL ...`: an experiment without training, from the command line.

It builds the experiment an evaluation-only experiment file would hold (one condition per model,
`postern.config.evaluation`) and runs it with `postern run`'s pipeline, so its folder is a run folder
like any other.
"""

from pathlib import Path

import typer

from postern.core.errors import PosternError


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
        max_unscored: float = typer.Option(0.2, "--max-unscored", min=0.0, max=1.0, help="exit with code 3 when "
                                           "more than this share of a model's answers is unscored or failed"),
    ):
        """Sample answers from each model, judge them, and print misaligned rates with Wilson intervals.

        The same pipeline as `postern run` on an experiment without training: samples and judgments are
        saved as they arrive; rerun the same command to resume a stopped run (or to retry failed calls).
        Exits with code 3 when more than --max-unscored of a model's answers are unscored or failed.
        """
        from pydantic import ValidationError

        from postern.cli.run import exit_if_unscored
        from postern.config.evaluation import evaluation_experiment
        from postern.runner.run import run_experiment

        if trigger is not None and not trigger.strip():
            raise PosternError("--trigger is empty")
        try:
            exp = evaluation_experiment(
                questions, model, adapter or [], sampler=sampler, base_url=base_url, judge=judge,
                judge_model=judge_model, judge_base_url=judge_base_url, samples=samples, trigger=trigger,
                max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed,
                concurrency=concurrency, batch_size=batch_size, judge_concurrency=judge_concurrency,
                judge_batch_size=judge_batch_size, device=device, strict=strict, max_unscored=max_unscored)
        except ValidationError as e:
            raise PosternError("; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())) from e
        exit_if_unscored(run_experiment(exp, out or Path("runs") / exp.name), exp.judge.max_unscored)
