"""Jobs that fail for good: the stage that failed and its error, so the rest of the matrix still finishes and the
summary lists what is missing (both executors)."""

from typing import Any, Callable

STAGES = ("train", "evaluate")  # dataset + training is one stage, sampling + judging the other


class StageFailed(Exception):
    """A job's stage raised; `error` is the cause in one line. Picklable (process pools, Ray)."""

    def __init__(self, stage: str, error: str):
        super().__init__(stage, error)
        self.stage, self.error = stage, error

    def __str__(self) -> str:
        return f"{self.stage}: {self.error}"


def describe(e: BaseException) -> str:
    """An error in one line: its type and message (a PosternError's message names the file or key)."""
    return f"{type(e).__name__}: {' '.join(str(e).split())}" if str(e) else type(e).__name__


def stops_run(e: BaseException) -> bool:
    """An error no other job can escape either (a rejected API key, nothing listening): the run stops at once."""
    from postern.core.openai_client import FatalAPIError

    return isinstance(e, FatalAPIError)


def in_stage(stage: str, fn: Callable, *args) -> Any:
    """`fn(*args)`, its error (if any) tagged with the stage it failed in, so it fails this job only; errors that
    stop the run (`stops_run`) pass unchanged."""
    try:
        return fn(*args)
    except StageFailed:
        raise
    except Exception as e:  # noqa: BLE001 - any other error fails this job only
        if stops_run(e):
            raise
        raise StageFailed(stage, describe(e)) from e


def failed_job(condition: str, seed: int, error: BaseException, stage: str | None = None) -> dict:
    """The record of a job that failed for good, as summary.json lists it."""
    if isinstance(error, StageFailed):
        stage, message = error.stage, error.error
    else:
        message = describe(error)
    return {"condition": condition, "seed": seed, "stage": stage or "unknown", "error": message, "failed": True}


def split_failed(results: list[dict]) -> tuple[list[dict], list[dict]]:
    """(finished jobs, failed jobs) of a run's job results."""
    return [r for r in results if not r.get("failed")], [r for r in results if r.get("failed")]
