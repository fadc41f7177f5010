"""Sampling from any OpenAI-compatible chat endpoint, and the call machinery the API judge shares:
retries with exponential backoff and jitter, token and cost accounting, sync-over-async.

The openai package is imported inside functions so that importing this module stays cheap.
"""

import asyncio
import concurrent.futures
import json
import os
import random
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Coroutine, Iterable, Mapping, TypeVar

from postern.core.errors import PosternError
from postern.sample._types import Prompt, Sample, SamplingParams

T = TypeVar("T")


class GarbageResponse(Exception):
    """The endpoint answered 200 but without what was asked for (no choices, no logprobs)."""


class APICallError(RuntimeError):
    """A call failed for good: a status that retrying cannot fix, or every attempt used up."""


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


def is_retryable(exc: BaseException) -> bool:
    """429, 5xx, timeouts, dropped connections and unparseable answers are worth another try."""
    import openai

    if isinstance(exc, (GarbageResponse, ValueError, asyncio.TimeoutError)):
        return True  # JSONDecodeError is a ValueError: a body that is not JSON
    if isinstance(exc, (openai.APIConnectionError, openai.APIResponseValidationError)):
        return True  # includes APITimeoutError
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return False


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


async def call_with_retries(
    fn: Callable[[], Awaitable[T]], policy: RetryPolicy, usage: Usage | None = None, rng: random.Random | None = None
) -> T:
    """Await `fn()` until it succeeds, retrying what `is_retryable` allows; raise `APICallError` otherwise."""
    rng = rng or random.Random()
    for attempt in range(policy.max_attempts):
        try:
            return await fn()
        except Exception as e:
            if not is_retryable(e):
                raise APICallError(f"API call failed and retrying will not help: {type(e).__name__}: {e}") from e
            if attempt == policy.max_attempts - 1:
                last = f"{type(e).__name__}: {e}"
                raise APICallError(f"API call failed {policy.max_attempts} times; last error {last}") from e
            if usage is not None:
                usage.retries += 1
            await asyncio.sleep(policy.delay(attempt, rng, _retry_after(e)))
    raise AssertionError("unreachable")


def make_async_client(base_url: str | None, api_key: str | None, timeout: float) -> Any:
    """An AsyncOpenAI client with the library's own retries off (postern retries itself)."""
    from openai import AsyncOpenAI

    key = api_key or os.environ.get("OPENAI_API_KEY")
    if key is None:
        if base_url is None:
            raise PosternError("no API key: set OPENAI_API_KEY, or pass api_key=, or point base_url= at a local server")
        key = "EMPTY"  # local OpenAI-compatible servers (vLLM, llama.cpp) usually ignore the key
    return AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=timeout)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code, also when an event loop is already
    running in this thread (a notebook): then it runs on a fresh loop in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def gather_keeping_going(coros: Iterable[Awaitable[T]]) -> list[T]:
    """Like asyncio.gather, but every call finishes (and is recorded) before the first error is raised."""
    results = await asyncio.gather(*coros, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results  # type: ignore[return-value]


def _json_safe(meta: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(meta), default=str))


@dataclass
class OpenAIChatSampler:
    """Samples answers from an OpenAI-compatible chat endpoint (OpenAI, API fine-tunes, vLLM servers).

    Each sample is its own request with seed `params.seed + index`, recorded on the sample, so a
    resumed run can ask for exactly the missing indices. System prompts in `Prompt.messages` are
    always sent. `token_param` is the request field for the length limit (`max_completion_tokens`
    for models that reject `max_tokens`).
    """

    model: str
    base_url: str | None = None
    api_key: str | None = None
    concurrency: int = 16
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 120.0
    price: Price | None = None
    token_param: str = "max_tokens"
    extra_body: dict[str, Any] | None = None
    usage: Usage = field(init=False)

    def __post_init__(self) -> None:
        self.usage = Usage(price=self.price or KNOWN_PRICES.get(self.model))
        self._rng = random.Random()

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    def sample(
        self,
        prompts: list[Prompt],
        params: SamplingParams,
        *,
        indices: Mapping[str, Iterable[int]] | None = None,
        on_sample: Callable[[Sample], None] | None = None,
    ) -> list[Sample]:
        """`prompt.n` samples per prompt in prompt order (or only `indices[prompt.id]` when given).

        `on_sample` is called as each answer arrives, e.g. to write it to a results store.
        """
        return run_sync(self.asample(prompts, params, indices=indices, on_sample=on_sample))

    async def asample(
        self,
        prompts: list[Prompt],
        params: SamplingParams,
        *,
        indices: Mapping[str, Iterable[int]] | None = None,
        on_sample: Callable[[Sample], None] | None = None,
    ) -> list[Sample]:
        jobs = [(p, i) for p in prompts for i in (sorted(indices.get(p.id, ())) if indices is not None else range(p.n))]
        if not jobs:
            return []
        semaphore = asyncio.Semaphore(self.concurrency)
        client = make_async_client(self.base_url, self.api_key, self.timeout)
        async with client:
            return await gather_keeping_going(self._one(client, semaphore, p, i, params, on_sample) for p, i in jobs)

    async def _one(
        self, client: Any, semaphore: asyncio.Semaphore, prompt: Prompt, index: int, params: SamplingParams,
        on_sample: Callable[[Sample], None] | None,
    ) -> Sample:
        seed = params.seed + index
        request = {
            "model": self.model, "messages": [dict(m) for m in prompt.messages], "temperature": params.temperature,
            "top_p": params.top_p, "seed": seed, "n": 1, self.token_param: params.max_new_tokens,
        }
        if self.extra_body:
            request["extra_body"] = self.extra_body

        async def call() -> Any:
            response = await client.chat.completions.create(**request)
            choices = getattr(response, "choices", None)
            if not choices or choices[0].message is None or choices[0].message.content is None:
                raise GarbageResponse(f"no answer text in the response from {self.model}")
            return response

        async with semaphore:
            response = await call_with_retries(call, self.retry, self.usage, self._rng)
        self.usage.add(response.usage)
        choice = response.choices[0]
        meta = {**_json_safe(prompt.meta), "finish_reason": choice.finish_reason, "model": response.model or self.model}
        sample = Sample(prompt.id, index, choice.message.content, seed, meta)
        if on_sample is not None:
            on_sample(sample)
        return sample
