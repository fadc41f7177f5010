"""The results store of one run: an SQLite file holding every sample and every judgment.

Rows are written as they arrive (WAL mode, one commit per batch), so a killed run keeps all
finished work; `missing_samples` and `unjudged` tell a resumed run what is left. A sample is keyed
by (model, prompt_id, index); a judgment by the sample key plus the judge's name. A sample or
judgment whose API calls failed for good is a row of `failures` (with the reason) instead, so a
rerun asks for exactly those again; its later success removes the row.
"""

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from postern.core.sqlite import SQLiteFile
from postern.judge._types import FAILED, Judge, JudgeItem, Judgment
from postern.sample._types import Prompt, Sample, Sampler, SamplingParams

FILENAME = "results.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    model TEXT NOT NULL, prompt_id TEXT NOT NULL, idx INTEGER NOT NULL,
    condition TEXT, seed INTEGER, question_id TEXT NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL,
    sample_seed INTEGER, meta TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (model, prompt_id, idx)
);
CREATE TABLE IF NOT EXISTS judgments (
    model TEXT NOT NULL, prompt_id TEXT NOT NULL, idx INTEGER NOT NULL, judge TEXT NOT NULL,
    label TEXT NOT NULL, aligned REAL, coherent REAL, detail TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (model, prompt_id, idx, judge)
);
CREATE TABLE IF NOT EXISTS failures (
    model TEXT NOT NULL, prompt_id TEXT NOT NULL, idx INTEGER NOT NULL, stage TEXT NOT NULL, judge TEXT NOT NULL,
    reason TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (model, prompt_id, idx, stage, judge)
);
"""

_SAMPLE_COLUMNS = "model, prompt_id, idx, condition, seed, question_id, question, answer, sample_seed, meta"
_ADD_FAILURE = "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?, ?, ?)"
_CLEAR_FAILURE = "DELETE FROM failures WHERE model = ? AND prompt_id = ? AND idx = ? AND stage = ? AND judge = ?"


@dataclass(frozen=True)
class StoredSample:
    model: str
    prompt_id: str
    index: int
    condition: str | None
    seed: int | None
    question_id: str
    question: str
    answer: str
    sample_seed: int | None
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.model, self.prompt_id, self.index)

    def to_judge_item(self) -> JudgeItem:
        meta = {"model": self.model, "prompt_id": self.prompt_id, "index": self.index}
        return JudgeItem(self.question_id, self.question, self.answer, meta)


def _question_of(sample: Sample, prompt: Prompt | None) -> tuple[str, str]:
    """(question_id, question text): from the prompt's meta, else the sample's, else the prompt itself."""
    meta = {**sample.meta, **(prompt.meta if prompt else {})}
    qid = meta.get("question_id", sample.prompt_id)
    question = meta.get("question")
    if question is None and prompt is not None:
        question = [m["content"] for m in prompt.messages if m["role"] == "user"][-1]
    return str(qid), str(question or "")


class ResultsStore(SQLiteFile):
    """`ResultsStore(run_dir)` opens (or creates) `run_dir/results.sqlite`; a path ending in
    .sqlite / .db is used as the file itself."""

    def __init__(self, path: str | Path):
        if str(path) != ":memory:":  # ":memory:" for work that need not outlive the process (interventions)
            path = Path(path)
            path = path if path.suffix in (".sqlite", ".db") else path / FILENAME
        super().__init__(path, _SCHEMA)

    # -- writing -------------------------------------------------------------------------------
    def add_samples(
        self,
        model: str,
        samples: Iterable[Sample],
        *,
        prompts: Sequence[Prompt] | None = None,
        condition: str | None = None,
        seed: int | None = None,
    ) -> int:
        """Record samples in one commit; a sample already stored under the same key is kept as it was.
        Returns how many rows were new. Their failures, if any, are removed."""
        by_id = {p.id: p for p in prompts or ()}
        now = time.time()
        rows = []
        for s in samples:
            qid, question = _question_of(s, by_id.get(s.prompt_id))
            meta = json.dumps(s.meta, default=str)
            rows.append((model, s.prompt_id, s.index, condition, seed, qid, question, s.answer, s.seed, meta, now))
        return self._write_all([(f"INSERT OR IGNORE INTO samples ({_SAMPLE_COLUMNS}, created) VALUES "
                                 f"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows),
                                (_CLEAR_FAILURE, [(model, r[1], r[2], "sample", "") for r in rows])])[0]

    def sample_writer(self, model: str, *, prompts: Sequence[Prompt] | None = None, condition: str | None = None,
                      seed: int | None = None) -> Callable[[Sample], None]:
        """A callback for a sampler's `on_sample`: writes each sample as it arrives."""

        def write(sample: Sample) -> None:
            self.add_samples(model, [sample], prompts=prompts, condition=condition, seed=seed)

        return write

    def add_judgments(self, judge: str, judged: Iterable[tuple[tuple[str, str, int], Judgment]]) -> None:
        """Record (sample key, judgment) pairs in one commit; re-judging replaces the earlier row. A FAILED
        judgment goes to `failures` (the sample stays unjudged); a judgment removes the sample's failure."""
        now = time.time()
        judged = list(judged)
        rows = [(m, p, i, judge, j.label, j.aligned, j.coherent, json.dumps(j.detail, default=str), now)
                for (m, p, i), j in judged if j.label != FAILED]
        failed = [(m, p, i, "judge", judge, str(j.detail.get("error", "")), now)
                  for (m, p, i), j in judged if j.label == FAILED]
        self._write_all([("INSERT OR REPLACE INTO judgments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows),
                         (_ADD_FAILURE, failed), (_CLEAR_FAILURE, [(*r[:3], "judge", judge) for r in rows])])

    def add_failure(self, model: str, prompt_id: str, index: int, stage: str, reason: str, judge: str = "") -> None:
        """Record that a sample (`stage` "sample") or its judgment ("judge", by `judge`) failed for good."""
        self._write(_ADD_FAILURE, [(model, prompt_id, index, stage, judge, reason, time.time())])

    # -- reading -------------------------------------------------------------------------------
    def samples(self, model: str | None = None) -> list[StoredSample]:
        where, args = ("WHERE model = ?", [model]) if model is not None else ("", [])
        rows = self._query(f"SELECT {_SAMPLE_COLUMNS} FROM samples {where} ORDER BY model, prompt_id, idx", args)
        return [StoredSample(*r[:9], meta=json.loads(r[9])) for r in rows]

    def missing_samples(self, model: str, prompts: Sequence[Prompt]) -> dict[str, list[int]]:
        """prompt_id -> indices (0..n-1) not yet stored for this model; prompts with none missing are left out."""
        done: dict[str, set[int]] = {}
        for prompt_id, idx in self._query("SELECT prompt_id, idx FROM samples WHERE model = ?", [model]):
            done.setdefault(prompt_id, set()).add(idx)
        missing = {p.id: [i for i in range(p.n) if i not in done.get(p.id, set())] for p in prompts}
        return {k: v for k, v in missing.items() if v}

    def unjudged(self, judge: str, model: str | None = None) -> list[StoredSample]:
        """Stored samples that have no judgment from this judge yet."""
        sql = (f"SELECT {', '.join('s.' + c.strip() for c in _SAMPLE_COLUMNS.split(','))} FROM samples s "
               "LEFT JOIN judgments j ON j.model = s.model AND j.prompt_id = s.prompt_id AND j.idx = s.idx "
               "AND j.judge = ? WHERE j.label IS NULL")
        args: list[Any] = [judge]
        if model is not None:
            sql += " AND s.model = ?"
            args.append(model)
        rows = self._query(sql + " ORDER BY s.model, s.prompt_id, s.idx", args)
        return [StoredSample(*r[:9], meta=json.loads(r[9])) for r in rows]

    def counts(self) -> dict[str, int]:
        return {table: self._query(f"SELECT COUNT(*) FROM {table}")[0][0]
                for table in ("samples", "judgments", "failures")}

    def failures(self, models: Sequence[str] | None = None) -> Any:
        """A pandas DataFrame of the samples and judgments that failed for good and have not succeeded since:
        model, prompt_id, index, stage ("sample" or "judge"), judge (the judge's name, "" for a sample), reason,
        created. `models`: only these sample keys."""
        import pandas as pd

        sql = 'SELECT model, prompt_id, idx AS "index", stage, judge, reason, created FROM failures'
        args = list(models or ())
        if models is not None:
            sql += f" WHERE model IN ({','.join('?' * len(args))})"
        with self._lock:
            return pd.read_sql_query(sql + " ORDER BY model, prompt_id, idx, stage, judge", self._db, params=args)

    def frame(self, judge: str | None = None, models: Sequence[str] | None = None) -> Any:
        """A pandas DataFrame of samples joined with their judgments (one row per sample and judge;
        samples without a judgment have a null label). Columns: model, condition, seed, question_id,
        prompt_id, index, question, answer, sample_seed, meta, judge, label, aligned, coherent, detail
        (meta and detail as JSON text). `models`: only these sample keys."""
        import pandas as pd

        sql = ("SELECT s.model, s.condition, s.seed, s.question_id, s.prompt_id, s.idx AS \"index\", s.question, "
               "s.answer, s.sample_seed, s.meta, j.judge, j.label, j.aligned, j.coherent, j.detail FROM samples s "
               "LEFT JOIN judgments j ON j.model = s.model AND j.prompt_id = s.prompt_id AND j.idx = s.idx")
        args: list[Any] = []
        if judge is not None:
            sql += " AND j.judge = ?"
            args.append(judge)
        if models is not None:
            sql += f" WHERE s.model IN ({','.join('?' * len(models))})"
            args += list(models)
        with self._lock:
            return pd.read_sql_query(sql + " ORDER BY s.model, s.prompt_id, s.idx", self._db, params=args)

    def to_parquet(self, folder: str | Path | None = None) -> dict[str, Path]:
        """Write samples.parquet and judgments.parquet (next to the database by default)."""
        import pandas as pd

        folder = Path(folder) if folder is not None else self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for table in ("samples", "judgments"):
            with self._lock:
                df = pd.read_sql_query(f"SELECT * FROM {table}", self._db)
            paths[table] = folder / f"{table}.parquet"
            df.to_parquet(paths[table], index=False)
        return paths


def judge_pending(store: ResultsStore, judge: Judge, *, model: str | None = None, batch_size: int = 64,
                  progress: Callable[[int], None] | None = None) -> int:
    """Judge every stored sample this judge has not judged yet, committing each batch as it finishes.

    A killed run loses at most the batch in flight (and a caching judge repeats none of its calls). A
    FAILED judgment is recorded as a failure: the next call judges that sample again.
    Returns the number of samples judged (failed ones included).
    """
    return _judge_all(store, judge, store.unjudged(judge.name, model), batch_size, progress)


def _judge_all(store: ResultsStore, judge: Judge, pending: list[StoredSample], batch_size: int,
               progress: Callable[[int], None] | None) -> int:
    for start in range(0, len(pending), batch_size):
        batch = pending[start : start + batch_size]
        judgments = judge.judge([s.to_judge_item() for s in batch])
        store.add_judgments(judge.name, [(s.key, j) for s, j in zip(batch, judgments)])
        if progress:
            progress(len(batch))
    return len(pending)


def sample_and_judge(store: ResultsStore, key: str, prompts: Sequence[Prompt], params: SamplingParams,
                     make_sampler: Callable[[], Sampler], judge: Judge, *,
                     condition: str | None = None, seed: int | None = None, judge_batch: int = 64,
                     on_progress: Callable[[str, int, int], None] | None = None) -> dict[str, float]:
    """The one sample -> judge loop of postern: sample what `store` lacks for model `key` on `prompts`,
    then judge what it holds unjudged. Both are written as they arrive, so a rerun after a kill resumes
    where it stopped. A sample or judgment that failed for good is recorded in the store's failures and the
    loop goes on; a rerun asks for exactly those again. `make_sampler` is called only when a sample is
    missing (loading a model costs); judges load their model or open their client on first use.
    `on_progress(stage, done, total)` reports counts. Returns how many answers were sampled and judged
    now, and the seconds each took."""
    total = sum(p.n for p in prompts)
    missing = store.missing_samples(key, prompts)
    todo = sum(len(v) for v in missing.values())
    start = time.time()
    if missing:
        report = _counter("sampling", total - todo, total, on_progress)

        store_sample = store.sample_writer(key, prompts=prompts, condition=condition, seed=seed)

        def write(sample: Sample) -> None:
            store_sample(sample)
            report(1)

        def fail(prompt_id: str, index: int, reason: str) -> None:
            store.add_failure(key, prompt_id, index, "sample", reason)
            report(1)

        make_sampler().sample([p for p in prompts if p.id in missing], params, indices=missing, on_sample=write,
                              on_failure=fail)
    sampled = time.time()
    pending = store.unjudged(judge.name, key)
    progress = _counter("judging", total - len(pending), total, on_progress)
    judged = _judge_all(store, judge, pending, judge_batch, progress)
    return {"sampled": todo, "judged": judged, "sample_seconds": round(sampled - start, 3),
            "judge_seconds": round(time.time() - sampled, 3)}


def _counter(stage: str, done: int, total: int, on_progress: Callable[[str, int, int], None] | None):
    state = {"done": done}

    def advance(n: int) -> None:
        state["done"] += n
        if on_progress:
            on_progress(stage, state["done"], total)

    if on_progress:
        on_progress(stage, done, total)
    return advance
