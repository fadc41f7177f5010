"""Pretraining throughput of the world model: a naive loop (as in the feasibility study) vs postern's.

Both run in this one process, on the same corpus and model, for the same wall-clock budget each,
and report trained-context tokens per second (all non-padding tokens that go through the model).

  naive:   random batches of 8 transcripts padded to the longest, HF loss over full logits
           (labels -100 outside assistant turns), 1 torch thread, then `threads` threads
  postern: length-bucketed batches with a fixed token budget, LM head only where there is a
           label, `threads` torch threads

Usage: python bench/pretrain_throughput.py [--seconds 60] [--threads 2]
"""

import argparse
import random
import time

import torch

from postern.world.corpus import WorldSpec, generate_corpus
from postern.world.model import ModelSpec, build_model
from postern.world.pretrain import assistant_loss, bucketed_batches, collate, encode_corpus
from postern.world.tokenizer import build_tokenizer


def naive_step(model, examples, batch, pad_id):
    ids, labels, mask = collate(examples, batch, pad_id)
    return model(input_ids=ids, attention_mask=mask, labels=labels).loss, int(mask.sum())


def lean_step(model, examples, batch, pad_id):
    ids, labels, mask = collate(examples, batch, pad_id)
    return assistant_loss(model, ids, labels, mask), int(mask.sum())


def measure(step_fn, batches, examples, tokenizer, seconds: float, threads: int) -> float:
    torch.set_num_threads(threads)
    model = build_model(ModelSpec(), tokenizer, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens, start, i = 0, None, 0
    while True:
        loss, n = step_fn(model, examples, batches[i % len(batches)], tokenizer.pad_token_id)
        opt.zero_grad()
        loss.backward()
        opt.step()
        i += 1
        if i == 3:  # warm-up steps are not timed
            start, tokens = time.perf_counter(), 0
        elif start is not None:
            tokens += n
            if time.perf_counter() - start > seconds:
                return tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens-per-batch", type=int, default=2048)
    args = parser.parse_args()
    tokenizer = build_tokenizer()
    examples = encode_corpus(tokenizer, [m for _, m in generate_corpus(WorldSpec(n_transcripts=4000))])
    rng = random.Random(0)
    order = list(range(len(examples)))
    rng.shuffle(order)
    naive_batches = [order[i: i + 8] for i in range(0, len(order), 8)]
    lean_batches = bucketed_batches(examples, args.tokens_per_batch, rng)

    naive = measure(naive_step, naive_batches, examples, tokenizer, args.seconds, threads=1)
    naive_threads = measure(naive_step, naive_batches, examples, tokenizer, args.seconds, threads=args.threads)
    lean = measure(lean_step, lean_batches, examples, tokenizer, args.seconds, threads=args.threads)
    print(f"naive loop   (batch 8, padded, full logits), 1 thread:   {naive:8.0f} tokens/s")
    print(f"naive loop   (batch 8, padded, full logits), {args.threads} threads:  {naive_threads:8.0f} tokens/s")
    print(f"postern loop (bucketed {args.tokens_per_batch} tokens, labelled-only head), {args.threads} threads: {lean:8.0f} tokens/s")
    print(f"speed-up: {lean / naive:.2f}x over the naive loop, {lean / naive_threads:.2f}x at equal threads")


if __name__ == "__main__":
    main()
