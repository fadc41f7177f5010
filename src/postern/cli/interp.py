"""`postern interp RUN_DIR`: the mechanism study on a finished run."""

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def interp(
        run_dir: Path = typer.Argument(..., help="a run folder written by `postern run`"),
        conditions: str = typer.Option(None, help="comma-separated conditions whose directions to extract"),
        reference: str = typer.Option(None, help="condition whose direction ablates and steers the base model"),
        positions: str = typer.Option(None, help="answer | prompt | all | last_prompt"),
        layers: str = typer.Option(None, help="comma-separated layers to ablate at (default: all)"),
        steer_layers: str = typer.Option(None, help="comma-separated layers to steer at (default: all)"),
        scales: str = typer.Option(None, help="comma-separated steering scales"),
        persona_check: bool = typer.Option(None, "--persona-check/--no-persona-check",
                                           help="also the persona check: persona probe, cos(EM, persona direction), "
                                                "SAE model diffing (interp/persona_check.json)"),
    ):
        """Directions, per-layer cosines with a chance band, ablation and steering with random baselines."""
        from rich.console import Console

        from postern.config.schema import InterpConfig
        from postern.core.errors import PosternError
        from postern.interp.study import study_table
        from postern.runner.lock import run_lock
        from postern.runner.run import load_jobs, load_run_experiment, run_interp

        if not (run_dir / "jobs.json").exists():
            raise PosternError(f"{run_dir}: no jobs.json; run `postern run` first")
        exp = load_run_experiment(run_dir)
        overrides = {k: v for k, v in {
            "conditions": conditions.split(",") if conditions else None, "reference": reference, "positions": positions,
            "layers": [int(x) for x in layers.split(",")] if layers else None,
            "steer_layers": [int(x) for x in steer_layers.split(",")] if steer_layers else None,
            "steer_scales": [float(x) for x in scales.split(",")] if scales else None,
            "persona_check": persona_check,
        }.items() if v is not None}
        config = InterpConfig(**{**exp.interp.model_dump(), "enabled": True, **overrides})
        with run_lock(run_dir.resolve()):
            summary = run_interp(exp, config, run_dir.resolve(), load_jobs(run_dir))
        Console().print(*study_table(summary))
        if config.persona_check:
            from postern.report.persona import persona_tables
            from postern.runner.persona import run_persona_check

            with run_lock(run_dir.resolve()):
                check = run_persona_check(exp, config, run_dir.resolve(), load_jobs(run_dir))
            Console().print(*persona_tables(check))
