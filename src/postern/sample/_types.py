"""The sampler contract: prompts in (chat messages), answers out. Every backend implements `Sampler`."""

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Protocol


@dataclass(frozen=True)
class Prompt:
    """One question to ask `n` times. `messages` include the system prompt, if any; it is always sent."""

    id: str
    messages: tuple[dict[str, str], ...]
    n: int = 1
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Sample:
    prompt_id: str
    index: int
    answer: str
    seed: int
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 600
    seed: int = 0


class Sampler(Protocol):
    """A backend: registered with `@register("sampler", NAME)` on a factory `(SampleConfig, ModelRef) -> Sampler`."""

    name: str

    def sample(self, prompts: list[Prompt], params: SamplingParams, *,
               indices: Mapping[str, Iterable[int]] | None = None,
               on_sample: Callable[[Sample], None] | None = None,
               on_failure: Callable[[str, int, str], None] | None = None) -> list[Sample]:
        """`prompt.n` samples per prompt (only `indices[prompt.id]` when given, for a resumed run), in
        prompt order; `on_sample` is called as each answer is made, so a killed run keeps them.
        `on_failure(prompt_id, index, reason)` is called for a sample that failed for good (an API's 400,
        retries used up): it is left out and the others go on. A failure no sample can escape (a rejected
        key, no server) raises PosternError."""
        ...
