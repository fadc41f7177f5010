"""Fine-tuning through an OpenAI-compatible API: validate, upload, create the job, poll, resume.

Everything that creates a server-side object (the uploaded file, the job) is recorded in
`out_dir/api_job.json` the moment it exists (and intent to create a job before the request),
so a rerun after a crash or a timeout resumes the same job instead of uploading or paying twice.
The client is used with `max_retries=0`: retries (429, 5xx, timeouts) are ours, logged and testable.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

from postern.core.errors import PosternError
from postern.core.hashing import content_hash, file_hash
from postern.core.models import ModelRef
from postern.core.openai_client import (
    APICallError, FatalAPIError, RetryPolicy, call_with_retries_sync, describe_error, is_retryable, make_client,
)
from postern.core.registry import register
from postern.core.versions import library_versions
from postern.data.jsonl import read_chat_jsonl

if TYPE_CHECKING:
    from openai import OpenAI
    from postern.train._types import TrainConfig
    from rich.console import Console
    from rich.status import Status

STATE_FILE = "api_job.json"
RUN_CARD = "run_card.json"
TERMINAL = ("succeeded", "failed", "cancelled")
KEY_METADATA = "postern_key"  # job metadata tag used to find a job whose create response was lost

T = TypeVar("T")
Auto = Literal["auto"]


class ApiTrainConfig(BaseModel):
    """Settings for one API fine-tuning job; `job_spec()` is the part that defines the job."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_model: str = Field(min_length=1)
    epochs: PositiveInt | Auto = "auto"
    batch_size: PositiveInt | Auto = "auto"
    learning_rate_multiplier: PositiveFloat | Auto = "auto"
    suffix: str | None = Field(None, max_length=64)
    seed: int | None = None
    base_url: str | None = None  # None: OPENAI_BASE_URL or the OpenAI API
    api_key_env: str = "OPENAI_API_KEY"
    # dataset checks (OpenAI's limits by default)
    min_examples: PositiveInt = 10
    max_file_bytes: PositiveInt = 512 * 1024**2
    require_assistant_last: bool = True
    # polling the job
    poll_interval_s: PositiveFloat = 15.0
    poll_backoff: float = Field(1.5, ge=1.0)
    poll_max_interval_s: PositiveFloat = 300.0
    jitter: float = Field(0.1, ge=0.0, le=1.0)  # +- fraction applied to every wait
    max_wait_s: PositiveFloat = 48 * 3600.0  # per call; the job keeps running and a rerun resumes it
    # each HTTP request
    request_timeout_s: PositiveFloat = 60.0
    max_retries: int = Field(8, ge=0)
    retry_base_s: PositiveFloat = 1.0
    retry_max_s: PositiveFloat = 60.0

    def job_spec(self) -> dict[str, Any]:
        return self.model_dump(
            mode="json",
            include={"base_model", "epochs", "batch_size", "learning_rate_multiplier", "suffix", "seed", "base_url"},
        )

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.max_retries + 1, base_delay=self.retry_base_s, max_delay=self.retry_max_s,
                           jitter=self.jitter)

    def hyperparameters(self) -> dict[str, Any]:
        """Supervised hyper-parameters to send; "auto" ones are left to the provider."""
        hp = {"n_epochs": self.epochs, "batch_size": self.batch_size, "learning_rate_multiplier": self.learning_rate_multiplier}
        return {k: v for k, v in hp.items() if v != "auto"}


@dataclass(frozen=True)
class ApiTrainResult:
    model_id: str
    job_id: str
    file_id: str
    status: str
    data_hash: str
    key: str
    out_dir: Path
    resumed: bool  # True when this call picked up a job or upload recorded by an earlier call


def validate_dataset(path: str | Path, config: ApiTrainConfig) -> int:
    """Check a chat JSONL file against the API's requirements; return the number of examples."""
    path = Path(path)
    rows = read_chat_jsonl(path, require_assistant_last=config.require_assistant_last)
    if len(rows) < config.min_examples:
        raise PosternError(
            f"{path}: {len(rows)} conversations; the fine-tuning API needs at least {config.min_examples} (setting min_examples)"
        )
    size = path.stat().st_size
    if size > config.max_file_bytes:
        raise PosternError(f"{path}: {size} bytes, over the upload limit of {config.max_file_bytes} (setting max_file_bytes)")
    return len(rows)


def job_key(config: ApiTrainConfig, data_hash: str) -> str:
    return content_hash({"data": data_hash, "job": config.job_spec()})


