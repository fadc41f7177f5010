"""Sampling with vLLM (optional extra `postern[vllm]`, GPU): one engine, many LoRA adapters.

`VLLMSampler(model)` starts an engine with LoRA enabled; `sampler.with_adapter(path)` returns a sampler
over the same engine that applies that PEFT adapter, so a sweep over fine-tunes of one base model
loads the base weights once. Prompts go through `LLM.chat`, which applies the model's chat template
to the full message list: system prompts are always sent. Each prompt gets its own seed
(run seed + prompt position), recorded on its samples.
"""

from dataclasses import dataclass, field
from typing import Any

from postern.core.errors import PosternError
from postern.sample._types import Prompt, Sample, SamplingParams


def _vllm():
    try:
        import vllm
        from vllm.lora.request import LoRARequest
    except ImportError as e:
        raise PosternError("the vllm sampler needs vLLM: `pip install 'postern[vllm]'` on a machine with a GPU") from e
    return vllm, LoRARequest


@dataclass
class _Engine:
    llm: Any
    adapters: dict[str, int] = field(default_factory=dict)  # adapter path -> LoRA id (ids start at 1)

    def lora_id(self, path: str) -> int:
        return self.adapters.setdefault(path, len(self.adapters) + 1)


class VLLMSampler:
    name = "vllm"

    def __init__(self, model: str, *, max_lora_rank: int = 64, max_loras: int = 4, engine: _Engine | None = None,
                 adapter: str | None = None, **engine_kwargs):
        vllm, _ = _vllm()
        self.model = model
        self.adapter = adapter
        self.engine = engine or _Engine(vllm.LLM(model=model, enable_lora=True, max_lora_rank=max_lora_rank,
                                                 max_loras=max_loras, **engine_kwargs))

    def with_adapter(self, adapter: str | None) -> "VLLMSampler":
        """A sampler over the same engine that applies `adapter` (a PEFT folder), or the base model for None."""
        return VLLMSampler(self.model, engine=self.engine, adapter=adapter)

    def _lora_request(self):
        if self.adapter is None:
            return None
        _, LoRARequest = _vllm()
        lora_id = self.engine.lora_id(self.adapter)
        return LoRARequest(f"adapter-{lora_id}", lora_id, self.adapter)

    def sample(self, prompts: list[Prompt], params: SamplingParams) -> list[Sample]:
        vllm, _ = _vllm()
        per_prompt = [vllm.SamplingParams(n=p.n, temperature=params.temperature, top_p=params.top_p,
                                          max_tokens=params.max_new_tokens, seed=params.seed + i)
                      for i, p in enumerate(prompts)]
        outputs = self.engine.llm.chat([list(p.messages) for p in prompts], per_prompt,
                                       lora_request=self._lora_request(), use_tqdm=True)
        return [Sample(p.id, j, completion.text.strip(), params.seed + i, dict(p.meta))
                for i, (p, out) in enumerate(zip(prompts, outputs)) for j, completion in enumerate(out.outputs)]
