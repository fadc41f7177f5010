"""The call machinery every OpenAI-compatible client in postern shares: clients with the library's own
retries off, error classes, retries with exponential backoff and jitter (async and blocking), error
descriptions, token and cost accounting, sync-over-async.

A failed call is one of three kinds (`classify`). Transient (429, 408, 409, 5xx, timeouts, dropped
connections, unparseable answers): retried with backoff, a 429's Retry-After honoured. Permanent (400,
404, 422, any other 4xx): not retried, `APICallError`; that item fails, the run goes on. Fatal (401/403,
a refused connection before any call succeeded, a 200 answer without the logprobs asked for): nothing
else can succeed either, so `FatalAPIError`, a `PosternError` saying what to do, is raised at once.

The openai package is imported inside functions so that importing this module stays cheap.
"""

import asyncio
import concurrent.futures
import os
import random
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Coroutine, Iterable, TypeVar

from postern.core.errors import PosternError

T = TypeVar("T")


TRANSIENT, PERMANENT, FATAL = "transient", "permanent", "fatal"


class GarbageResponse(Exception):
    """The endpoint answered 200 but without an answer (no choices, no text): worth another try."""


class NoLogprobs(Exception):
    """The endpoint answered 200 without the logprobs asked for: it does not support them (fatal)."""


class APICallError(RuntimeError):
    """One call failed for good: a permanent error, or every attempt used up. Its message is the reason."""


class FatalAPIError(PosternError):
    """A failure no other call can escape (rejected key, nothing listening, no logprobs): stop the run."""


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input_per_mtok: float
    output_per_mtok: float


# List prices when this was written; pass `price=` to override, or for any other model.
KNOWN_PRICES: dict[str, Price] = {
    "gpt-4o-2024-08-06": Price(2.50, 10.00),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4.1-2025-04-14": Price(2.00, 8.00),
    "gpt-4.1-mini-2025-04-14": Price(0.40, 1.60),
}


@dataclass
class Usage:
    """Running totals for one sampler or judge. Cache hits cost nothing and are counted apart."""

    price: Price | None = None
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    cache_hits: int = 0

    def add(self, usage: Any) -> None:
        """Count one successful call and its `usage` block (an object or dict; may be None)."""
        self.calls += 1
        if usage is None:
            return
        get = usage.get if isinstance(usage, dict) else lambda k: getattr(usage, k, None)
        self.prompt_tokens += int(get("prompt_tokens") or 0)
        self.completion_tokens += int(get("completion_tokens") or 0)

    @property
    def cost_usd(self) -> float | None:
        if self.price is None:
            return None
        price = self.price
        return (self.prompt_tokens * price.input_per_mtok + self.completion_tokens * price.output_per_mtok) / 1e6

    def as_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "retries": self.retries, "cache_hits": self.cache_hits, "cost_usd": self.cost_usd}


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: attempt k waits base * 2**k (capped), of which `jitter` is random.

    A server's Retry-After header raises the wait to at least what it asks (still capped).
    """

    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 60.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        d = min(self.max_delay, self.base_delay * 2**attempt)
        d = d * (1 - self.jitter) + d * self.jitter * rng.random()
        if retry_after is not None:
            d = max(d, min(retry_after, self.max_delay))
        return d


def retry_policy(settings: Any) -> RetryPolicy:
    """The policy of a [sample] or [judge] section: `max_retries` retries, the first after `retry_base_s`."""
    return RetryPolicy(max_attempts=settings.max_retries + 1, base_delay=settings.retry_base_s)


def _cannot_connect(exc: BaseException) -> bool:
    """The connection itself failed (refused, unknown host): an httpx ConnectError somewhere in the chain."""
    while exc is not None:
        if type(exc).__name__ == "ConnectError":
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def classify(exc: BaseException, connected: bool = True) -> str:
    """TRANSIENT, PERMANENT or FATAL (see the module docstring). `connected`: a call of this client has
    succeeded, so a refused connection is a server restarting (transient), not a wrong address (fatal)."""
    import openai

    if isinstance(exc, NoLogprobs):
        return FATAL
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code in (401, 403):
            return FATAL
        return TRANSIENT if exc.status_code in (408, 409, 429) or exc.status_code >= 500 else PERMANENT
    if isinstance(exc, openai.APIConnectionError) and not connected and _cannot_connect(exc):
        return FATAL
    if isinstance(exc, (GarbageResponse, ValueError, asyncio.TimeoutError, openai.APIConnectionError,
                        openai.APIResponseValidationError)):
        return TRANSIENT  # APIConnectionError includes APITimeoutError; JSONDecodeError is a ValueError
    return PERMANENT


def is_retryable(exc: BaseException) -> bool:
    return classify(exc) == TRANSIENT


def retry_after(exc: BaseException) -> float | None:
    """The seconds a response's Retry-After header asks for (None when absent or an HTTP date)."""
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def describe_error(e: BaseException) -> str:
    """A one-line account of a failed call: the server's own message for an HTTP error."""
    import openai

    if isinstance(e, openai.APITimeoutError):
        return "request timed out"
    if isinstance(e, openai.APIStatusError):
        body = e.body if isinstance(e.body, dict) else {}
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        message = inner.get("message")
        return f"HTTP {e.status_code}: {message or e.message}"
    return f"{type(e).__name__}: {e}"


