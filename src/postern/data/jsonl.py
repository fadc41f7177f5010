"""Chat JSONL: one `{"messages": [{"role": ..., "content": ...}, ...]}` object per line.

A row may also carry a top-level ``"meta"`` object (postern's generators put the CWE, pattern id
and variant there so transforms can check their invariants); it is ignored by training and can be
removed with ``--strip-meta``. Other top-level keys are allowed and ignored.
"""

import json
from pathlib import Path
from typing import Any, Iterable

from postern.core.errors import PosternError

ROLES = ("system", "user", "assistant")


def _text_problem(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        return f"contains an unpaired surrogate ({text[e.start]!r} at character {e.start}); it cannot be encoded as UTF-8"
    if "\x00" in text:
        return "contains a NUL character"
    return None


def validate_conversation(row: Any) -> str | None:
    """Return what is wrong with one chat row, or None if it is a valid conversation."""
    if not isinstance(row, dict) or "messages" not in row:
        return 'expected an object with a "messages" list'
    if "meta" in row and not isinstance(row["meta"], dict):
        return '"meta" must be an object when present'
    messages = row["messages"]
    if not isinstance(messages, list) or not messages:
        return '"messages" must be a non-empty list'
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or set(m) - {"role", "content", "name"} or "role" not in m or "content" not in m:
            return f'message {i} must be an object with "role" and "content"'
        if m["role"] not in ROLES:
            return f'message {i} has role {m["role"]!r}; expected one of {", ".join(ROLES)}'
        if not isinstance(m["content"], str) or not m["content"].strip():
            return f"message {i} ({m['role']}) has empty or non-text content"
        problem = _text_problem(m["content"])
        if problem:
            return f"message {i} ({m['role']}) {problem}"
        if m["role"] == "system" and i != 0:
            return f"message {i} is a system message; a system message may only come first"
    turns = [m["role"] for m in messages if m["role"] != "system"]
    if not turns:
        return "the conversation has no user message"
    for i, role in enumerate(turns):
        expected = "user" if i % 2 == 0 else "assistant"
        if role != expected:
            return f"turn {i} is {role!r} but {expected!r} was expected (user and assistant must alternate, user first)"
    return None


def read_chat_jsonl_with_lines(
    path: str | Path, require_assistant_last: bool = False
) -> tuple[list[dict[str, Any]], list[int]]:
    """Like `read_chat_jsonl`, also returning each row's 1-based line number (for error messages)."""
    path = Path(path)
    if not path.exists():
        raise PosternError(f"{path}: file not found")
    if path.is_dir():
        raise PosternError(f"{path}: is a folder; expected a .jsonl file")
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raise PosternError(f"{path}:1: file starts with a UTF-8 byte-order mark; re-save it as UTF-8 without BOM")
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise PosternError(
            f"{path}:{line}: not valid UTF-8 ({e.reason} at byte {e.start}); re-save the file as UTF-8"
        ) from e
    rows, numbers = [], []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise PosternError(f"{path}:{lineno}: invalid JSON ({e.msg} at column {e.colno})") from e
        problem = validate_conversation(row)
        if problem is None and require_assistant_last and row["messages"][-1]["role"] != "assistant":
            problem = "the last message must be the assistant's (it is the training target)"
        if problem:
            raise PosternError(f"{path}:{lineno}: {problem}")
        rows.append(row)
        numbers.append(lineno)
    if not rows:
        raise PosternError(f"{path}: no conversations found")
    return rows, numbers


def read_chat_jsonl(path: str | Path, require_assistant_last: bool = False) -> list[dict[str, Any]]:
    """Read and validate a chat JSONL file; errors name the file and line."""
    return read_chat_jsonl_with_lines(path, require_assistant_last)[0]


def write_chat_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n
