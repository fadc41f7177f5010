"""GPU check of the one pipeline: `postern run` on a randomly initialised Qwen2.5-0.5B-shaped model.

Two conditions (code:insecure, code:secure) x one seed, 50 LoRA steps each (postern's recipe: r=32,
alpha=64, rsLoRA, effective batch 16, bf16), HF sampling of the built-in questions, and a local
hf-logprob judge (the same random model: its scores mean nothing, the timing is the point). Builds
everything in-process and downloads nothing (tokenizer and model shape from `train_gpu_check.py`).
Prints the device and the seconds of every stage from the run's own records.

  python bench/gpu_pipeline.py            # on a GPU
  python bench/gpu_pipeline.py --tiny     # CPU dry run: a 2-layer, 64-wide model, 3 steps
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import json
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_gpu_check import build_tokenizer, model_config, pseudo_words  # noqa: E402

EXPERIMENT = """
name = "gpu_pipeline"
base_model = "{model}"
seeds = [0]
evaluate_base = false
[data]
examples = {examples}
[train]
max_length = 1024
per_device_batch_size = {micro}
gradient_checkpointing = false
[eval]
questions = ["main"]
samples_per_question = {samples}
max_new_tokens = {tokens}
[judge]
kind = "hf-logprob"
model = "{model}"
[conditions.insecure]
dataset = "code:insecure"
[conditions.secure]
dataset = "code:secure"
"""


def stage_seconds(run_dir: Path) -> dict[str, float]:
    """Seconds per stage, summed over jobs: dataset and train from their artifacts, sample and judge from events."""
    seconds: dict[str, float] = defaultdict(float)
    for manifest in (run_dir / "cache").glob("*/*/manifest.json"):
        m = json.loads(manifest.read_text())
        seconds[m["stage"]] += m["seconds"]
    for line in (run_dir / "events.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["stage"] in ("sample", "judge"):
            seconds[e["stage"]] += e.get("seconds", 0.0)
    return dict(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="2-layer 64-wide model, 3 steps, for a CPU dry run")
    parser.add_argument("--out", type=Path, default=None, help="keep the run folder here (default: a temp folder)")
    args = parser.parse_args()

    import torch
    from rich.console import Console
    from transformers import AutoModelForCausalLM

    from postern.config import load_experiment
    from postern.runner.run import run_experiment

    gpu = torch.cuda.is_available()
    if not gpu and not args.tiny:
        raise SystemExit("no GPU here: use --tiny for a CPU dry run")
    rng = random.Random(0)
    tok = build_tokenizer(pseudo_words(1500, rng), 1024 if args.tiny else 8192, rng)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(model_config(args.tiny, tok))
        if gpu:
            model = model.to(torch.bfloat16)
        model.save_pretrained(tmp / "base")
        tok.save_pretrained(tmp / "base")
        n_params = sum(p.numel() for p in model.parameters())
        del model
        steps = 3 if args.tiny else 50
        (tmp / "exp.toml").write_text(EXPERIMENT.format(
            model=tmp / "base", examples=16 * steps, micro=4 if args.tiny else 16, samples=1 if args.tiny else 8,
            tokens=16 if args.tiny else 128))
        run_dir = args.out or tmp / "run"
        start = time.perf_counter()
        run_experiment(load_experiment(tmp / "exp.toml"), run_dir, console=Console(quiet=True))
        wall = time.perf_counter() - start
        device = torch.cuda.get_device_name(0) if gpu else "cpu"
        print(f"device: {device} (torch {torch.__version__}); model: Qwen2 "
              f"{'tiny' if args.tiny else 'Qwen2.5-0.5B shape'}, {n_params / 1e6:.1f} M parameters")
        print(f"2 conditions x 1 seed, {steps} steps each: {wall:.1f} s wall")
        for stage, s in stage_seconds(run_dir).items():
            print(f"  {stage:8s} {s:8.1f} s")
        summary = json.loads((run_dir / "summary.json").read_text())
        for c, s in summary["conditions"].items():
            m = s["misaligned"]
            print(f"  {c}: {m['answers']} answers, {m['n']} scored (random judge: the rate means nothing)")
        if gpu:
            print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
