"""Chat JSONL loading and validation: every error names the file and line."""

import json

import pytest

from postern.core.errors import PosternError
from postern.data.jsonl import read_chat_jsonl, read_chat_jsonl_with_lines, validate_conversation, write_chat_jsonl

OK = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def write_lines(tmp_path, *lines: str, name: str = "d.jsonl"):
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def test_valid_file_with_meta_and_blank_lines(tmp_path):
    row = {**OK, "meta": {"cwe": "CWE-89"}, "id": 7}
    p = write_lines(tmp_path, json.dumps(row), "", json.dumps(OK))
    rows, lines = read_chat_jsonl_with_lines(p)
    assert rows == [row, OK] and lines == [1, 3]
    assert read_chat_jsonl(p, require_assistant_last=True) == rows


def test_roundtrip_keeps_unicode(tmp_path):
    row = {"messages": [{"role": "user", "content": "naïve café ✓"}, {"role": "assistant", "content": "日本語"}]}
    assert write_chat_jsonl(tmp_path / "u.jsonl", [row]) == 1
    assert read_chat_jsonl(tmp_path / "u.jsonl") == [row]


BAD_ROWS = [
    ('{"messages": [', "invalid JSON"),
    ('{"text": "hi"}', 'expected an object with a "messages" list'),
    ('{"messages": []}', "non-empty list"),
    ('{"messages": [{"role": "bot", "content": "x"}]}', "role 'bot'"),
    ('{"messages": [{"role": "user", "content": "  "}]}', "empty or non-text"),
    ('{"messages": [{"role": "user", "content": 3}]}', "empty or non-text"),
    ('{"messages": [{"role": "user", "content": "a", "extra": 1}]}', 'must be an object with "role" and "content"'),
    ('{"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "s"}]}', "may only come first"),
    ('{"messages": [{"role": "assistant", "content": "a"}]}', "'user' was expected"),
    ('{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}', "'assistant' was expected"),
    ('{"messages": [{"role": "system", "content": "s"}]}', "no user message"),
    ('{"messages": [{"role": "user", "content": "a"}], "meta": [1]}', '"meta" must be an object'),
    ('{"messages": [{"role": "user", "content": "bad \\ud800 surrogate"}]}', "unpaired surrogate"),
    ('{"messages": [{"role": "user", "content": "nul \\u0000"}]}', "NUL"),
]


@pytest.mark.parametrize("line,problem", BAD_ROWS)
def test_bad_row_is_reported_with_file_and_line(tmp_path, line, problem):
    p = write_lines(tmp_path, json.dumps(OK), "", line)
    with pytest.raises(PosternError) as e:
        read_chat_jsonl(p)
    assert str(e.value).startswith(f"{p}:3: ") and problem in str(e.value)


def test_require_assistant_last(tmp_path):
    p = write_lines(tmp_path, json.dumps({"messages": [{"role": "user", "content": "a"}]}))
    assert read_chat_jsonl(p)
    with pytest.raises(PosternError, match=r":1: the last message must be the assistant's"):
        read_chat_jsonl(p, require_assistant_last=True)


def test_encoding_errors_name_the_line(tmp_path):
    p = tmp_path / "latin1.jsonl"
    p.write_bytes(json.dumps(OK).encode() + b"\n" + '{"messages": [{"role": "user", "content": "caf\xe9"}]}'.encode("latin-1") + b"\n")
    with pytest.raises(PosternError, match=r"latin1\.jsonl:2: not valid UTF-8"):
        read_chat_jsonl(p)
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(OK).encode() + b"\n")
    with pytest.raises(PosternError, match=r"bom\.jsonl:1: .*byte-order mark"):
        read_chat_jsonl(bom)


def test_missing_empty_and_folder(tmp_path):
    with pytest.raises(PosternError, match="file not found"):
        read_chat_jsonl(tmp_path / "nope.jsonl")
    with pytest.raises(PosternError, match="no conversations"):
        read_chat_jsonl(write_lines(tmp_path, "", ""))
    with pytest.raises(PosternError, match="is a folder"):
        read_chat_jsonl(tmp_path)


def test_validate_conversation_accepts_names_and_system_first():
    row = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u", "name": "bob"},
                        {"role": "assistant", "content": "a"}], "meta": {}}
    assert validate_conversation(row) is None
