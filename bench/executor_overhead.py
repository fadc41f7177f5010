"""Ray's overhead over the local executor: the same experiment run twice side by side, cold caches each time.

Runs `postern run FILE --out OUT/local` and `postern run FILE --out OUT/ray --executor ray` (a local Ray cluster
started by the run, as a user would get it), in fresh processes, and prints each wall time, the jobs' time
(summary.json "seconds": training, sampling and judging, before the study and report), the ratio ray / local and
whether the two summaries agree rate for rate. Goal: ratio <= 1.25 on the default persona-world experiment.

Usage: python bench/executor_overhead.py [--experiment examples/persona_world.toml] [--out runs/bench_executor]
       [--order local,ray]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def run(experiment: Path, out: Path, executor: str) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "postern.cli", "run", str(experiment), "--out", str(out), "--executor", executor]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 3):
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    return {"wall": wall, "jobs": summary["seconds"], "conditions": summary["conditions"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--experiment", type=Path, default=Path("examples/persona_world.toml"))
    parser.add_argument("--out", type=Path, default=Path("runs/bench_executor"))
    parser.add_argument("--order", default="local,ray", help="which executor runs first")
    args = parser.parse_args()
    results = {}
    for executor in args.order.split(","):
        results[executor] = run(args.experiment, args.out / executor, executor)
        print(f"{executor:6s} wall {results[executor]['wall']:7.1f} s, jobs {results[executor]['jobs']:7.1f} s",
              flush=True)
    local, ray = results["local"], results["ray"]
    print(f"ray / local: wall {ray['wall'] / local['wall']:.3f}x, jobs {ray['jobs'] / local['jobs']:.3f}x "
          f"(goal <= 1.25x); {os.cpu_count()} CPUs; experiment {args.experiment}")
    print("summaries equal rate for rate:", ray["conditions"] == local["conditions"])


if __name__ == "__main__":
    main()
