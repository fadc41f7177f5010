"""Sampling from any OpenAI-compatible chat endpoint; the call machinery is in `postern.core.openai_client`.

The openai package is imported inside functions so that importing this module stays cheap.
"""

import asyncio
import json
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from postern.core.errors import PosternError
from postern.core.openai_client import (
    KNOWN_PRICES, APICallError, GarbageResponse, Price, RetryPolicy, Usage, call_with_retries, gather_or_cancel,
    make_async_client, retry_policy, run_sync,
)
from postern.core.registry import register
from postern.sample._types import Prompt, Sample, SamplingParams

if TYPE_CHECKING:
    from postern.config.schema import SampleConfig
    from postern.core.models import ModelRef


def _json_safe(meta: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(meta), default=str))


@dataclass
class OpenAIChatSampler:
    """Samples answers from an OpenAI-compatible chat endpoint (OpenAI, API fine-tunes, vLLM servers).

    Each sample is its own request with seed `params.seed + index`, recorded on the sample, so a
    resumed run can ask for exactly the missing indices. A sample whose request fails for good (a 400,
    retries used up) is left out and reported to `on_failure`; a fatal failure (a rejected key, no server)
    raises PosternError. System prompts in `Prompt.messages` are always sent. `token_param` is the
    request field for the length limit (`max_completion_tokens` for models that reject `max_tokens`).
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

    def sample(self, prompts: list[Prompt], params: SamplingParams, **kwargs: Any) -> list[Sample]:
        """`prompt.n` samples per prompt in prompt order (or only `indices[prompt.id]` when given).

        `on_sample` is called as each answer arrives, e.g. to write it to a results store;
        `on_failure(prompt_id, index, reason)` for each sample that failed for good (it is not returned).
        """
        return run_sync(self.asample(prompts, params, **kwargs))

    async def asample(
        self,
        prompts: list[Prompt],
        params: SamplingParams,
        *,
        indices: Mapping[str, Iterable[int]] | None = None,
        on_sample: Callable[[Sample], None] | None = None,
        on_failure: Callable[[str, int, str], None] | None = None,
    ) -> list[Sample]:
        jobs = [(p, i) for p in prompts for i in (sorted(indices.get(p.id, ())) if indices is not None else range(p.n))]
        if not jobs:
            return []
        semaphore = asyncio.Semaphore(self.concurrency)
        client = make_async_client(self.base_url, self.api_key, self.timeout)
        async with client:
            made = await gather_or_cancel(self._one(client, semaphore, p, i, params, on_sample, on_failure)
                                          for p, i in jobs)
        return [s for s in made if s is not None]

    async def _one(
        self, client: Any, semaphore: asyncio.Semaphore, prompt: Prompt, index: int, params: SamplingParams,
        on_sample: Callable[[Sample], None] | None, on_failure: Callable[[str, int, str], None] | None,
    ) -> Sample | None:
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
            try:
                response = await call_with_retries(call, self.retry, self.usage, self._rng, "[sample]")
            except APICallError as e:
                if on_failure is not None:
                    on_failure(prompt.id, index, str(e))
                return None
        self.usage.add(response.usage)
        choice = response.choices[0]
        meta = {**_json_safe(prompt.meta), "finish_reason": choice.finish_reason, "model": response.model or self.model}
        sample = Sample(prompt.id, index, choice.message.content, seed, meta)
        if on_sample is not None:
            on_sample(sample)
        return sample


@register("sampler", "openai")
def openai_sampler(config: "SampleConfig", model: "ModelRef") -> OpenAIChatSampler:
    """The sampler for `[sample] backend = "openai"`: `model.name` is the endpoint's model name."""
    if model.adapter is not None:
        raise PosternError(f"model {model.name!r} has adapter {model.adapter!r}, but an API sampler cannot apply a "
                           "local adapter; sample it with a local backend (hf, vllm)")
    return OpenAIChatSampler(model.name, base_url=config.base_url, concurrency=config.concurrency,
                             retry=retry_policy(config), timeout=config.timeout)
