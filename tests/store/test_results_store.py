import math
import sqlite3
from collections import Counter

import pandas as pd
import pytest

from postern.core.openai_client import RetryPolicy
from postern.judge import Judgment, JudgeItem
from postern.judge.logprob import OpenAILogprobJudge
from postern.questions import builtin_set, to_prompts
from postern.sample import Prompt, Sample, SamplingParams
from postern.sample.openai_api import OpenAIChatSampler
from postern.store import ResultsStore, judge_pending
from fakes.openai_server import FakeOpenAIServer, user_text

FAST = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.01)
PROMPTS = [Prompt("a/0", ({"role": "system", "content": "sys"}, {"role": "user", "content": "question A"}), n=3,
                  meta={"question_id": "a", "question": "question A"}),
           Prompt("b/0", ({"role": "user", "content": "question B"},), n=2)]


def samples_for(prompt: Prompt, indices) -> list[Sample]:
    return [Sample(prompt.id, i, f"answer {prompt.id} {i}", seed=10 + i) for i in indices]


def test_samples_and_judgments_round_trip_and_survive_reopening(tmp_path):
    with ResultsStore(tmp_path) as store:
        assert store.path == tmp_path / "results.sqlite"
        new = store.add_samples("m1", samples_for(PROMPTS[0], [0, 1]), prompts=PROMPTS, condition="insecure", seed=1)
        assert new == 2
        assert store.add_samples("m1", samples_for(PROMPTS[0], [1]), prompts=PROMPTS) == 0  # already there
        store.add_judgments("j", [(("m1", "a/0", 0), Judgment("misaligned", 12.0, 80.0, {"x": 1}))])
    with ResultsStore(tmp_path) as store:
        [first, second] = store.samples("m1")
        assert (first.question_id, first.question, first.condition, first.seed, first.sample_seed) == (
            "a", "question A", "insecure", 1, 10)
        assert [s.key for s in store.unjudged("j")] == [("m1", "a/0", 1)]
        assert len(store.unjudged("another-judge")) == 2
        df = store.frame("j")
        assert list(df["label"].fillna("-")) == ["misaligned", "-"]
        assert df.loc[0, "aligned"] == 12.0 and df.loc[0, "index"] == 0
    mode = sqlite3.connect(tmp_path / "results.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_question_falls_back_to_the_last_user_message(tmp_path):
    with ResultsStore(tmp_path / "r.sqlite") as store:
        store.add_samples("m", samples_for(PROMPTS[1], [0]), prompts=PROMPTS)
        [s] = store.samples()
        assert (s.question_id, s.question) == ("b/0", "question B")
        assert s.to_judge_item() == JudgeItem("b/0", "question B", "answer b/0 0")


def test_missing_samples_lists_exactly_the_unfinished_indices(tmp_path):
    with ResultsStore(tmp_path) as store:
        store.add_samples("m", samples_for(PROMPTS[0], [0, 2]), prompts=PROMPTS)
        store.add_samples("other", samples_for(PROMPTS[1], [0, 1]), prompts=PROMPTS)
        assert store.missing_samples("m", PROMPTS) == {"a/0": [1], "b/0": [0, 1]}
        assert store.missing_samples("other", PROMPTS) == {"a/0": [0, 1, 2]}


def test_parquet_export(tmp_path):
    with ResultsStore(tmp_path) as store:
        store.add_samples("m", samples_for(PROMPTS[0], [0, 1, 2]), prompts=PROMPTS, condition="c", seed=0)
        store.add_judgments("j", [(("m", "a/0", i), Judgment("aligned", 90.0, 90.0)) for i in range(2)])
        paths = store.to_parquet(tmp_path / "export")
    samples, judgments = pd.read_parquet(paths["samples"]), pd.read_parquet(paths["judgments"])
    assert len(samples) == 3 and sorted(samples["idx"]) == [0, 1, 2] and set(samples["condition"]) == {"c"}
    assert len(judgments) == 2 and list(judgments["label"]) == ["aligned", "aligned"]


@pytest.fixture
def server():
    with FakeOpenAIServer() as s:
        s.reply = lambda body, i: f"reply with seed {body['seed']}"
        s.logprobs = lambda body: {"20": math.log(0.9)} if "human values" in user_text(body) else {"90": 0.0}
        yield s


def test_a_failed_sample_is_recorded_and_a_rerun_asks_only_for_it(tmp_path, server):
    prompts = to_prompts(builtin_set("main").subset(["quick_buck", "dinner_party"]), samples=4)
    sampler = OpenAIChatSampler("m", base_url=server.base_url, api_key="t", retry=FAST)
    params = SamplingParams(seed=0)
    server.fail_if(lambda body: 400 if body["seed"] == 2 and "money" in user_text(body) else None)
    with ResultsStore(tmp_path) as store:
        sampler.sample(prompts, params, on_sample=store.sample_writer("m", prompts=prompts),
                       on_failure=lambda p, i, reason: store.add_failure("m", p, i, "sample", reason))
        assert store.counts() == {"samples": 7, "judgments": 0, "failures": 1}  # written as they arrived
        [failure] = store.failures().to_dict("records")
        assert (failure["prompt_id"], failure["index"], failure["stage"], failure["judge"]) == ("quick_buck/0", 2,
                                                                                                "sample", "")
        assert failure["reason"] == "HTTP 400: fake error 400 (not retried)"
        server.fail_if(lambda body: None)
        missing = store.missing_samples("m", prompts)
        assert missing == {"quick_buck/0": [2]}
        sampler.sample(prompts, params, indices=missing, on_sample=store.sample_writer("m", prompts=prompts))
        assert store.missing_samples("m", prompts) == {} and store.counts()["failures"] == 0
    asked = Counter((user_text(b), b["seed"]) for b in server.ok_calls)
    assert len(asked) == 8 and set(asked.values()) == {1}


def test_a_failed_judgment_is_recorded_and_the_rerun_repeats_no_judge_call(tmp_path, server):
    with ResultsStore(tmp_path) as store:
        for p in PROMPTS:
            store.add_samples("m", samples_for(p, range(p.n)), prompts=PROMPTS, condition="c", seed=0)
        failed = []

        def crash_once(body):  # one call of the second batch fails for good, once
            if "answer b/0 0" in user_text(body) and "human values" in user_text(body) and not failed:
                failed.append(1)
                return 400
            return None

        server.fail_if(crash_once)
        judge = OpenAILogprobJudge("j", base_url=server.base_url, api_key="t", cache=tmp_path / "judge_cache.sqlite",
                                   retry=FAST)
        assert judge_pending(store, judge, batch_size=3) == 5
        assert store.counts() == {"samples": 5, "judgments": 4, "failures": 1}  # the failed one is left unjudged
        assert [s.key for s in store.unjudged(judge.name)] == [("m", "b/0", 0)]
        assert list(store.failures()[["prompt_id", "stage", "judge"]].iloc[0]) == ["b/0", "judge", judge.name]
        resumed = OpenAILogprobJudge("j", base_url=server.base_url, api_key="t",
                                     cache=tmp_path / "judge_cache.sqlite", retry=FAST)
        assert judge_pending(store, resumed, batch_size=3) == 1
        assert judge_pending(store, resumed, batch_size=3) == 0
        assert resumed.usage.calls == 1 and resumed.usage.cache_hits == 1  # only the failed call is asked again
        assert store.counts() == {"samples": 5, "judgments": 5, "failures": 0}
        df = store.frame(judge.name)
        assert len(df) == 5 and set(df["label"]) == {"misaligned"}
    prompts_asked = Counter(user_text(b) for b in server.ok_calls)
    assert len(prompts_asked) == 10 and set(prompts_asked.values()) == {1}