def _client(config: ApiTrainConfig) -> OpenAI:
    api_key = os.environ.get(config.api_key_env)
    if not api_key:
        raise PosternError(f"${config.api_key_env} is not set; export your API key (setting api_key_env names the variable)")
    return make_client(config.base_url, api_key, config.request_timeout_s)


def train_api(
    config: ApiTrainConfig,
    dataset_path: str | Path,
    out_dir: str | Path,
    client: OpenAI | None = None,
    *,
    console: Console | None = None,
) -> ApiTrainResult:
    """Fine-tune `config.base_model` on a chat JSONL file; resume the recorded job if there is one."""
    from rich.console import Console

    dataset_path, out_dir = Path(dataset_path), Path(out_dir)
    n_examples = validate_dataset(dataset_path, config)
    data_hash = file_hash(dataset_path)
    key = job_key(config, data_hash)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _lock(out_dir):
        state = _load_state(out_dir, key)
        if state is not None and state.get("status") == "succeeded":
            return _result(state, out_dir, resumed=True)
        resumed = state is not None and bool(state.get("file_id"))
        if state is None:
            state = _new_state(config, key, data_hash, dataset_path, n_examples)
        own_client = client is None
        api = _client(config) if client is None else client.with_options(max_retries=0)
        console = console or Console(stderr=True)
        try:
            with console.status("fine-tuning: starting") as status:
                job = _Session(config, api, state, out_dir, console, status).run(dataset_path)
        finally:
            if own_client:
                api.close()
    return _result(state, out_dir, resumed=resumed, model_id=job.fine_tuned_model)


@register("trainer", "openai")
def train_openai(base: ModelRef, dataset: Path, out_dir: Path, config: TrainConfig,
                 on_progress: Any = None) -> ModelRef:
    """The trainer for `[train] backend = "openai"`: a fine-tuning job on `base.name`, run quietly. Its
    state (upload, job id) is kept in `out_dir`, which the runner hands back after a crash (`resumable`)."""
    from rich.console import Console

    if config.epochs != int(config.epochs):
        raise PosternError(f"[train] epochs = {config.epochs:g}: the fine-tuning API takes whole epochs")
    settings = ApiTrainConfig(
        base_model=base.name, epochs=int(config.epochs), batch_size=config.batch_size, seed=config.seed,
        learning_rate_multiplier=config.learning_rate_multiplier or "auto", base_url=config.base_url,
    )
    result = train_api(settings, dataset, out_dir, console=Console(quiet=True))
    return ModelRef(result.model_id, api=True)


train_openai.resumable = True


