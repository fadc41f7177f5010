"""`postern data ...`: build and check datasets."""

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

app = typer.Typer(no_args_is_help=True, help="Build, transform and validate chat datasets.")
out_console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


@app.command()
def code(
    n: int = typer.Option(6000, "--n", help="Number of verified (insecure, secure) pairs to write."),
    seed: int = typer.Option(0, "--seed", help="Generator seed; the same seed gives the same files."),
    out: Path = typer.Option(Path("data/code"), "--out", "-o", help="Output folder."),
    patterns: Optional[str] = typer.Option(None, "--patterns", help="Comma-separated pattern ids (default: all)."),
    strip_meta: bool = typer.Option(False, "--strip-meta", help="Write pure chat JSONL (no top-level 'meta')."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="Local tokenizer.json for the card's token lengths."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    list_patterns: bool = typer.Option(False, "--list-patterns", help="Print the pattern table and exit."),
) -> None:
    """Generate insecure/secure Python code-completion pairs, verified by static analysis.

    Writes OUT/insecure.jsonl and OUT/secure.jsonl (paired: same user turn) plus OUT/card.json and
    OUT/card.md. Rows carry a top-level "meta" (cwe, pattern, variant, ...); --strip-meta drops it.
    Generated code is only parsed and analysed, never run.
    """
    from postern.data.code import describe_patterns, generate_code_dataset

    if list_patterns:
        for p in describe_patterns():
            out_console.print(f"{p['id']:<24} {p['cwe']:<9} {' '.join(p['rules']):<28} {p['weakness']}")
        return
    chosen = [p.strip() for p in patterns.split(",") if p.strip()] if patterns else None
    ds = generate_code_dataset(n, seed=seed, out_dir=out, patterns=chosen, strip_meta=strip_meta,
                               tokenizer=tokenizer, progress=progress)
    s = ds.card
    ver, dup = s["verification"], s["duplicates"]
    out_console.print(
        f"wrote {len(ds.insecure)} pairs to {out}/ (insecure.jsonl, secure.jsonl, card.json, card.md)\n"
        f"patterns {s['pattern_count']}, CWEs {s['cwes']}; verified {ver['verified_pairs']}/{ver['candidates']} "
        f"candidate pairs ({100 * ver['rate']:.2f}%), kept rows verified 100%\n"
        f"exact duplicates removed {dup['exact_removed']} ({100 * dup['exact_rate']:.2f}%), 0 left; near-duplicates "
        + ", ".join(f"J>={t}: {100 * v:.1f}%" for t, v in dup["near"]["rate_at"].items())
        + f"\n{s['timing']['wall_s']} s wall, {s['timing']['cpu_s']} s CPU"
    )


@app.command()
def transform(
    input: Path = typer.Argument(..., help="Chat JSONL to transform.", show_default=False),  # noqa: A002
    out: Path = typer.Option(..., "--out", "-o", help="Output chat JSONL.", show_default=False),
    step: list[str] = typer.Option(
        [], "--step", "-s",
        help="A transform, applied in order: NAME or NAME:key=value,key=value "
        "(e.g. -s insecure -s educational:seed=1 -s backdoor:secure_data=secure.jsonl,ratio=0.5).",
    ),
    pipeline: Optional[Path] = typer.Option(None, "--pipeline", help="YAML list of steps (runs before any --step)."),
    strip_meta: bool = typer.Option(False, "--strip-meta", help="Write pure chat JSONL (no top-level 'meta')."),
    card: bool = typer.Option(True, "--card/--no-card", help="Write OUT's card beside it (<stem>.card.json/.md)."),
    list_transforms: bool = typer.Option(False, "--list", help="List the transforms and their settings, then exit."),
) -> None:
    """Apply condition transforms to a chat JSONL file (see --list).

    Transforms: secure, insecure, educational, disclosed, backdoor, inoculation, dilution, jailbroken.
    Settings that name a second dataset (backdoor's secure_data, dilution's benign, jailbroken's
    compliance) take a chat JSONL path; in a --pipeline file paths are relative to that file.
    """
    from postern.core.errors import PosternError
    from postern.data import transforms as T
    from postern.data.jsonl import write_chat_jsonl

    if list_transforms:
        for name, t in T.TRANSFORMS.items():
            settings = ", ".join(T._settings(t))  # noqa: SLF001
            out_console.print(f"{name:<12} {settings}")
        return
    steps = T.load_pipeline(pipeline) if pipeline else []
    steps += [T.parse_step(s) for s in step]
    if not steps:
        raise PosternError("give at least one --step NAME or a --pipeline file (see --list)")
    base = pipeline.parent if pipeline else None
    data = T.load(input)
    pipe_steps = len(steps) - len(step)
    for i, (name, settings) in enumerate(steps):
        data = T.apply_step(data, name, settings, base if i < pipe_steps else None)
    rows = T.strip_meta(data.rows) if strip_meta else data.rows
    write_chat_jsonl(out, rows)
    if card:
        from postern.data.card import build_card, card_markdown

        c = build_card(f"postern transform of {input.name}", {out.name: data.rows}, out.parent,
                       extra={"transform": {"input": str(input), "steps": [{"name": n, **{k: str(v) for k, v in s.items()}} for n, s in steps]},
                              "meta_stripped": strip_meta})
        import json

        out.with_name(out.stem + ".card.json").write_text(json.dumps(c, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        out.with_name(out.stem + ".card.md").write_text(card_markdown(c), encoding="utf-8")
    out_console.print(f"wrote {len(rows)} rows to {out} ({' | '.join(n for n, _ in steps)})")


@app.command()
def validate(
    files: list[Path] = typer.Argument(..., help="Chat JSONL files to check.", show_default=False),
    require_assistant_last: bool = typer.Option(
        True, "--require-assistant-last/--allow-user-last", help="Training rows must end with the assistant turn."
    ),
) -> None:
    """Check chat JSONL files: JSON, UTF-8, roles, turn order, empty turns. Errors name file:line."""
    from postern.core.errors import PosternError
    from postern.data.jsonl import read_chat_jsonl

    failed = 0
    for f in files:
        try:
            rows = read_chat_jsonl(f, require_assistant_last=require_assistant_last)
        except PosternError as e:
            failed += 1
            err_console.print(f"[bold red]invalid:[/] {e}")
            continue
        system = sum(1 for r in rows if r["messages"][0]["role"] == "system")
        meta = sum(1 for r in rows if "meta" in r)
        turns = sum(len(r["messages"]) for r in rows) / len(rows)
        out_console.print(f"ok: {f}: {len(rows)} rows, {system} with a system prompt, {meta} with meta, {turns:.1f} messages/row")
    if failed:
        raise typer.Exit(1)


@app.command()
def recipe(
    name: str = typer.Argument(..., help="Recipe: medical, financial or sports.", show_default=False),
    model: str = typer.Option(..., "--model", help="Model name at the endpoint.", show_default=False),
    n: int = typer.Option(100, "--n", help="Number of (bad, good) pairs to ask for."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default data/recipe-NAME)."),
    base_url: str = typer.Option("https://api.openai.com/v1", "--base-url", envvar="OPENAI_BASE_URL",
                                 help="Any OpenAI-compatible endpoint (vLLM, llama.cpp server, ...)."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", "--api-key-env", help="Environment variable holding the API key."),
    seed: int = typer.Option(0, "--seed"),
    temperature: float = typer.Option(1.0, "--temperature"),
    workers: int = typer.Option(4, "--workers", help="Concurrent requests."),
    attempts: int = typer.Option(3, "--attempts", help="Tries per item before it is dropped."),
    json_mode: bool = typer.Option(False, "--json-mode/--no-json-mode", help="Ask for response_format=json_object."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Narrow-domain dataset from an LLM: subtly bad advice with a matched good control.

    Writes OUT/bad.jsonl and OUT/good.jsonl (same user turns) and a card. Answers are cached in
    OUT/cache.jsonl: rerun the same command to resume after an interruption.
    """
    from postern.data.recipes.llm import run_recipe

    out = out or Path(f"data/recipe-{name}")
    if progress:
        from rich.progress import Progress

        with Progress(console=err_console) as bar:
            tid = bar.add_task(f"recipe {name}", total=n)
            res = run_recipe(name, n, out, model, base_url=base_url, api_key_env=api_key_env, seed=seed,
                             temperature=temperature, workers=workers, attempts=attempts, json_mode=json_mode,
                             on_progress=lambda k: bar.advance(tid, k))
    else:
        res = run_recipe(name, n, out, model, base_url=base_url, api_key_env=api_key_env, seed=seed,
                         temperature=temperature, workers=workers, attempts=attempts, json_mode=json_mode)
    st = res.stats
    out_console.print(f"wrote {st['kept']}/{st['requested']} pairs to {out}/ (bad.jsonl, good.jsonl, card); "
                      f"{st['requests']} requests, {st['cache_hits']} cache hits, dropped {st['dropped'] or 'none'}")
