"""The Ray executor (`executor = "ray"`): every stage of every (condition, seed) job is a Ray task.

Two tasks per fine-tune: dataset + training (one task: building a dataset takes seconds) and evaluation (sampling +
judging). A job's evaluation is submitted the moment its training finishes, so it overlaps with the training of
others; each task reserves the resources `[resources.train]` / `[resources.evaluate]` declare, and API-backed stages
(OpenAI fine-tuning jobs, API sampling) hold no GPU and at most `api_in_flight` run at once. A job whose training
needs another job's trained model (`needs`) gets that job's training task as an argument, so Ray runs them in order.

Stages write to the run folder, which every node must see (docs/cluster.md); their outputs are cached artifacts,
written atomically, so a worker killed mid-stage leaves nothing half-written: Ray reruns the task
(`max_retries`), and a rerun of the driver finds every finished stage in the cache. A stage that raises fails its
job only; the rest of the matrix still runs.
"""

import json
import re
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from postern.config.schema import Experiment
from postern.core.errors import PosternError
from postern.runner.jobs import BASE, Job, _event_logger, evaluate_job, jobs_of, train_job
from postern.runner.outcomes import StageFailed, describe, failed_job, in_stage, stops_run
from postern.runner.progress import Matrix

UNITS = {"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30,
         "TiB": 2**40}


def memory_bytes(text: str) -> int:
    """ "64GB" -> 64e9 bytes ("GiB" for powers of two)."""
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?", text.strip()).groups()
    return int(float(number) * UNITS[unit or ""])


def api_backed(exp: Experiment, stage: str) -> bool:
    """The stage's work happens behind an API (it waits on HTTP calls and needs no GPU)."""
    return exp.train.backend == "openai" if stage == "train" else exp.api_models


def task_options(exp: Experiment, stage: str, cluster_gpus: float) -> dict:
    """The Ray options of one stage's tasks: resources from the file, retries of a worker that died."""
    res = getattr(exp.resources, stage)
    if api_backed(exp, stage):
        gpus = 0
    else:
        gpus = res.num_gpus if res.num_gpus is not None else (1 if cluster_gpus else 0)
    options = {"num_cpus": res.num_cpus, "num_gpus": gpus, "max_retries": exp.resources.max_retries,
               "retry_exceptions": False}
    if res.memory:
        options["memory"] = memory_bytes(res.memory)
    if res.custom:
        options["resources"] = dict(res.custom)
    return options


def trains(exp: Experiment, job: Job) -> bool:
    return job.condition != BASE and not exp.conditions[job.condition].evaluation_only


def _train_task(exp: Experiment, run_dir: Path, job: Job, *upstream: dict) -> dict:
    """Dataset + training of one job in a Ray worker. `upstream`: the trained models this job needs (Ray passes
    them once their tasks have finished; the training itself finds them in the cache)."""
    _event_logger(run_dir, job)({"stage": "train", "status": "started"})
    _share_gpu()
    return in_stage("train", train_job, exp, run_dir, job)


def _share_gpu() -> None:
    """A task holding a fraction of a GPU (num_gpus = 0.25) sizes its micro-batch to that share of the memory."""
    import os

    import ray

    gpus = ray.get_runtime_context().get_assigned_resources().get("GPU", 0)
    if gpus:
        os.environ["POSTERN_GPU_SHARE"] = str(min(1.0, gpus))


def _evaluate_task(exp: Experiment, run_dir: Path, job: Job, trained: dict) -> dict:
    _event_logger(run_dir, job)({"stage": "evaluate", "status": "started"})
    return in_stage("evaluate", evaluate_job, exp, run_dir, job, trained)


def connect(address: str | None):
    """Ray, joined to `address`; without one, a cluster this process already joined, else a new local one.
    Returns (ray, started_here)."""
    try:
        import ray
    except ImportError:
        raise PosternError('executor = "ray" needs Ray: pip install "postern[ray]"') from None
    if ray.is_initialized():
        return ray, False
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except ConnectionError as e:
        raise PosternError(f"--address {address}: no Ray cluster there ({e}); start one with `ray start --head` "
                           "or leave the address out for a local one") from None
    return ray, True


