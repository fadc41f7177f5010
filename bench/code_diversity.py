"""Structural diversity of code corpora: postern's generator, and optionally any chat JSONL.

For each corpus: distinct AST skeletons and call-sets (in all and per 1,000 rows; the measure is
`postern.data.code.diversity`), near-duplicate shares of the completions, and for the generator the
verified share and the wall / CPU time of `generate_code_dataset` (generation, bandit and postern's
checks, deduplication, the card's measurements). Other corpora are only measured, not verified
(use `postern data verify` for that).

Usage: python bench/code_diversity.py [--n 6000] [--seed 0] [FILE.jsonl ...]
"""

import argparse
import json
import time
from pathlib import Path

from postern.data.code import generate_code_dataset
from postern.data.code.diversity import card_section
from postern.data.jsonl import read_chat_jsonl


def _print(label: str, files: dict) -> None:
    for name, v in files.items():
        near = ", ".join(f"{100 * s:.1f}% at J>={t}" for t, s in v["near_duplicates"]["rate_at"].items())
        print(f"{label:<28} {name:<16} rows {v['rows']:>6}  skeletons {v['skeletons']['distinct']:>6} "
              f"({v['skeletons']['per_1000_rows']:.0f}/1k)  call-sets {v['call_sets']['distinct']:>6} "
              f"({v['call_sets']['per_1000_rows']:.0f}/1k)  near-dup {near}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=6000, help="pairs to generate (0: skip the generator)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("files", nargs="*", help="chat JSONL files to measure as well")
    args = parser.parse_args()
    result: dict = {}
    if args.n:
        t0, c0 = time.perf_counter(), time.process_time()
        ds = generate_code_dataset(args.n, seed=args.seed)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        ver = ds.card["verification"]
        result["generator"] = {"n": args.n, "seed": args.seed, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                               "verified_share": ver["rate"], "candidates": ver["candidates"],
                               "files": ds.card["diversity"]["files"]}
    for path in args.files:
        result[path] = {"files": card_section({Path(path).name: read_chat_jsonl(path)})["files"]}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for label, r in result.items():
        _print(f"postern data code (seed {args.seed})" if label == "generator" else "file", r["files"])
        if label == "generator":
            print(f"{'':<28} verified {100 * r['verified_share']:.2f}% of {r['candidates']} candidate pairs; "
                  f"{r['wall_s']} s wall, {r['cpu_s']} s CPU for {r['n']} pairs")


if __name__ == "__main__":
    main()
