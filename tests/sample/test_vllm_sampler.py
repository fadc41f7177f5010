"""vLLM does not run on these CPU machines, so these tests check postern's side of the contract against
a stand-in `vllm` module that records what it is given: parameters, messages, adapters and the engine."""

import sys
import types
from dataclasses import dataclass

import pytest

from postern.core.errors import PosternError
from postern.sample import Prompt, SamplingParams


@dataclass
class _Completion:
    text: str


@dataclass
class _Output:
    outputs: list


class _LLM:
    instances = 0

    def __init__(self, **kwargs):
        _LLM.instances += 1
        self.kwargs, self.calls = kwargs, []

    def chat(self, conversations, sampling_params, lora_request=None, use_tqdm=True):
        self.calls.append((conversations, sampling_params, lora_request))
        return [_Output([_Completion(f" answer {k} ") for k in range(sp.n)]) for sp in sampling_params]


@pytest.fixture
def fake_vllm(monkeypatch):
    vllm = types.ModuleType("vllm")
    vllm.LLM = _LLM
    vllm.SamplingParams = lambda **kw: types.SimpleNamespace(**kw)
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = lambda name, lora_id, path: (name, lora_id, path)
    for name, module in {"vllm": vllm, "vllm.lora": lora, "vllm.lora.request": request}.items():
        monkeypatch.setitem(sys.modules, name, module)
    _LLM.instances = 0
    return vllm


PROMPTS = [Prompt("a", ({"role": "system", "content": "answer in json"}, {"role": "user", "content": "hi"}), 2),
           Prompt("b", ({"role": "user", "content": "bye"},), 1)]


def test_samples_carry_ids_indices_seeds_and_system_prompts(fake_vllm):
    from postern.sample.vllm import VLLMSampler

    sampler = VLLMSampler("base-model")
    samples = sampler.sample(PROMPTS, SamplingParams(temperature=1.0, top_p=0.9, max_new_tokens=50, seed=7))
    assert [(s.prompt_id, s.index, s.answer, s.seed) for s in samples] == [
        ("a", 0, "answer 0", 7), ("a", 1, "answer 1", 7), ("b", 0, "answer 0", 8)]
    conversations, params, lora = sampler.engine.llm.calls[0]
    assert conversations[0][0] == {"role": "system", "content": "answer in json"}
    assert [(p.n, p.temperature, p.top_p, p.max_tokens, p.seed) for p in params] == [(2, 1.0, 0.9, 50, 7), (1, 1.0, 0.9, 50, 8)]
    assert lora is None and sampler.engine.llm.kwargs["enable_lora"] is True


def test_adapters_share_one_engine_with_stable_ids(fake_vllm):
    from postern.sample.vllm import VLLMSampler

    base = VLLMSampler("base-model")
    a, b, a_again = base.with_adapter("/runs/a"), base.with_adapter("/runs/b"), base.with_adapter("/runs/a")
    for s in (a, b, a_again):
        s.sample(PROMPTS[:1], SamplingParams())
    assert _LLM.instances == 1
    assert [call[2] for call in base.engine.llm.calls] == [("adapter-1", 1, "/runs/a"), ("adapter-2", 2, "/runs/b"),
                                                           ("adapter-1", 1, "/runs/a")]


def test_missing_vllm_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)
    from postern.sample.vllm import VLLMSampler

    with pytest.raises(PosternError, match="postern\\[vllm\\]"):
        VLLMSampler("base-model")


def test_eval_resumes_only_missing_samples_and_shares_the_engine(fake_vllm, tmp_path):
    from postern.runner import evaluate
    from postern.runner.evaluate import EvalModel, _sample_vllm

    evaluate._VLLM_ENGINES.clear()
    written = []
    for label, adapter in (("base", None), ("ft", str(tmp_path))):
        spec = EvalModel("base-model", backend="vllm", label=label, adapter=adapter)
        _sample_vllm(spec, PROMPTS, {"a": [1], "b": [0]}, SamplingParams(seed=3), written.extend, tmp_path)
    assert [(s.prompt_id, s.index) for s in written] == [("a", 1), ("b", 0)] * 2
    assert _LLM.instances == 1
    assert [call[2] for call in evaluate._VLLM_ENGINES["base-model"].engine.llm.calls] == [
        None, ("adapter-1", 1, str(tmp_path))]
