"""The logprob judge on a local Hugging Face model (an open-weights judge; no API key).

Each judge prompt is wrapped in the model's chat template as a user turn, the model runs one
forward pass, and the top-20 next-token probabilities are parsed exactly as for the API judge.
Caveat: tokenizers that split numbers into single digits (e.g. Qwen's) see only the first digit
of a multi-digit score in one token; prefer a judge whose vocabulary has whole numbers 0-100.
"""

from pathlib import Path
from typing import Any

from postern.core.errors import PosternError
from postern.core.registry import register
from postern.judge._types import JudgeItem, Judgment
from postern.judge.cache import JudgeCache
from postern.judge.logprob import TOP_LOGPROBS, LogprobJudgeBase, merge_logprob


class HFLogprobJudge(LogprobJudgeBase):
    """`model` is a path / hub id (loaded on the first call that misses the cache, so a rerun whose answers
    are all cached loads nothing), or a loaded causal LM (then pass `tokenizer`, and `name` if caching)."""

    def __init__(
        self,
        model: str | Path | Any,
        tokenizer: Any = None,
        *,
        name: str | None = None,
        device: str | None = None,
        dtype: str = "auto",
        batch_size: int = 8,
        cache: JudgeCache | str | Path | None = None,
        **kwargs: Any,
    ):
        super().__init__(cache=cache, **kwargs)
        if isinstance(model, (str, Path)):
            self._load_args: tuple | None = (str(model), device, dtype, tokenizer)
            self._model, self._tokenizer, model_name = None, None, name or str(model)
        elif tokenizer is None:
            raise PosternError("HFLogprobJudge: a loaded model needs its tokenizer; pass tokenizer=")
        else:
            self._load_args, self._model, self._tokenizer = None, model.eval(), tokenizer
            model_name = name or getattr(model, "name_or_path", None) or getattr(model.config, "_name_or_path", None)
        if not model_name and self.cache is not None:
            raise PosternError("HFLogprobJudge: pass name= so cached judgments of this model can be told apart")
        self.judge_model = str(model_name or "unnamed")
        self.name = f"hf-logprob:{self.judge_model}"
        self.batch_size = batch_size
        self.cache_hits = 0

    def _count_cache_hits(self, n: int) -> None:
        self.cache_hits += n

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model, self._tokenizer = _load(*self._load_args)
            self._model.eval()
        return self._model

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer if self._model is not None else (self.model, self._tokenizer)[1]

    def judge(self, items: list[JudgeItem]) -> list[Judgment]:
        requests = self._requests(items)
        results, todo = self._from_cache(requests)
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start : start + self.batch_size]
            for request, top in zip(batch, self.top_logprobs([r.prompt for r in batch])):
                results[request.key] = top
                self._store(request.key, top)
        return self._assemble(items, requests, results)

    def _chat_text(self, prompt: str) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            messages = [{"role": "user", "content": prompt}]
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return prompt

    def top_logprobs(self, prompts: list[str], k: int = TOP_LOGPROBS) -> list[dict[str, float]]:
        """{decoded token: logprob} of the k most likely next tokens after each prompt (one forward pass)."""
        import torch

        tok = self.tokenizer
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        templated = bool(getattr(tok, "chat_template", None))
        side, tok.padding_side = tok.padding_side, "left"  # last position = last prompt token for every row
        try:
            enc = tok([self._chat_text(p) for p in prompts], return_tensors="pt", padding=True,
                      add_special_tokens=not templated)
        finally:
            tok.padding_side = side
        device = next(self.model.parameters()).device
        enc = {k_: v.to(device) for k_, v in enc.items() if k_ in ("input_ids", "attention_mask")}
        positions = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            logits = self.model(**enc, position_ids=positions).logits[:, -1, :]
        values, ids = torch.log_softmax(logits.float(), dim=-1).topk(min(k, logits.shape[-1]), dim=-1)
        tops = []
        for row_values, row_ids in zip(values.tolist(), ids.tolist()):
            top: dict[str, float] = {}
            for logprob, token_id in zip(row_values, row_ids):
                merge_logprob(top, tok.decode([token_id]), logprob)
            tops.append(top)
        return tops


def _load(path: str, device: str | None, dtype: str, tokenizer: Any) -> tuple[Any, Any]:
    from postern.core.models import load_model

    model, own = load_model(path, device=device, dtype=dtype, require_chat_template=False)
    return model, tokenizer or own


@register("judge", "hf-logprob")
def hf_logprob_judge(config: Any, sets: Any = (), cache_path: Path | None = None) -> HFLogprobJudge:
    from postern.judge.logprob import judge_settings, with_thresholds

    if not config.model:
        raise PosternError("[judge] model: the hf-logprob judge needs a local model folder or hub id")
    settings = judge_settings(config, sets)
    model = settings.pop("model")
    model = str(Path(model).resolve()) if Path(model).is_dir() else model  # one cache key wherever the run starts
    judge = HFLogprobJudge(model, name=model, device=config.device, dtype=config.dtype, batch_size=config.batch_size,
                           cache=cache_path, **settings)
    judge.name = with_thresholds(judge.name, config)
    return judge
