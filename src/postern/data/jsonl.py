"""Chat JSONL: one `{"messages": [{"role": ..., "content": ...}, ...]}` object per line.

A row may also carry a top-level ``"meta"`` object (postern's generators put the CWE, pattern id
and variant there so transforms can check their invariants); it is ignored by training and can be
removed with ``--strip-meta``. Other top-level keys are allowed and ignored. A gzip-compressed
file (``.jsonl.gz``, recognised by its first bytes whatever its name) is decompressed on reading.
"""

import gzip
import json
import zlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

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


GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzip (its name ends in ``.gz`` or it starts with gzip's magic)."""
    raw = path.read_bytes()
    if path.suffix != ".gz" and not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise PosternError(f"{path}: not a readable gzip file ({e})") from e


def read_chat_jsonl_with_lines(
    path: str | Path, require_assistant_last: bool = False
) -> tuple[list[dict[str, Any]], list[int]]:
    """Like `read_chat_jsonl`, also returning each row's 1-based line number (for error messages)."""
    path = Path(path)
    if not path.exists():
        raise PosternError(f"{path}: file not found")
    if path.is_dir():
        raise PosternError(f"{path}: is a folder; expected a .jsonl file")
    raw = _read_bytes(path)
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


def _file_mode() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


class AtomicFiles:
    """Write one or more files so that none of them appears (or changes) unless all were written.

    `stage(path)` gives a temporary file beside `path` (same folder, so `os.replace` is atomic);
    `commit()` replaces every staged file into place; `abort()` deletes them. As a context manager
    it commits when the block succeeds and aborts when it raises (including Ctrl-C)::

        with AtomicFiles() as tx:
            tx.write_text(out / "a.jsonl", text)
            tx.write_text(out / "card.json", card)   # an error here leaves neither file
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []

    def stage(self, path: str | Path) -> Path:
        """A new empty temporary file in `path`'s folder, replaced onto `path` at commit."""
        path = Path(path)
        if path.is_dir():
            raise PosternError(f"{path}: is a folder; expected a file path to write")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        except OSError as e:
            raise PosternError(f"{path}: cannot write here ({e.strerror or e})") from e
        os.close(fd)
        self._staged.append((Path(tmp), path))
        return Path(tmp)

    def staged(self, path: str | Path) -> Path:
        """The temporary file currently staged for `path` (e.g. to hash it before commit)."""
        for tmp, final in reversed(self._staged):
            if final == Path(path):
                return tmp
        raise KeyError(f"{path} is not staged")

    @contextmanager
    def open(self, path: str | Path) -> Iterator[IO[str]]:
        """A text stream (UTF-8) onto a staged temporary file for `path`."""
        tmp = self.stage(path)
        with tmp.open("w", encoding="utf-8", newline="\n") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())

    def write_text(self, path: str | Path, text: str) -> Path:
        with self.open(path) as f:
            f.write(text)
        return self._staged[-1][0]

    def commit(self) -> None:
        mode = _file_mode()
        for tmp, _ in self._staged:
            os.chmod(tmp, mode)  # mkstemp makes 0600 files; give them the usual permissions
        for tmp, final in self._staged:
            os.replace(tmp, final)
        self._staged.clear()

    def abort(self) -> None:
        for tmp, _ in self._staged:
            tmp.unlink(missing_ok=True)
        self._staged.clear()

    def __enter__(self) -> "AtomicFiles":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()


@contextmanager
def atomic_write(path: str | Path) -> Iterator[IO[str]]:
    """Open `path` for writing text (UTF-8) through a temporary file in the same folder.

    The file is `os.replace`d into place only when the block finishes without an error; otherwise
    the temporary file is removed and an existing `path` is left untouched.
    """
    with AtomicFiles() as tx, tx.open(path) as f:
        yield f


def dump_chat_jsonl(f: IO[str], rows: Iterable[dict[str, Any]]) -> int:
    """Write rows to an open text stream, one JSON object per line; returns the row count."""
    n = 0
    for row in rows:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
        n += 1
    return n


def write_chat_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write chat JSONL atomically (temp file + `os.replace`): on any error no partial file is left."""
    with atomic_write(path) as f:
        return dump_chat_jsonl(f, rows)
