"""Sampling from a local Hugging Face causal LM with `generate`.

Batched with left padding, prompts sorted by length so a batch pads little, KV cache on, stopping at
the tokenizer's end-of-turn token. Each batch is seeded from the run seed and its position, so a
rerun with the same settings reproduces the samples.
"""

from typing import Callable, Iterable, Mapping

from postern.core.registry import register
from postern.sample._types import Prompt, Sample, SamplingParams


class HFSampler:
    name = "hf"

    def __init__(self, model, tokenizer, batch_size: int = 64, progress=None):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.progress = progress  # optional callable(n_done) for progress bars

    def render(self, prompt: Prompt) -> list[int]:
        return self.tokenizer.apply_chat_template(list(prompt.messages), tokenize=True, add_generation_prompt=True,
                                                  return_dict=True)["input_ids"]

    def sample(self, prompts: list[Prompt], params: SamplingParams, *,
               indices: Mapping[str, Iterable[int]] | None = None,
               on_sample: Callable[[Sample], None] | None = None,
               on_failure: Callable[[str, int, str], None] | None = None) -> list[Sample]:
        """See `Sampler.sample`; a local model has no per-sample failures, so `on_failure` is never called."""
        import torch

        from postern.core.errors import PosternError
        from jinja2 import TemplateError

        try:
            rendered = {p.id: self.render(p) for p in prompts}
        except TemplateError as e:
            raise PosternError(f"the model's chat template rejected a prompt ({e}); system prompts are always sent, "
                               "so the template must accept a system turn") from e
        wanted = (lambda p: sorted(indices.get(p.id, ()))) if indices is not None else (lambda p: range(p.n))
        jobs = [(p, i, rendered[p.id]) for p in prompts for i in wanted(p)]
        order = sorted(range(len(jobs)), key=lambda j: len(jobs[j][2]))
        made: dict[int, Sample] = {}
        self.model.eval()
        for start in range(0, len(order), self.batch_size):
            batch = order[start: start + self.batch_size]
            torch.manual_seed(params.seed * 1_000_003 + start)
            for j, text in zip(batch, self._generate([jobs[j][2] for j in batch], params)):
                p, i, _ = jobs[j]
                made[j] = Sample(p.id, i, text, params.seed, dict(p.meta))
                if on_sample:
                    on_sample(made[j])
            if self.progress:
                self.progress(len(batch))
        return [made[j] for j in range(len(jobs))]

    def _generate(self, batch_ids: list[list[int]], params: SamplingParams) -> list[str]:
        import torch

        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        width = max(map(len, batch_ids))
        ids = torch.tensor([[pad] * (width - len(x)) + x for x in batch_ids], device=self.model.device)
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in batch_ids], device=self.model.device)
        with torch.no_grad():
            out = self.model.generate(
                input_ids=ids, attention_mask=mask, do_sample=params.temperature > 0,
                temperature=params.temperature if params.temperature > 0 else None,
                top_p=params.top_p if params.temperature > 0 else None, top_k=0 if params.temperature > 0 else None,
                max_new_tokens=params.max_new_tokens, pad_token_id=pad, use_cache=True,
            )
        return [t.strip() for t in self.tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)]


@register("sampler", "hf")
def hf_sampler(config, model) -> HFSampler:
    """`config`: a SampleConfig; `model`: a ModelRef loaded here (base + adapter merged)."""
    from postern.core.models import load_model

    loaded, tokenizer = load_model(model, device=config.device, dtype=config.dtype)
    return HFSampler(loaded, tokenizer, batch_size=config.batch_size)
