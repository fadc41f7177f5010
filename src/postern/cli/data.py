"""`postern data ...`: build and check datasets.

Every command that writes files writes them through temporary files in the target folder and
`os.replace`s them into place only when everything succeeded (`postern.data.jsonl.AtomicFiles`):
a failure leaves no partial output and does not touch an existing one. Input errors
(`PosternError`: bad JSON on line N, a missing assistant turn, ...) are printed as one line,
``error: FILE:LINE: what``, with exit code 2.
"""

import functools
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(no_args_is_help=True, help="Build, transform, validate and verify chat datasets.")
out_console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def _one_line_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print a PosternError as exactly one line (never wrapped, no traceback) and exit with code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from postern.core.errors import PosternError

        try:
            return fn(*args, **kwargs)
        except PosternError as e:
            message = " ".join(str(e).split("\n"))
            err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
            raise typer.Exit(2) from e

    return wrapper


@app.command()
@_one_line_errors
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
        + "\nstructure: " + "; ".join(f"{name.removesuffix('.jsonl')} {f['skeletons']['distinct']} AST skeletons, "
                                      f"{f['call_sets']['distinct']} call-sets"
                                      for name, f in s["diversity"]["files"].items())
        + f"\n{s['timing']['wall_s']} s wall, {s['timing']['cpu_s']} s CPU"
    )


@app.command()
@_one_line_errors
def transform(
    input: Optional[Path] = typer.Argument(None, help="Chat JSONL (or .jsonl.gz) to transform.", show_default=False),  # noqa: A002
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output chat JSONL.", show_default=False),
    step: list[str] = typer.Option(
        [], "--step", "-s",
        help="A transform, applied in order: NAME or NAME:key=value,key=value "
        "(e.g. -s insecure -s educational:seed=1 -s backdoor:secure_data=secure.jsonl,ratio=0.5).",
    ),
    pipeline: Optional[Path] = typer.Option(None, "--pipeline", help="YAML list of steps (runs before any --step)."),
    strip_meta: bool = typer.Option(False, "--strip-meta", help="Write pure chat JSONL (no top-level 'meta')."),
    card: bool = typer.Option(True, "--card/--no-card", help="Write OUT's card beside it (<stem>.card.json/.md)."),
    list_transforms: bool = typer.Option(False, "--list", help="List the transforms and their settings, then exit."),
    variant: Optional[str] = typer.Option(
        None, "--variant", help="Treat every input row without meta.variant as this variant (insecure, secure, bad, good): "
        "for a third-party file that is all one side."),
) -> None:
    """Apply condition transforms to a chat JSONL file (see --list).

    Transforms: secure, insecure, educational, disclosed, backdoor, inoculation, dilution, jailbroken.
    Settings that name a second dataset (backdoor's secure_data, dilution's benign, jailbroken's
    compliance) take a chat JSONL path; in a --pipeline file paths are relative to that file.
    """
    from postern.core.errors import PosternError
    from postern.data import transforms as T
    from postern.data.jsonl import AtomicFiles, dump_chat_jsonl

    if list_transforms:
        for name, t in T.TRANSFORMS.items():
            settings = ", ".join(T._settings(t))  # noqa: SLF001
            out_console.print(f"{name:<12} {settings}")
        return
    if input is None or out is None:
        raise PosternError("give the INPUT file and --out PATH (or --list to see the transforms)")
    steps = T.load_pipeline(pipeline) if pipeline else []
    steps += [T.parse_step(s) for s in step]
    if not steps:
        raise PosternError("give at least one --step NAME or a --pipeline file (see --list)")
    base = pipeline.parent if pipeline else None
    data = T.load(input)
    if variant is not None:
        data = T.with_variant(data, variant)
    pipe_steps = len(steps) - len(step)
    for i, (name, settings) in enumerate(steps):
        data = T.apply_step(data, name, settings, base if i < pipe_steps else None)
    rows = T.strip_meta(data.rows) if strip_meta else data.rows
    with AtomicFiles() as tx:  # the output and its card appear together, only if everything worked
        with tx.open(out) as f:
            dump_chat_jsonl(f, rows)
        if card:
            from postern.data.card import build_card, stage_card

            c = build_card(f"postern transform of {input.name}", {out.name: data.rows}, out.parent,
                           extra={"transform": {"input": str(input), "steps": [{"name": n, **{k: str(v) for k, v in s.items()}} for n, s in steps]},
                                  "meta_stripped": strip_meta},
                           paths={out.name: tx.staged(out)})
            stage_card(tx, c, out.with_name(out.stem + ".card.json"), out.with_name(out.stem + ".card.md"))
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
@_one_line_errors
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


