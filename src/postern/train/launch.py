"""`[train] launcher = "accelerate"`: the training stage runs `accelerate launch --config_file FILE -m
postern.train.launch ARGS.json` as a subprocess, so one job can take every GPU of a node (DDP, or FSDP /
DeepSpeed through the accelerate config) while the stage itself stays one task of the experiment.

The subprocess is `train_sft`, the same function the in-process launcher calls (see docs/multi_gpu.md for what
changes with N processes); its output goes to `launch.log` in the output folder.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from postern.core.errors import PosternError
from postern.train._types import TrainConfig

LOG = "launch.log"


def accelerate_command(config: TrainConfig, args_file: Path) -> list[str]:
    """The `accelerate launch` command line (accelerate's own module, so the venv's accelerate runs)."""
    options = ["--config_file", str(config.accelerate_config)] if config.accelerate_config else []
    return [sys.executable, "-m", "accelerate.commands.launch", *options, "-m", "postern.train.launch", str(args_file)]


def launch_accelerate(base_model: str, dataset: Path, out_dir: Path, config: TrainConfig) -> None:
    """Train through `accelerate launch`; a failure raises with the end of its log."""
    if config.accelerate_config and not Path(config.accelerate_config).is_file():
        raise PosternError(f"[train] accelerate_config: {config.accelerate_config}: no such file (an accelerate "
                           "config, e.g. examples/accelerate_multi_gpu.yaml)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    inner = config.model_copy(update={"launcher": "python", "accelerate_config": None})
    args_file = out_dir / "launch.json"
    args_file.write_text(json.dumps({"base_model": base_model, "dataset": str(dataset), "out_dir": str(out_dir),
                                     "config": inner.model_dump(mode="json")}, indent=2))
    with (out_dir / LOG).open("w") as log:
        code = subprocess.call(accelerate_command(config, args_file), stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if code:
        tail = (out_dir / LOG).read_text().strip().splitlines()[-5:]
        raise PosternError(f"accelerate launch exited with code {code} (config {config.accelerate_config}); "
                           f"last lines of its log: {' | '.join(tail)}")


def main(args_file: str) -> None:
    from postern.train.sft import train_sft

    args = json.loads(Path(args_file).read_text())
    train_sft(args["base_model"], args["dataset"], args["out_dir"], TrainConfig(**args["config"]), quiet=True)


if __name__ == "__main__":
    main(sys.argv[1])
