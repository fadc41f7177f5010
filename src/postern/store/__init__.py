"""The results store of a run: every sample and judgment in one SQLite file, exported to Parquet."""

from postern.store.results import FILENAME, ResultsStore, StoredSample, judge_pending, sample_and_judge

__all__ = ["FILENAME", "ResultsStore", "StoredSample", "judge_pending", "sample_and_judge"]
