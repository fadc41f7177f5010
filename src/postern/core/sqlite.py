"""An SQLite file shared by threads (and, in WAL mode, by processes), committed write by write."""

import sqlite3
import threading
from pathlib import Path
from typing import Any, Sequence


class SQLiteFile:
    """Opens (or creates) `path` (":memory:" for a private in-memory database) with `schema`."""

    def __init__(self, path: str | Path, schema: str, timeout: float = 60):
        self.path = path if str(path) == ":memory:" else Path(path)
        if self.path != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=timeout)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(schema)
        self._db.commit()

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _write(self, sql: str, rows: list[tuple]) -> int:
        """executemany + commit; how many rows changed."""
        return self._write_all([(sql, rows)])[0]

    def _write_all(self, writes: list[tuple[str, list[tuple]]]) -> list[int]:
        """Several (sql, rows) executemany in one commit; how many rows each changed."""
        changed = []
        with self._lock:
            for sql, rows in writes:
                before = self._db.total_changes
                self._db.executemany(sql, rows)
                changed.append(self._db.total_changes - before)
            self._db.commit()
        return changed

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
