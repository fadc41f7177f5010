"""The driver's matrix of job states (Ray executor) and where a stage ran."""

import socket
import time

from postern.runner.jobs import Job
from postern.runner.progress import Matrix, where


def test_matrix_counts_states_keeps_finished_ones_and_estimates_the_rest():
    jobs = [Job("base", 0), Job("insecure", 0), Job("insecure", 1)]
    m = Matrix(jobs, start=time.time() - 10)
    assert m.counts()["queued"] == 6 and m.eta() is None  # nothing finished: no pace yet
    m.set(jobs[0], "train", "skipped")
    m.set(jobs[1], "train", "done", node="n1")
    m.set(jobs[1], "train", "running", node="n1")  # a late "started" event does not undo "done"
    m.set(jobs[2], "train", "failed")
    m.set(jobs[2], "evaluate", "skipped")
    m.set(jobs[1], "evaluate", "running")
    c = m.counts()
    assert (c["done"], c["failed"], c["skipped"], c["running"], c["queued"]) == (1, 1, 2, 1, 1)
    assert 4 < m.eta() < 6  # 4 stages finished in 10 s, 2 left
    table = m.table("t")
    assert table.row_count == 3 and "eta" in table.caption and m.node[jobs[1]] == "n1"


def test_where_names_the_host():
    assert where()["host"] == socket.gethostname()