def _sees(path: str, token: str) -> tuple[str, bool]:
    import socket

    probe = Path(path)
    return socket.gethostname(), probe.is_file() and probe.read_text() == token


def check_shared_folder(ray, run_dir: Path, nodes: list[dict] | None = None) -> None:
    """Every node sees the run folder at the same path (a probe file written here is read by a task on each
    node); else stop before any work. `nodes`: Ray's node records (default: every live node on another host)."""
    import uuid

    if nodes is None:
        here = ray.util.get_node_ip_address()
        nodes = [n for n in ray.nodes() if n["Alive"] and n["NodeManagerAddress"] != here]
    if not nodes:
        return
    token = uuid.uuid4().hex
    probe = Path(run_dir) / f".shared-probe-{token}"
    probe.write_text(token)
    try:
        sees = ray.remote(num_cpus=0, max_retries=0)(_sees)
        answers = ray.get([sees.options(resources={f"node:{n['NodeManagerAddress']}": 0.001}).remote(str(probe), token)
                           for n in nodes], timeout=300)
    finally:
        probe.unlink(missing_ok=True)
    blind = [host for host, ok in answers if not ok]
    if blind:
        raise PosternError(f"the run folder {run_dir} is not visible from node(s) {', '.join(blind)}: put it on "
                           "storage every node mounts at the same path (NFS, Lustre) and give that path as --out; "
                           "see docs/cluster.md")


def run_all_jobs_ray(exp: Experiment, run_dir: Path, console: Console | None = None,
                     needs: dict[Job, list[Job]] | None = None) -> list[dict]:
    """Every job's result in job order (a `failed_job` record for a job that failed for good), computed by Ray
    tasks. `needs`: the jobs whose trained model each job's training needs (default: none)."""
    ray, started_here = connect(exp.address)
    try:
        check_shared_folder(ray, Path(run_dir))
        return _schedule(ray, exp, Path(run_dir), console or Console(), needs or {})
    finally:
        if started_here:
            ray.shutdown()