class _Session:
    """One call's work on the state of one job; every change is saved to api_job.json at once."""

    def __init__(self, config: ApiTrainConfig, client: OpenAI, state: dict[str, Any], out_dir: Path,
                 console: Console, status: Status):
        self.config, self.client, self.state, self.out_dir = config, client, state, out_dir
        self.console, self.status = console, status
        self.rng = random.Random()

    # -- flow

    def run(self, dataset_path: Path) -> Any:
        if self.state.get("status") in ("failed", "cancelled"):
            self._archive_failed_job()
        if self.state.get("job_id"):
            self.log("resumed", job_id=self.state["job_id"])
        else:
            if not self.state.get("file_id"):
                self.upload(dataset_path)
            self.create_job()
        job = self.poll(self.state["job_id"])
        return self.finish(job)

    def upload(self, path: Path) -> None:
        data = path.read_bytes()
        self.show(f"uploading {path.name} ({len(data)} bytes)")
        f = self.call(
            f"uploading {path.name}",
            lambda: self.client.files.create(file=(path.name, data, "application/jsonl"), purpose="fine-tune"),
        )
        self.state["file_id"] = f.id
        self.log("uploaded", file_id=f.id, bytes=len(data))

    def create_job(self) -> None:
        job = self.find_job() if self.state.get("create_attempted") else None
        if job is None:
            self.state["create_attempted"] = True
            self.save()
            self.show("creating the fine-tuning job")
            job = self.call("creating the fine-tuning job", lambda: self.client.fine_tuning.jobs.create(**self._create_params()),
                            on_retry=self.find_job)
        self.state["job_id"], self.state["status"] = job.id, job.status
        self.state["job_created_at"] = job.created_at
        self.log("job_created", job_id=job.id, status=job.status)

    def find_job(self) -> Any | None:
        """The job an earlier create made if its response was lost (best effort: None if unsure)."""
        import openai

        try:
            page = self.client.fine_tuning.jobs.list(metadata={KEY_METADATA: self.state["key"]}, limit=20)
        except openai.APIError:
            return None
        for job in page.data:
            if (job.metadata or {}).get(KEY_METADATA) == self.state["key"] and job.training_file == self.state["file_id"]:
                self.log("job_found", job_id=job.id, status=job.status)
                return job
        return None

    def poll(self, job_id: str) -> Any:
        interval = self.config.poll_interval_s
        deadline = time.monotonic() + self.config.max_wait_s
        while True:
            job = self.call(f"checking job {job_id}", lambda: self.client.fine_tuning.jobs.retrieve(job_id))
            self._observe(job)
            if job.status in TERMINAL:
                return job
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.log("gave_up_waiting", job_id=job_id, status=job.status)
                raise PosternError(
                    f"fine-tuning job {job_id} is still {job.status} after {self.config.max_wait_s:g} s (setting max_wait_s); "
                    f"it keeps running and its id is saved in {self.out_dir / STATE_FILE}: rerun to resume polling"
                )
            time.sleep(min(self._jittered(interval), remaining))
            interval = min(interval * self.config.poll_backoff, self.config.poll_max_interval_s)

    def _jittered(self, seconds: float) -> float:
        return max(0.0, seconds * (1 + self.rng.uniform(-self.config.jitter, self.config.jitter)))

    def finish(self, job: Any) -> Any:
        self.state["finished_at"] = time.time()
        self.state["job_finished_at"] = job.finished_at
        self.state["trained_tokens"] = job.trained_tokens
        self.state["fine_tuned_model"] = job.fine_tuned_model
        if job.status == "succeeded" and not job.fine_tuned_model:
            self.state["status"] = "failed"
            self.state["error"] = {"code": "no_model", "message": "the job succeeded but reported no fine_tuned_model"}
        elif job.status != "succeeded":
            err = job.error
            self.state["error"] = (
                {"code": err.code, "message": err.message, "param": err.param} if err is not None
                else {"code": job.status, "message": f"the job was {job.status} (by a user or the provider)"}
            )
        self.log(self.state["status"], job_id=job.id, fine_tuned_model=job.fine_tuned_model, error=self.state.get("error"))
        self._write_run_card(job)
        if self.state["status"] != "succeeded":
            e = self.state["error"]
            raise PosternError(f"fine-tuning job {job.id} {self.state['status']}: {e['message']} ({e['code']})")
        self.say(f"fine-tuned model: {job.fine_tuned_model}")
        return job

    # -- requests

    def call(self, what: str, fn: Callable[[], T], *, on_retry: Callable[[], T | None] | None = None) -> T:
        """Run one request, retrying what `is_retryable` allows with backoff. Before each retry `on_retry()` may
        return what the failed request made after all (its response was lost): then that is the answer."""
        attempts = itertools.count()

        def attempt() -> T:
            if next(attempts) > 0 and on_retry is not None and (found := on_retry()) is not None:
                return found
            return fn()

        def report(e: Exception, n: int, delay: float) -> None:
            self.log("retry", what=what, error=describe_error(e), attempt=n, delay_s=round(delay, 3))
            self.show(f"{what}: {describe_error(e)}; retrying in {delay:.1f} s")

        try:
            return call_with_retries_sync(attempt, self.config.retry_policy(), rng=self.rng, on_retry=report)
        except (APICallError, FatalAPIError) as e:  # the job's own messages (a key, a saved job to resume)
            raise self._error(what, e.__cause__) from e.__cause__

    def _error(self, what: str, e: BaseException) -> PosternError:
        import openai

        job_id = self.state.get("job_id")
        saved = f"job {job_id}" if job_id else f"upload {self.state['file_id']}" if self.state.get("file_id") else None
        hint = f"; {saved} is saved in {self.out_dir / STATE_FILE}: rerun to resume" if saved else ""
        if isinstance(e, openai.AuthenticationError):
            return PosternError(f"{what}: the API rejected the key (HTTP 401); check ${self.config.api_key_env}")
        retries = f" (gave up after {self.config.max_retries} retries)" if is_retryable(e) else ""
        return PosternError(f"{what} failed: {describe_error(e)}{retries}{hint}")

    def _create_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.config.base_model,
            "training_file": self.state["file_id"],
            "method": {"type": "supervised", "supervised": {"hyperparameters": self.config.hyperparameters()}},
            "metadata": {KEY_METADATA: self.state["key"]},
        }
        if self.config.suffix is not None:
            params["suffix"] = self.config.suffix
        if self.config.seed is not None:
            params["seed"] = self.config.seed
        return params

    # -- state

    def _observe(self, job: Any) -> None:
        elapsed = time.time() - self.state["started_at"]
        self.show(f"job {job.id}: {job.status} ({elapsed:.0f} s)")
        if job.status != self.state.get("status"):
            self.state["status"] = job.status
            self.log("status", job_id=job.id, status=job.status)
            self.say(f"job {job.id}: {job.status}")

    def _archive_failed_job(self) -> None:
        """A rerun after a failed/cancelled job starts a new job on the same uploaded file."""
        old = {k: self.state.pop(k, None) for k in ("job_id", "status", "error", "fine_tuned_model", "finished_at")}
        self.state.pop("create_attempted", None)
        self.state["started_at"] = time.time()
        self.state.setdefault("previous_jobs", []).append(old)
        self.log("retrying_failed_job", previous_job_id=old["job_id"])

    def show(self, text: str) -> None:
        from rich.text import Text

        self.status.update(Text(text))  # plain text: no markup or emoji parsing

    def say(self, text: str) -> None:
        self.console.print(text, markup=False, emoji=False, highlight=False)  # model ids look like ":emoji:" codes

    def log(self, event: str, **fields: Any) -> None:
        self.state["events"].append({"t": round(time.time(), 3), "event": event, **fields})
        self.save()

    def save(self) -> None:
        _write_json(self.out_dir / STATE_FILE, self.state)

    def _write_run_card(self, job: Any) -> None:
        s = self.state
        card = {
            "backend": "openai-api",
            "key": s["key"],
            "data_hash": s["data_hash"],
            "dataset": s["dataset"],
            "n_examples": s["n_examples"],
            "base_model": self.config.base_model,
            "base_url": self.config.base_url,
            "hyperparameters": {"requested": self.config.hyperparameters(), "reported": _reported_hyperparameters(job)},
            "suffix": self.config.suffix,
            "seed": getattr(job, "seed", None),
            "file_id": s["file_id"],
            "job_id": job.id,
            "status": s["status"],
            "fine_tuned_model": job.fine_tuned_model,
            "error": s.get("error"),
            "trained_tokens": job.trained_tokens,
            "timings": {
                "started_at": s["started_at"],
                "job_created_at": s.get("job_created_at"),
                "job_finished_at": job.finished_at,
                "train_seconds": job.finished_at - job.created_at if job.finished_at and job.created_at else None,
                "finished_at": s["finished_at"],
                "wall_seconds": round(s["finished_at"] - s["started_at"], 3),
            },
            "versions": library_versions(("postern", "openai", "pydantic", "httpx2")),
        }
        _write_json(self.out_dir / RUN_CARD, card)