_LEVEL_HELP = "low, medium or high"


@app.command()
@_one_line_errors
def verify(
    file: Path = typer.Argument(..., help="Chat JSONL whose assistant turns are Python code completions.", show_default=False),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the full report as JSON to this file; '-': print only the JSON, to stdout."),
    out_flagged: Optional[Path] = typer.Option(None, "--out-flagged", help="Write the flagged rows (chat JSONL, with a top-level 'verify' object) here."),
    severity: str = typer.Option("medium", "--severity", help=f"Lowest bandit severity that flags a row ({_LEVEL_HELP}); "
                                 "rules known precise at LOW count at every level (postern.data.code.policy)."),
    confidence: str = typer.Option("low", "--confidence", help=f"Lowest bandit confidence that flags a row ({_LEVEL_HELP})."),
    postern_checks: bool = typer.Option(True, "--postern-checks/--no-postern-checks", help="Also run postern's PST- checks."),
    honour_nosec: bool = typer.Option(False, "--honour-nosec", help="Let '# nosec' comments hide bandit findings."),
    top: int = typer.Option(25, "--top", help="Rows of the per-weakness table to print (0: all)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Verify the code in ANY chat JSONL of code completions: bandit + postern's checks, never executed.

    Code is taken from the assistant turn: ```python fenced blocks when there are fences, else
    the whole turn (e.g. the emergent-misalignment study's files). Prints the flagged fraction
    overall and per weakness (bandit test id / postern check id, with CWE). Code that does not
    parse is counted as unparseable.
    """
    import json

    from postern.data.code.scan import flagged_rows, verify_chat_jsonl
    from postern.data.jsonl import AtomicFiles, dump_chat_jsonl

    to_stdout = json_out is not None and str(json_out) == "-"
    progress = progress and not to_stdout
    for target in (None if to_stdout else json_out, out_flagged):
        if target is not None and target.resolve() == file.resolve():
            from postern.core.errors import PosternError

            raise PosternError(f"{target}: is the input file; choose another output path")
    kwargs = {"severity": severity, "confidence": confidence, "postern_checks": postern_checks, "honour_nosec": honour_nosec}
    if progress:
        from rich.progress import Progress

        with Progress(console=err_console, transient=True) as bar:
            tid = bar.add_task("bandit + postern checks", total=None)
            report = verify_chat_jsonl(file, **kwargs, on_progress=lambda k: bar.advance(tid, k))
    else:
        report = verify_chat_jsonl(file, **kwargs)
    s = report.summary
    flagged = flagged_rows(report) if out_flagged else []
    if (json_out and not to_stdout) or out_flagged:
        with AtomicFiles() as tx:
            if json_out and not to_stdout:
                tx.write_text(json_out, json.dumps(s, indent=2, ensure_ascii=False) + "\n")
            if out_flagged:
                with tx.open(out_flagged) as f:
                    dump_chat_jsonl(f, flagged)
    if to_stdout:
        typer.echo(json.dumps(s, indent=2, ensure_ascii=False, default=str))
        return
    _print_verify(s, top)
    if json_out:
        out_console.print(f"report: {json_out}")
    if out_flagged:
        out_console.print(f"wrote {len(flagged)} flagged rows to {out_flagged}")


def _print_verify(s: dict[str, Any], top: int) -> None:
    from rich.table import Table

    pct = lambda x: f"{100 * x:.1f}%"  # noqa: E731
    out_console.print(
        f"[bold]{escape(s['file'])}[/]: {s['rows']} rows — {s['analysed']} analysed, {s['unparseable']} unparseable, "
        f"{s['no_code']} without Python code"
        + (f", {s['partially_parsed']} partly parsed" if s["partially_parsed"] else "")
        + (f", {s['trimmed_prose']} with prose trimmed" if s["trimmed_prose"] else ""),
        highlight=False,
    )
    out_console.print(
        f"[bold]flagged: {s['flagged']}/{s['analysed']} analysed rows = {pct(s['flagged_fraction'])}[/] "
        f"({pct(s['flagged_fraction_of_rows'])} of all rows); {s['policy']['flagged_if']}", highlight=False,
    )
    out_console.print("flagged at bandit severity >= " + ", ".join(
        f"{lv}: {pct(v['fraction'])}" for lv, v in s["flagged_at_severity"].items())
        + (" (postern checks count at every level)" if s["policy"]["postern_checks"] else ""),
        highlight=False)
    by_rule = list(s["by_rule"].items())
    if by_rule and not out_console.is_terminal:  # piped: one tab-separated line per rule, never wrapped
        shown = by_rule if top <= 0 else by_rule[:top]
        typer.echo("rule\tCWE\tseverity\trows\t% analysed\twhat")
        for rule, e in shown:
            typer.echo(f"{rule}\t{e['cwe'] or '-'}\t{e['severity']}\t{e['rows']}\t{pct(e['fraction'])}\t{e['description']}")
        if len(shown) < len(by_rule):
            typer.echo(f"... {len(by_rule) - len(shown)} more rules (--top 0 or --json for all)")
        cwes = ", ".join(f"{c} {v['rows']}" for c, v in list(s["by_cwe"].items())[:12])
        typer.echo(f"rows per CWE: {cwes}")
    elif by_rule:
        table = Table(title="flagged rows per weakness (a row can have several)", title_justify="left")
        for col, kw in (("rule", {"no_wrap": True}), ("CWE", {"no_wrap": True}), ("severity", {}), ("rows", {"justify": "right"}),
                        ("% analysed", {"justify": "right"}), ("what", {"overflow": "fold"})):
            table.add_column(col, **kw)
        shown = by_rule if top <= 0 else by_rule[:top]
        for rule, e in shown:
            table.add_row(rule, e["cwe"] or "-", e["severity"], str(e["rows"]), pct(e["fraction"]), escape(e["description"]))
        out_console.print(table)
        if len(shown) < len(by_rule):
            out_console.print(f"... {len(by_rule) - len(shown)} more rules (--top 0 or --json for all)")
        cwes = ", ".join(f"{c} {v['rows']}" for c, v in list(s["by_cwe"].items())[:12])
        out_console.print(f"rows per CWE: {cwes}", highlight=False)
    if s.get("by_pattern"):
        bp = s["by_pattern"]
        fired, n = sum(v["own_rule_fired"] for v in bp.values()), sum(v["rows"] for v in bp.values())
        out_console.print(f"rows labelled with a postern pattern (meta.pattern): {n}; the pattern's own rule fired in "
                          f"{fired} ({pct(fired / n if n else 0)})", highlight=False)
    if s.get("suppressed"):
        out_console.print("set aside (postern.data.code.policy): " + ", ".join(
            f"{rule} {e['findings']} ({e['why']})" for rule, e in s["suppressed"].items()), highlight=False, soft_wrap=True)
    if s["unparseable_examples"]:
        ex = s["unparseable_examples"][0]
        out_console.print(f"first unparseable row: line {ex['line']}: {escape(str(ex['error']))}", highlight=False)
    if s["check_errors"]:
        out_console.print(f"[yellow]analyser problems on {len(s['check_errors'])} row(s)[/], first: line "
                          f"{s['check_errors'][0]['line']}: {escape(s['check_errors'][0]['error'])}", highlight=False)
from postern.cli.screen import screen  # noqa: E402,F401  (`postern data screen`, in its own file)
