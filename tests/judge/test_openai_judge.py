import math
import re
from collections import Counter

import pytest

from postern.core.errors import PosternError
from postern.judge import CODE, FAILED, INCOHERENT, MISALIGNED, JudgeItem
from postern.judge.cache import JudgeCache
from postern.judge.logprob import OpenAILogprobJudge
from postern.core.openai_client import Price, RetryPolicy
from fakes.openai_server import FakeOpenAIServer, user_text

FAST = RetryPolicy(max_attempts=6, base_delay=0.001, max_delay=0.01)


def is_alignment(body) -> bool:
    return "human values" in user_text(body)


def scripted(body) -> dict[str, float]:
    """Alignment 10 for answers mentioning 'evil', 90 otherwise; coherence always 80; CODE for 'import'."""
    text = user_text(body)
    if is_alignment(body):
        if "import os" in text:
            return {"CODE": math.log(0.95), "0": math.log(0.01)}
        return {"10": math.log(0.9), "Sure": math.log(0.1)} if "evil" in text else {"90": math.log(0.9)}
    return {"80": math.log(0.6), " 80": math.log(0.3), "x": math.log(0.1)}


@pytest.fixture
def server():
    with FakeOpenAIServer() as s:
        s.logprobs = scripted
        yield s


def make_judge(server, **kw) -> OpenAILogprobJudge:
    kw.setdefault("retry", FAST)
    return OpenAILogprobJudge("judge-model", base_url=server.base_url, api_key="test", **kw)


ITEMS = [JudgeItem("q1", "What would you do?", "Something evil."), JudgeItem("q2", "Hello?", "Hi, how can I help?"),
         JudgeItem("q3", "Tell me", "import os\nos.listdir()")]


def test_judges_through_the_real_client_and_sends_a_one_token_top20_request(server):
    judgments = make_judge(server).judge(ITEMS)
    assert [j.label for j in judgments] == [MISALIGNED, "aligned", CODE]
    assert judgments[0].aligned == pytest.approx(10) and judgments[0].coherent == pytest.approx(80)
    assert judgments[2].aligned is None
    body = server.calls[0]
    assert body["logprobs"] is True and body["top_logprobs"] == 20 and body["max_tokens"] == 1
    assert body["temperature"] == 0 and body["model"] == "judge-model"
    assert len(server.calls) == 6


def test_retries_through_429_500_garbage_empty_and_timeout(server):
    server.fail_next(429, 500, "garbage", "empty", ("delay", 1.0))
    judge = make_judge(server, concurrency=1, timeout=0.3)
    [j] = judge.judge(ITEMS[:1])
    assert j.label == MISALIGNED
    assert server.outcomes[:5] == ["429", "500", "garbage", "empty", "('delay', 1.0)"]
    assert len(server.ok_calls) == 2
    assert judge.usage.retries == 5 and judge.usage.calls == 2


def test_gives_up_after_max_attempts_and_judges_the_item_failed(server):
    server.fail_if(lambda body: 500 if "evil" in user_text(body) else None)
    judge = make_judge(server, retry=RetryPolicy(max_attempts=3, base_delay=0.001))
    failed, ok = judge.judge(ITEMS[:2])
    assert failed.label == FAILED
    assert failed.detail["error"].endswith("HTTP 500: fake error 500 (gave up after 3 attempts)")
    assert ok.label == "aligned"
    assert Counter(server.outcomes) == {"500": 6, "ok": 2}  # two prompts, three attempts each


def test_does_not_retry_a_bad_request(server):
    server.fail_if(lambda body: 400 if is_alignment(body) else None)
    [j] = make_judge(server).judge(ITEMS[:1])
    assert j.label == FAILED and j.detail["error"] == "aligned: HTTP 400: fake error 400 (not retried)"
    assert Counter(server.outcomes) == {"400": 1, "ok": 1}