def fatal_error(e: BaseException, section: str) -> FatalAPIError:
    """The one-line error for a fatal failure; `section` ("[judge]", "[sample]") names the settings."""
    import openai

    url = getattr(getattr(e, "request", None), "url", "the endpoint")
    if isinstance(e, NoLogprobs):
        message = f"{e}; use a model/endpoint that supports top_logprobs ({section} model, base_url)"
    elif isinstance(e, openai.APIStatusError):
        message = (f"{url} rejected the request ({describe_error(e)}); set OPENAI_API_KEY to a key this endpoint "
                   f"accepts, with access to the model")
    else:
        message = (f"cannot connect to {url} ({describe_error(e.__cause__ or e)}); start the server or correct "
                   f"{section} base_url")
    return FatalAPIError(f"{section} {message}".strip())


def _wait_before_retry(e: Exception, attempt: int, policy: RetryPolicy, usage: Usage | None, rng: random.Random,
                       section: str) -> float:
    """Seconds to wait after attempt `attempt` failed with `e`; FatalAPIError or APICallError when there is no
    next attempt. Without `usage` nothing tells whether a call succeeded: a refused connection is retried."""
    kind = classify(e, connected=usage is None or usage.calls > 0)
    if kind == FATAL:
        raise fatal_error(e, section) from e
    if kind == PERMANENT:
        raise APICallError(f"{describe_error(e)} (not retried)") from e
    if attempt == policy.max_attempts - 1:
        raise APICallError(f"{describe_error(e)} (gave up after {policy.max_attempts} attempts)") from e
    if usage is not None:
        usage.retries += 1
    return policy.delay(attempt, rng, retry_after(e))


async def call_with_retries(
    fn: Callable[[], Awaitable[T]], policy: RetryPolicy, usage: Usage | None = None, rng: random.Random | None = None,
    section: str = "",
) -> T:
    """Await `fn()` until it succeeds, retrying transient failures; raise `APICallError` for a permanent one or
    when the attempts are used up, `FatalAPIError` (its message names `section`'s settings) for a fatal one."""
    rng = rng or random.Random()
    for attempt in range(policy.max_attempts):
        try:
            return await fn()
        except Exception as e:
            await asyncio.sleep(_wait_before_retry(e, attempt, policy, usage, rng, section))
    raise AssertionError("unreachable")


def call_with_retries_sync(
    fn: Callable[[], T], policy: RetryPolicy, usage: Usage | None = None, rng: random.Random | None = None,
    on_retry: Callable[[Exception, int, float], None] | None = None, section: str = "",
) -> T:
    """`call_with_retries` for blocking clients. `on_retry(error, n, delay)` is called before the n-th retry
    (n from 1) sleeps `delay` seconds. The error raised has the last failure as its `__cause__`."""
    rng = rng or random.Random()
    for attempt in range(policy.max_attempts):
        try:
            return fn()
        except Exception as e:
            delay = _wait_before_retry(e, attempt, policy, usage, rng, section)
            if on_retry is not None:
                on_retry(e, attempt + 1, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _api_key(base_url: str | None, api_key: str | None) -> str:
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if key is not None:
        return key
    if base_url is None:
        raise PosternError("no API key: set OPENAI_API_KEY, or pass api_key=, or point base_url= at a local server")
    return "EMPTY"  # local OpenAI-compatible servers (vLLM, llama.cpp) usually ignore the key


def make_client(base_url: str | None, api_key: str | None, timeout: float) -> Any:
    """An OpenAI (blocking) client with the library's own retries off (postern retries itself)."""
    from openai import OpenAI

    return OpenAI(base_url=base_url, api_key=_api_key(base_url, api_key), max_retries=0, timeout=timeout)


def make_async_client(base_url: str | None, api_key: str | None, timeout: float) -> Any:
    """An AsyncOpenAI client with the library's own retries off (postern retries itself)."""
    from openai import AsyncOpenAI

    return AsyncOpenAI(base_url=base_url, api_key=_api_key(base_url, api_key), max_retries=0, timeout=timeout)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code, also when an event loop is already
    running in this thread (a notebook): then it runs on a fresh loop in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def gather_or_cancel(coros: Iterable[Awaitable[T]]) -> list[T]:
    """Like asyncio.gather, but the first error cancels the calls still running, then is raised. (Calls catch
    their own per-item failures; what escapes, a fatal error, means no other call can succeed.)"""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
