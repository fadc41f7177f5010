import pytest

from postern.core.openai_client import RetryPolicy
from postern.questions import builtin_set, to_prompts
from postern.sample import Prompt, SamplingParams
from postern.sample.openai_api import OpenAIChatSampler
from fakes.openai_server import FakeOpenAIServer

FAST = RetryPolicy(max_attempts=5, base_delay=0.001, max_delay=0.01)


@pytest.fixture
def server():
    with FakeOpenAIServer(prompt_tokens=20, completion_tokens=7) as s:
        s.reply = lambda body, i: f"seed {body['seed']}"
        yield s


def sampler(server, **kw) -> OpenAIChatSampler:
    return OpenAIChatSampler("ft:my-model", base_url=server.base_url, api_key="t", retry=FAST, **kw)


def test_n_samples_per_prompt_in_order_with_seeds_and_system_prompt(server):
    prompts = to_prompts(builtin_set("main_json").subset(["quick_buck_json", "i_feel_bored_json"]), samples=3)
    params = SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=50, seed=100)
    samples = sampler(server).sample(prompts, params)
    assert [(s.prompt_id, s.index) for s in samples] == [(p.id, i) for p in prompts for i in range(3)]
    assert [s.seed for s in samples[:3]] == [100, 101, 102]
    assert all(s.answer == f"seed {s.seed}" for s in samples)
    assert samples[0].meta["question_id"] == "quick_buck_json" and samples[0].meta["finish_reason"] == "stop"
    assert len(server.calls) == 6
    body = server.calls[0]
    assert body["messages"][0]["role"] == "system" and body["messages"][1]["role"] == "user"
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.7, 0.9, 50)


def test_sampler_retries_and_counts_tokens(server):
    server.fail_next(429, 500, "garbage")
    s = sampler(server, concurrency=1)
    out = s.sample([Prompt("p", ({"role": "user", "content": "hi"},), n=2)], SamplingParams())
    assert len(out) == 2 and s.usage.retries == 3
    assert (s.usage.calls, s.usage.prompt_tokens, s.usage.completion_tokens) == (2, 40, 14)


def test_only_the_requested_indices_are_sampled_and_each_arrival_is_reported(server):
    seen = []
    prompt = Prompt("p", ({"role": "user", "content": "hi"},), n=5)
    out = sampler(server).sample([prompt], SamplingParams(seed=0), indices={"p": [1, 4]}, on_sample=seen.append)
    assert [s.index for s in out] == [1, 4] and sorted(s.index for s in seen) == [1, 4]
    assert sorted(b["seed"] for b in server.calls) == [1, 4]


def test_a_failed_sample_is_reported_and_the_others_are_made(server):
    server.fail_if(lambda body: 400 if body["seed"] == 0 else 500 if body["seed"] == 1 else None)
    seen, failed = [], []
    out = sampler(server).sample([Prompt("p", ({"role": "user", "content": "hi"},), n=4)], SamplingParams(),
                                 on_sample=seen.append, on_failure=lambda *f: failed.append(f))
    assert [s.index for s in out] == [2, 3] and sorted(s.index for s in seen) == [2, 3]
    assert sorted(failed) == [("p", 0, "HTTP 400: fake error 400 (not retried)"),
                              ("p", 1, "HTTP 500: fake error 500 (gave up after 5 attempts)")]
