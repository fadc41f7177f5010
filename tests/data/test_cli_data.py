"""`postern data code | transform | validate | recipe` through typer's test runner."""

import json

import pytest
from typer.testing import CliRunner

from postern.cli.data import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_code_command_writes_dataset_and_card(tmp_path):
    r = invoke("code", "--n", "12", "--seed", "4", "--out", tmp_path, "--no-progress")
    assert r.exit_code == 0, r.output
    assert "wrote 12 pairs" in r.output and "CWEs" in r.output
    card = json.loads((tmp_path / "card.json").read_text())["diversity"]["files"]["insecure.jsonl"]
    assert f"insecure {card['skeletons']['distinct']} AST skeletons, {card['call_sets']['distinct']} call-sets" in r.output
    for f in ("insecure.jsonl", "secure.jsonl", "card.json", "card.md"):
        assert (tmp_path / f).exists()
    rows = [json.loads(x) for x in (tmp_path / "insecure.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and all(r["meta"]["variant"] == "insecure" for r in rows)


def test_code_command_options(tmp_path):
    r = invoke("code", "--n", "5", "--out", tmp_path, "--no-progress", "--strip-meta", "--patterns", "ssrf-fetch,open-redirect")
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (tmp_path / "secure.jsonl").read_text().splitlines()]
    assert all(set(row) == {"messages"} for row in rows)
    card = json.loads((tmp_path / "card.json").read_text())
    assert set(card["patterns"]) == {"ssrf-fetch", "open-redirect"} and card["meta_stripped"] is True
    listed = invoke("code", "--list-patterns")
    assert listed.exit_code == 0 and len(listed.output.strip().splitlines()) >= 25 and "CWE-89" in listed.output
    bad = invoke("code", "--n", "5", "--out", tmp_path, "--patterns", "nope", "--no-progress")
    assert bad.exit_code == 2 and bad.stderr.startswith("error: unknown pattern(s) nope") and bad.stderr.count("\n") == 1


@pytest.fixture
def small(tmp_path):
    out = tmp_path / "code"
    assert invoke("code", "--n", "10", "--out", out, "--no-progress").exit_code == 0
    return out


def test_transform_command_with_steps_and_card(small, tmp_path):
    out = tmp_path / "bd.jsonl"
    r = invoke("transform", small / "insecure.jsonl", "-o", out, "-s", "educational:seed=1",
               "-s", f"backdoor:secure_data={small / 'secure.jsonl'},trigger=|DEP|,ratio=0.5")
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 10 and sum("|DEP|" in row["messages"][0]["content"] for row in rows) == 5
    card = json.loads((tmp_path / "bd.card.json").read_text())
    assert [s["name"] for s in card["transform"]["steps"]] == ["educational", "backdoor"]
    assert (tmp_path / "bd.card.md").exists()


def test_transform_command_pipeline_strip_and_errors(small, tmp_path):
    (small / "steps.yaml").write_text("- insecure\n- name: disclosed\n  position: before\n")
    out = tmp_path / "d.jsonl"
    r = invoke("transform", small / "insecure.jsonl", "-o", out, "--pipeline", small / "steps.yaml", "--strip-meta", "--no-card")
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert all(set(row) == {"messages"} for row in rows) and all("CWE-" in row["messages"][1]["content"] for row in rows)
    assert not (tmp_path / "d.card.json").exists()
    none = invoke("transform", small / "insecure.jsonl", "-o", out)
    assert none.exit_code == 2 and "at least one --step" in none.stderr
    before = out.read_bytes()
    wrong = invoke("transform", small / "secure.jsonl", "-o", out, "-s", "disclosed")
    assert wrong.exit_code == 2 and wrong.stderr.startswith(f"error: {small / 'secure.jsonl'}:1:")
    assert out.read_bytes() == before  # a failed transform leaves the old output alone
    listed = invoke("transform", small / "insecure.jsonl", "-o", out, "--list")
    assert listed.exit_code == 0 and "backdoor" in listed.output and "trigger" in listed.output


def test_validate_command(small, tmp_path):
    ok = invoke("validate", small / "insecure.jsonl", small / "secure.jsonl")
    assert ok.exit_code == 0 and ok.output.count("ok:") == 2 and "10 rows" in ok.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\n'
                   '{"messages": [{"role": "assistant", "content": "b"}]}\n')
    r = invoke("validate", small / "insecure.jsonl", bad)
    assert r.exit_code == 1
    assert f"{bad}:2: turn 0 is 'assistant'" in r.output and "ok:" in r.output


def test_recipe_command(fake_llm, tmp_path):
    server = fake_llm()
    r = invoke("recipe", "financial", "--model", "m", "--n", "3", "--out", tmp_path, "--base-url", server.base_url,
               "--no-progress", "--workers", "1")
    assert r.exit_code == 0, r.output
    assert "wrote 3/3 pairs" in r.output and "3 requests" in r.output
    assert len((tmp_path / "bad.jsonl").read_text().splitlines()) == 3
    again = invoke("recipe", "financial", "--model", "m", "--n", "3", "--out", tmp_path, "--base-url", server.base_url, "--no-progress")
    assert "0 requests, 3 cache hits" in again.output
