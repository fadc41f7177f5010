"""Cost of hooks during sampling on the persona-world base model: plain vs ablation vs capture vs steering.

Each variant samples the same 208 answers (16 held-out questions x 13) with the same seed; the order
of variants is interleaved over several rounds and the median time is reported.

Usage: python bench/interp_overhead.py [--rounds 5] [--threads 1]
"""

import argparse
import statistics
import time
from contextlib import nullcontext

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from postern.interp import ablate, on_block_outputs, steer
from postern.world.assets import world_base_path
from postern.sample import SamplingParams
from postern.sample.hf import HFSampler
from postern.world.conditions import question_prompts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    path = world_base_path()
    model, tokenizer = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    sampler = HFSampler(model, tokenizer, batch_size=128)
    prompts = question_prompts(13)
    params = SamplingParams(max_new_tokens=40, seed=0)
    n_layers, d = model.config.num_hidden_layers, model.config.hidden_size
    direction = torch.randn(n_layers, d)
    kept = []

    variants = {
        "plain": lambda: nullcontext(),
        "ablate (all layers)": lambda: ablate(model, direction),
        "steer (all layers)": lambda: steer(model, direction, 1.0),
        "capture (all layers)": lambda: on_block_outputs(model, None, lambda i, h: kept.append(h.detach()) and None),
    }
    times = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, make in variants.items():
            kept.clear()
            start = time.perf_counter()
            with make():
                sampler.sample(prompts, params)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["plain"])
    print(f"{len(prompts) * 13} answers, {args.threads} torch thread(s), median of {args.rounds} rounds")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:22s} {med:6.3f}s  {100 * (med / base - 1):+5.1f}% vs plain")


if __name__ == "__main__":
    main()
