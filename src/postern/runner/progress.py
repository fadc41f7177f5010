"""Where a stage ran (for events.jsonl) and the driver's view of the matrix: each job's stages queued, running,
done or failed, with an ETA."""

import socket
import sys
import time
from dataclasses import dataclass, field

from rich.table import Table

from postern.runner.outcomes import STAGES

SYMBOLS = {"queued": "[dim]queued[/]", "running": "[cyan]running[/]", "done": "[green]done[/]",
           "failed": "[bold red]failed[/]", "skipped": "[dim]-[/]"}


def where() -> dict:
    """The host, and the Ray node id when this process belongs to a Ray cluster (ray is never imported here)."""
    out = {"host": socket.gethostname()}
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        out["node"] = ray.get_runtime_context().get_node_id()
    return out


@dataclass
class Matrix:
    """The state of every (job, stage); `table()` draws it, one row per job."""

    jobs: list
    state: dict = field(default_factory=dict)
    node: dict = field(default_factory=dict)
    start: float = field(default_factory=time.time)

    def __post_init__(self):
        self.state = {(job, stage): "queued" for job in self.jobs for stage in STAGES}

    def set(self, job, stage: str, state: str, node: str | None = None) -> None:
        if node:
            self.node[job] = node
        if self.state.get((job, stage)) in ("done", "failed"):
            return  # a late "started" event read after the result arrived
        self.state[(job, stage)] = state

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(SYMBOLS, 0)
        for state in self.state.values():
            out[state] += 1
        return out

    def eta(self) -> float | None:
        """Seconds left, at the pace so far (stages finished per second); None before the first one finishes."""
        c = self.counts()
        finished, left = c["done"] + c["failed"] + c["skipped"], c["queued"] + c["running"]
        if not finished:
            return None
        return (time.time() - self.start) / finished * left

    def table(self, title: str = "") -> Table:
        c, eta = self.counts(), self.eta()
        caption = ", ".join(f"{n} {s}" for s, n in c.items() if n)
        caption += f"; elapsed {time.time() - self.start:.0f}s" + (f", eta {eta:.0f}s" if eta is not None else "")
        table = Table(title=title, caption=caption)
        for col in ("condition", "seed", *STAGES, "node"):
            table.add_column(col, no_wrap=True)
        for job in self.jobs:
            table.add_row(job.condition, str(job.seed), *(SYMBOLS[self.state[(job, s)]] for s in STAGES),
                          (self.node.get(job) or "")[:12])
        return table
