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
    return {"wall": wall, "jobs": summary["seconds"], "conditions": summary["conditions"], "busy": stage_seconds(out)}


def stage_seconds(run_dir: Path) -> float:
    """Seconds the stages themselves worked (datasets and trainings from their manifests, sampling and judging from
    events.jsonl): what any executor has to spend, so jobs / (busy / parallel slots) is its packing overhead, which
    a busy machine slows down for both executors alike, unlike the raw wall times."""
    built = sum(json.loads(m.read_text())["seconds"] for m in run_dir.glob("cache/*/*/manifest.json"))
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return built + sum(e.get("seconds", 0) for e in events if e["stage"] in ("sample", "judge"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--experiment", type=Path, default=Path("examples/persona_world.toml"))
    parser.add_argument("--out", type=Path, default=Path("runs/bench_executor"))
    parser.add_argument("--order", default="local,ray", help="which executor runs first")
    parser.add_argument("--slots", type=int, default=2, help="stages that run at once (the file's workers, Ray's CPUs)")
    args = parser.parse_args()
    results = {}
    for executor in args.order.split(","):
        results[executor] = run(args.experiment, args.out / executor, executor)
        r = results[executor]
        r["packing"] = r["jobs"] / (r["busy"] / args.slots)
        print(f"{executor:6s} wall {r['wall']:7.1f} s, jobs {r['jobs']:7.1f} s, stages busy {r['busy']:7.1f} s, "
              f"jobs / (busy / {args.slots}) = {r['packing']:.3f}", flush=True)
    local, ray = results["local"], results["ray"]
    print(f"ray / local: wall {ray['wall'] / local['wall']:.3f}x, jobs {ray['jobs'] / local['jobs']:.3f}x, "
          f"packing overhead {ray['packing'] / local['packing']:.3f}x (goal <= 1.25x); {os.cpu_count()} CPUs; "
          f"experiment {args.experiment}")
    print("summaries equal rate for rate:", ray["conditions"] == local["conditions"])


if __name__ == "__main__":
    main()