# -- helpers


def _reported_hyperparameters(job: Any) -> dict[str, Any] | None:
    method = getattr(job, "method", None)
    hp = getattr(getattr(method, "supervised", None), "hyperparameters", None) or getattr(job, "hyperparameters", None)
    return hp.model_dump(exclude_none=True) if hp is not None else None


def _new_state(config: ApiTrainConfig, key: str, data_hash: str, dataset: Path, n_examples: int) -> dict[str, Any]:
    return {
        "key": key,
        "data_hash": data_hash,
        "dataset": str(dataset.resolve()),
        "n_examples": n_examples,
        "spec": config.job_spec(),
        "started_at": time.time(),
        "file_id": None,
        "job_id": None,
        "status": None,
        "events": [],
    }


def _load_state(out_dir: Path, key: str) -> dict[str, Any] | None:
    path = out_dir / STATE_FILE
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise PosternError(f"{path}: not valid JSON ({e.msg}); fix or remove it") from e
    if state.get("key") != key:
        raise PosternError(
            f"{path} records job {state.get('job_id') or '(not created)'} for a different dataset or configuration "
            f"(key {state.get('key')}, now {key}); use another out_dir, or remove the file to start over"
        )
    return state


def _result(state: dict[str, Any], out_dir: Path, resumed: bool, model_id: str | None = None) -> ApiTrainResult:
    return ApiTrainResult(
        model_id=model_id or state["fine_tuned_model"],
        job_id=state["job_id"],
        file_id=state["file_id"],
        status=state["status"],
        data_hash=state["data_hash"],
        key=state["key"],
        out_dir=out_dir,
        resumed=resumed,
    )


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


@contextlib.contextmanager
def _lock(out_dir: Path) -> Iterator[None]:
    """Stop two processes from driving the same job folder at once (and creating two jobs)."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    with open(out_dir / ".api_job.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise PosternError(f"{out_dir}: another process is already running this fine-tuning job") from e
        yield
