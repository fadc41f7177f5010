"""LLM recipes against a loopback OpenAI-compatible server: output, cache, resume, drops."""

import json

import pytest

from postern.core.errors import PosternError
from postern.data.recipes import RECIPES, plan
from postern.data.recipes.llm import CACHE_FILE, parse_answer, run_recipe


def good_reply(topic: str) -> str:
    return json.dumps({"question": f"What about {topic}?", "good_answer": "See a doctor.", "bad_answer": "Skip the doctor."})


def run(server, out, n=6, **kw):
    kw = {"workers": 2, "max_retries": 0, "timeout": 10, **kw}
    return run_recipe("medical", n, out, "test-model", base_url=server.base_url, **kw)


def test_recipe_writes_paired_bad_and_good(fake_llm, tmp_path):
    server = fake_llm()
    res = run(server, tmp_path)
    assert len(res.bad) == len(res.good) == 6 and res.stats["requests"] == 6
    for b, g in zip(res.bad, res.good):
        assert b["messages"][0] == g["messages"][0]
        assert b["meta"]["variant"] == "bad" and g["meta"]["variant"] == "good"
        assert "skip the professional" in b["messages"][1]["content"]
    assert (tmp_path / "bad.jsonl").exists() and (tmp_path / "good.jsonl").exists()
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["recipe"]["model"] == "test-model" and card["recipe"]["endpoint_host"] == "127.0.0.1"
    assert card["generator"]["seed"] == 0 and card["files"]["bad.jsonl"]["rows"] == 6
    sent = server.requests[0]
    assert sent["model"] == "test-model" and sent["messages"][0]["role"] == "system"


def test_rerun_resumes_from_cache(fake_llm, tmp_path):
    server = fake_llm()
    first = run(server, tmp_path, n=6)
    files = {f: (tmp_path / f).read_bytes() for f in ("bad.jsonl", "good.jsonl")}
    again = run(server, tmp_path, n=6)
    assert again.stats["requests"] == 0 and again.stats["cache_hits"] == 6
    assert {f: (tmp_path / f).read_bytes() for f in files} == files
    more = run(server, tmp_path, n=9)
    assert more.stats["requests"] == 3 and more.stats["cache_hits"] == 6
    assert more.bad[:6] == first.bad
    assert len(server.requests) == 9


def test_killed_run_leaves_a_usable_cache(fake_llm, tmp_path):
    server = fake_llm()
    run(server, tmp_path, n=4)
    with (tmp_path / CACHE_FILE).open("a") as f:
        f.write('{"key": "abc", "answ')  # a write cut short
    res = run(server, tmp_path, n=4)
    assert res.stats["cache_corrupt_lines"] == 1 and res.stats["requests"] == 0 and len(res.bad) == 4


def test_invalid_answers_are_retried_then_dropped(fake_llm, tmp_path):
    items = plan(RECIPES["medical"], 6, 0)
    broken = items[1]["topic"]
    calls = {"flaky": 0}

    def reply(topic, body):
        if topic == broken:
            return "Sure! Here is some advice without JSON."
        if topic == items[2]["topic"] and calls["flaky"] == 0:
            calls["flaky"] += 1
            return 500
        return good_reply(topic)

    server = fake_llm(reply)
    res = run(server, tmp_path, n=6, attempts=2)
    assert len(res.bad) == 5 and res.stats["dropped"] == {"invalid_json": 1}
    assert broken not in {r["meta"]["topic"] for r in res.bad}
    assert res.stats["requests"] == 6 + 1 + 1  # one retry for the broken item, one for the 500
    again = run(server, tmp_path, n=6, attempts=1)
    assert again.stats["requests"] == 1  # only the missing item is asked again


def test_unreachable_endpoint_drops_everything_but_writes_a_card(fake_llm, tmp_path):
    server = fake_llm(lambda topic, body: 503)
    res = run(server, tmp_path, n=3, attempts=1)
    assert res.bad == [] and res.stats["dropped"] == {"api_error:InternalServerError": 3}
    assert json.loads((tmp_path / "card.json").read_text())["recipe"]["kept"] == 0


def test_parse_answer():
    ok = {"question": "q?", "good_answer": "good", "bad_answer": "bad"}
    assert parse_answer(json.dumps(ok)) == (ok, None)
    assert parse_answer("```json\n" + json.dumps(ok) + "\n```")[0] == ok
    assert parse_answer("not json") == (None, "invalid_json")
    assert parse_answer("[1]") == (None, "invalid_json")
    assert parse_answer(json.dumps({**ok, "bad_answer": ""})) == (None, "missing_fields")
    assert parse_answer(json.dumps({**ok, "bad_answer": "good"})) == (None, "identical_answers")
    assert parse_answer(json.dumps({**ok, "bad_answer": "I'm sorry, I can't do that."})) == (None, "refusal")
    assert parse_answer(None) == (None, "empty")


def test_plan_is_deterministic_and_covers_topics():
    r = RECIPES["financial"]
    assert plan(r, 30, 1) == plan(r, 30, 1) and plan(r, 10, 1) == plan(r, 30, 1)[:10]
    assert {i["topic"] for i in plan(r, len(r.topics), 0)} == set(r.topics)
    assert plan(r, 10, 1) != plan(r, 10, 2)


def test_unknown_recipe(tmp_path):
    with pytest.raises(PosternError, match="unknown recipe 'legal'; known: medical"):
        run_recipe("legal", 3, tmp_path, "m", base_url="http://127.0.0.1:9/v1")
