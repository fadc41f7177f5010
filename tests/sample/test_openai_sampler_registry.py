"""The "openai" sampler backend, found through the registry, against a loopback OpenAI-compatible server."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # so `fakes` imports under rootdir discovery

from fakes.openai_server import FakeOpenAIServer  # noqa: E402
from postern.config.schema import SampleConfig  # noqa: E402
from postern.core.errors import PosternError  # noqa: E402
from postern.core.models import ModelRef  # noqa: E402
from postern.core.registry import lookup  # noqa: E402
from postern.sample import Prompt, SamplingParams  # noqa: E402


def test_registered_openai_sampler_samples_the_named_model(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # a local endpoint needs no key
    with FakeOpenAIServer() as server:
        server.reply = lambda body, i: f"{body['model']} seed {body['seed']}"
        config = SampleConfig(backend="openai", base_url=server.base_url, concurrency=3)
        sampler = lookup("sampler", "openai")(config, ModelRef("ft:my-model", api=True))
        samples = sampler.sample([Prompt("p", ({"role": "user", "content": "hi"},), n=2)], SamplingParams(seed=10))

    assert sampler.concurrency == 3
    assert [s.answer for s in samples] == ["ft:my-model seed 10", "ft:my-model seed 11"]
    assert [b["model"] for b in server.calls] == ["ft:my-model", "ft:my-model"]


def test_registered_openai_sampler_refuses_a_local_adapter():
    config = SampleConfig(backend="openai", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(PosternError, match="cannot apply a local adapter"):
        lookup("sampler", "openai")(config, ModelRef("gpt-4o", adapter="runs/adapter"))
