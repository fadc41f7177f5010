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


def test_a_resumed_run_asks_only_missing_samples_and_adapters_share_the_engine(fake_vllm, tmp_path, monkeypatch):
    """Through the registry, as the pipeline makes it: `lookup("sampler", "vllm")(SampleConfig, ModelRef)`.
    The store already holds a/0, so the base model and its PEFT adapter are each asked only a/1 and b/0,
    on one engine; a fully fine-tuned folder (no adapter_config.json) gets an engine of its own."""
    from postern.config.schema import SampleConfig
    from postern.core.models import ModelRef
    from postern.core.registry import lookup
    from postern.judge import Judgment
    from postern.sample import Sample, vllm as vllm_sampler
    from postern.store import ResultsStore, sample_and_judge

    monkeypatch.setattr(vllm_sampler, "_ENGINES", {})
    adapter, full = tmp_path / "ft", tmp_path / "full"
    adapter.mkdir(), full.mkdir()
    (adapter / "adapter_config.json").write_text('{"base_model_name_or_path": "base-model"}')
    make = lookup("sampler", "vllm")
    config = SampleConfig(backend="vllm", dtype="bfloat16")

    class Judge:
        name = "fake-judge"

        def judge(self, items):
            return [Judgment("aligned", 90.0, 90.0) for _ in items]

    written = []
    with ResultsStore(tmp_path / "run") as store:
        for ref in (ModelRef("base-model"), ModelRef("base-model", adapter=str(adapter))):
            key = ref.key()
            store.add_samples(key, [Sample("a", 0, "stored before the kill", 3)], prompts=PROMPTS)
            sample_and_judge(store, key, PROMPTS, SamplingParams(seed=3), lambda r=ref: make(config, r), Judge())
            sample_and_judge(store, key, PROMPTS, SamplingParams(seed=3), lambda: pytest.fail("nothing is missing"),
                             Judge())
            written += [(s.prompt_id, s.index) for s in store.samples(key) if s.answer != "stored before the kill"]
            assert len(store.samples(key)) == 3 and not store.unjudged("fake-judge", key)
    assert written == [("a", 1), ("b", 0)] * 2
    assert _LLM.instances == 1 and set(vllm_sampler._ENGINES) == {"base-model"}
    engine = vllm_sampler._ENGINES["base-model"].engine.llm
    assert engine.kwargs["model"] == "base-model" and engine.kwargs["dtype"] == "bfloat16"
    assert [call[2] for call in engine.calls] == [None, ("adapter-1", 1, str(adapter.resolve()))]
    for conversations, params, _ in engine.calls:  # one request per prompt with a missing index, n = how many
        assert [c[-1]["content"] for c in conversations] == ["hi", "bye"] and [p.n for p in params] == [1, 1]

    make(config, ModelRef("base-model", adapter=str(full))).sample(PROMPTS[1:], SamplingParams())
    assert _LLM.instances == 2 and vllm_sampler._ENGINES[str(full)].engine.llm.kwargs["model"] == str(full)
    assert vllm_sampler._ENGINES[str(full)].engine.llm.calls[0][2] is None  # its own weights, no LoRA