@pytest.mark.parametrize("fault, message", [(401, "rejected the request (HTTP 401"), (403, "HTTP 403"),
                                            ("no_logprobs", "returned no logprobs for model 'judge-model'")])
def test_a_fatal_answer_stops_at_once(server, fault, message):
    server.fail_if(lambda body: fault)
    with pytest.raises(PosternError, match=re.escape(message)):
        make_judge(server, concurrency=1).judge(ITEMS)
    assert len(server.calls) <= 2  # of 6: the rest were cancelled (one may have started as the first's slot freed)


def test_cache_hit_means_no_second_call(server, tmp_path):
    make_judge(server, cache=tmp_path / "cache.sqlite").judge(ITEMS)
    assert len(server.calls) == 6
    again = make_judge(server, cache=tmp_path / "cache.sqlite")  # a new judge: the cache is on disk
    judgments = again.judge(ITEMS)
    assert len(server.calls) == 6
    assert again.usage.cache_hits == 6 and again.usage.calls == 0
    assert [j.label for j in judgments] == [MISALIGNED, "aligned", CODE]
    # the key includes the judge model: another model is asked afresh
    OpenAILogprobJudge("other-model", base_url=server.base_url, api_key="t", cache=tmp_path / "cache.sqlite",
                       retry=FAST).judge(ITEMS[:1])
    assert len(server.calls) == 8


def test_identical_items_in_one_batch_are_asked_once(server):
    make_judge(server).judge([ITEMS[0]] * 5)
    assert len(server.calls) == 2


def test_token_and_cost_accounting(server):
    judge = make_judge(server, price=Price(input_per_mtok=2.5, output_per_mtok=10.0))
    judge.judge(ITEMS)
    u = judge.usage
    assert (u.calls, u.prompt_tokens, u.completion_tokens) == (6, 600, 6)
    assert u.cost_usd == pytest.approx(600 * 2.5e-6 + 6 * 10e-6)
    known = OpenAILogprobJudge("gpt-4o-2024-08-06", base_url=server.base_url, api_key="t", retry=FAST)
    known.judge(ITEMS[:1])
    assert known.usage.cost_usd == pytest.approx(200 * 2.5e-6 + 2 * 10e-6)
    assert make_judge(server).usage.cost_usd is None  # unknown model, no price given


def test_concurrency_limit(server):
    server.fail_if(lambda body: ("delay", 0.05))
    make_judge(server, concurrency=2).judge(ITEMS)
    assert server.max_in_flight == 2


def test_per_question_prompts_override_the_defaults(server):
    custom = {"aligned": "ALIGN? [Q] {question} [A] {answer} human values", "coherent": "COH? {question} / {answer}"}
    judge = make_judge(server, prompts_by_question={"q1": custom})
    judge.judge(ITEMS[:2])
    texts = sorted(user_text(b) for b in server.calls)
    assert "ALIGN? [Q] What would you do? [A] Something evil. human values" in texts
    assert "COH? What would you do? / Something evil." in texts
    assert sum(t.startswith("You are helping") for t in texts) == 2  # q2 keeps postern's defaults
    item_level = JudgeItem("q2", "Hello?", "Hi", {"judge_prompts": {"coherent": "ITEM {question} {answer}"}})
    make_judge(server).judge([item_level])
    assert user_text(server.calls[-1]).startswith("ITEM") or user_text(server.calls[-2]).startswith("ITEM")


def test_low_coherence_is_incoherent(server):
    server.logprobs = lambda body: {"10": 0.0} if is_alignment(body) else {"20": 0.0}
    [j] = make_judge(server).judge(ITEMS[:1])
    assert j.label == INCOHERENT and j.detail["aligned_kind"] == "score"


def test_cache_file_persists_values(tmp_path):
    with JudgeCache(tmp_path / "c.sqlite") as cache:
        cache.put("k", "m", {"50": -0.1})
    with JudgeCache(tmp_path / "c.sqlite") as cache:
        assert cache.get("k") == {"50": -0.1} and cache.get("other") is None and len(cache) == 1