class _Scheduler:
    def __init__(self, ray, exp: Experiment, run_dir: Path, needs: dict[Job, list[Job]]):
        gpus = ray.cluster_resources().get("GPU", 0)
        self.ray, self.exp, self.run_dir, self.needs = ray, exp, run_dir, needs
        self.exp_ref = ray.put(exp)
        # options given to ray.remote itself: a task holding a GPU then gets a fresh worker process (max_calls=1),
        # so the GPU memory a finished stage cached (torch's allocator, a vLLM engine) goes back for the next
        self.remote = {stage: ray.remote(**task_options(exp, stage, gpus), name=f"postern-{stage}")(fn)
                       for stage, fn in (("train", _train_task), ("evaluate", _evaluate_task))}
        self.limit = {stage: exp.resources.api_in_flight if api_backed(exp, stage) else float("inf")
                      for stage in self.remote}
        self.jobs = jobs_of(exp)
        self.matrix = Matrix(self.jobs)
        self.to_train = [job for job in self.jobs if trains(exp, job)]
        self.to_evaluate: list[Job] = []
        self.train_refs: dict[Job, Any] = {}
        self.in_flight: dict[Any, tuple[Job, str]] = {}
        self.results: dict[Job, dict] = {}
        self.events_read = 0

    def running(self, stage: str) -> int:
        return sum(s == stage for _, s in self.in_flight.values())

    def fail(self, job: Job, stage: str, error: BaseException | str) -> None:
        record = failed_job(job.condition, job.seed, error, stage)
        if isinstance(error, str):
            record["error"] = error
        self.results[job] = record
        self.matrix.set(job, stage, "failed")
        if stage == "train":
            self.matrix.set(job, "evaluate", "skipped")

    def start_untrained(self) -> None:
        """The base model and evaluation-only models: nothing to train, their evaluation is queued at once."""
        for job in self.jobs:
            if trains(self.exp, job):
                continue
            self.matrix.set(job, "train", "skipped")
            try:
                self.train_refs[job] = self.ray.put(in_stage("train", train_job, self.exp, self.run_dir, job))
                self.to_evaluate.append(job)
            except StageFailed as e:
                self.fail(job, "train", e)

    @staticmethod
    def _needs_failed(upstream: list[Job]) -> str:
        return "needs " + ", ".join(f"{u.condition} seed {u.seed}" for u in upstream) + ", which failed"

    def _errored(self, job: Job) -> bool:
        """Did `job`'s training fail? (Ray hands a failed upstream's error to the tasks that need it.)"""
        if job not in self.train_refs:
            return bool(self.results.get(job, {}).get("failed"))
        try:
            self.ray.get(self.train_refs[job], timeout=0)
        except Exception:  # noqa: BLE001
            return True
        return False

    def submit(self) -> None:
        for job in list(self.to_train):
            if self.running("train") >= self.limit["train"]:
                break
            upstream = self.needs.get(job, [])
            failed = [u for u in upstream if self.results.get(u, {}).get("failed")]
            if failed:
                self.to_train.remove(job)
                self.fail(job, "train", self._needs_failed(failed))
                continue
            if any(u not in self.train_refs for u in upstream):
                continue  # an upstream job is not submitted yet
            ref = self.remote["train"].remote(self.exp_ref, self.run_dir, job, *(self.train_refs[u] for u in upstream))
            self.train_refs[job], self.in_flight[ref] = ref, (job, "train")
            self.to_train.remove(job)
        while self.to_evaluate and self.running("evaluate") < self.limit["evaluate"]:
            job = self.to_evaluate.pop(0)
            ref = self.remote["evaluate"].remote(self.exp_ref, self.run_dir, job, self.train_refs[job])
            self.in_flight[ref] = (job, "evaluate")

    def collect(self, timeout: float) -> None:
        ready, _ = self.ray.wait(list(self.in_flight), num_returns=1, timeout=timeout)
        for ref in ready:
            job, stage = self.in_flight.pop(ref)
            try:
                result = self.ray.get(ref)
            except self.ray.exceptions.RayTaskError as e:
                if stops_run(e.cause):
                    for other in self.in_flight:
                        self.ray.cancel(other)
                    raise e.cause from None
                failed = [u for u in self.needs.get(job, []) if stage == "train" and self._errored(u)]
                self.fail(job, stage, self._needs_failed(failed) if failed else
                          e.cause if isinstance(e.cause, BaseException) else describe(e))
                continue
            except self.ray.exceptions.RayError as e:  # the worker died more often than max_retries allows
                self.fail(job, stage, e)
                continue
            self.matrix.set(job, stage, "done")
            if stage == "train":
                self.to_evaluate.append(job)
            else:
                self.results[job] = result

    def read_events(self) -> None:
        """Stages that started since the last look (the workers log them to events.jsonl), with their node."""
        path = self.run_dir / "events.jsonl"
        if not path.exists():
            return
        with path.open("rb") as f:
            f.seek(self.events_read)
            chunk = f.read()
        complete = chunk[:chunk.rfind(b"\n") + 1]
        self.events_read += len(complete)
        for line in complete.decode().splitlines():
            event = json.loads(line)
            if event.get("status") == "started":
                job = Job(event["condition"], event["seed"])
                self.matrix.set(job, event["stage"], "running", event.get("node") or event.get("host"))

    def unfinished(self) -> bool:
        return bool(self.to_train or self.to_evaluate or self.in_flight)


def _schedule(ray, exp: Experiment, run_dir: Path, console: Console, needs: dict[Job, list[Job]]) -> list[dict]:
    s = _Scheduler(ray, exp, run_dir, needs)
    path = run_dir / "events.jsonl"
    s.events_read = path.stat().st_size if path.exists() else 0
    title = f"{exp.name}: {len(s.jobs)} jobs on Ray ({ray.cluster_resources().get('CPU', 0):g} CPUs, " \
            f"{ray.cluster_resources().get('GPU', 0):g} GPUs)"
    with Live(s.matrix.table(title), console=console, refresh_per_second=2) as live:
        s.start_untrained()
        while s.unfinished():
            s.submit()
            if not s.in_flight:
                raise PosternError("jobs wait on each other in a cycle: " +
                                   ", ".join(f"{j.condition} seed {j.seed}" for j in s.to_train))
            s.collect(timeout=1.0)
            s.read_events()
            live.update(s.matrix.table(title))
        s.read_events()  # the nodes of stages that finished between two looks
        live.update(s.matrix.table(title))
    console.line()
    return [s.results[job] for job in s.jobs]
