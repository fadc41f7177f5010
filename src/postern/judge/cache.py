"""A persistent judge cache in SQLite, keyed by (judge model, prompt template, question, answer).

Values are the judge's raw output (e.g. the top-20 token logprobs), so changing thresholds or
parsing never needs a new call. Each entry is committed as it is written: a killed run loses nothing.
"""

import json
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from postern.core.hashing import content_hash
from postern.core.sqlite import SQLiteFile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS judge_cache (
    key TEXT PRIMARY KEY,
    judge_model TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(judge_model: str, prompt: str, question: str, answer: str, variant: str = "") -> str:
    """Stable key; `variant` separates outputs of different kinds for the same inputs."""
    return content_hash([judge_model, prompt, question, answer, variant], length=64)


class JudgeCache(SQLiteFile):
    """SQLite file (or ":memory:") mapping cache keys to JSON values. Safe to share across threads."""

    def __init__(self, path: str | Path):
        super().__init__(path, _SCHEMA, timeout=30)

    def get(self, key: str) -> Any | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, Any] = {}
        for start in range(0, len(keys), 500):  # stay under SQLite's bound-parameter limit
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, value in self._query(f"SELECT key, value FROM judge_cache WHERE key IN ({marks})", chunk):
                found[key] = json.loads(value)
        return found

    def put(self, key: str, judge_model: str, value: Any) -> None:
        self.put_many(judge_model, {key: value})

    def put_many(self, judge_model: str, values: Mapping[str, Any]) -> None:
        now = time.time()
        self._write("INSERT OR REPLACE INTO judge_cache VALUES (?, ?, ?, ?)",
                    [(k, judge_model, json.dumps(v), now) for k, v in values.items()])

    def __len__(self) -> int:
        return self._query("SELECT COUNT(*) FROM judge_cache")[0][0]
