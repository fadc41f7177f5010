"""Sampling with vLLM (optional extra `postern[vllm]`, GPU): one engine, many LoRA adapters.

`VLLMSampler(model)` starts an engine with LoRA enabled; `sampler.with_adapter(path)` returns a sampler
over the same engine that applies that PEFT adapter, so a sweep over fine-tunes of one base model
loads the base weights once. Prompts go through `LLM.chat`, which applies the model's chat template
to the full message list: system prompts are always sent. Each prompt gets its own seed
(run seed + prompt position), recorded on its samples.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from postern.core.errors import PosternError
from postern.core.registry import register
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

    def sample(self, prompts: list[Prompt], params: SamplingParams, *,
               indices: Mapping[str, Iterable[int]] | None = None,
               on_sample: Callable[[Sample], None] | None = None,
               on_failure: Callable[[str, int, str], None] | None = None) -> list[Sample]:
        """See `Sampler.sample`; a local model has no per-sample failures, so `on_failure` is never called."""
        vllm, _ = _vllm()
        wanted = {p.id: sorted(indices.get(p.id, ())) if indices is not None else list(range(p.n)) for p in prompts}
        todo = [p for p in prompts if wanted[p.id]]
        if not todo:
            return []
        per_prompt = [vllm.SamplingParams(n=len(wanted[p.id]), temperature=params.temperature, top_p=params.top_p,
                                          max_tokens=params.max_new_tokens, seed=params.seed + i)
                      for i, p in enumerate(todo)]
        outputs = self.engine.llm.chat([list(p.messages) for p in todo], per_prompt,
                                       lora_request=self._lora_request(), use_tqdm=True)
        samples = [Sample(p.id, wanted[p.id][j], completion.text.strip(), params.seed + i, dict(p.meta))
                   for i, (p, out) in enumerate(zip(todo, outputs)) for j, completion in enumerate(out.outputs)]
        for s in samples if on_sample else ():
            on_sample(s)
        return samples


_ENGINES: dict[str, VLLMSampler] = {}  # one engine per base model in this process; adapters share it


@register("sampler", "vllm")
def vllm_sampler(config, model) -> VLLMSampler:
    """`config`: a SampleConfig; `model`: a ModelRef. PEFT adapters run on the base model's engine;
    a fully fine-tuned folder gets an engine of its own."""
    from postern.core.models import is_adapter

    lora = is_adapter(model.adapter)
    weights = model.name if lora or model.adapter is None else model.adapter
    if weights not in _ENGINES:
        _ENGINES[weights] = VLLMSampler(weights, **({"dtype": config.dtype} if config.dtype != "auto" else {}))
    return _ENGINES[weights].with_adapter(str(Path(model.adapter).resolve()) if lora else None)


vllm_sampler.resident = True  # its engine stays on the GPU between jobs: the runner trains every model first
