"""Throughput of the OpenAI logprob judge against the loopback server with injected latency.

Each answer needs two judge calls (alignment, coherence), so with `c` calls in flight and latency L
the ideal is c / L calls/s = c / (2 L) judgments/s. The judge runs through the real openai client
against `tests/fakes/openai_server.py`, no cache, at concurrency 1, 8 and 32, with about `--rounds`
calls per slot (so each level takes about rounds x latency seconds; the first and last round of
a level are ramp-up and tail, so fewer rounds read lower).

Usage: python bench/judge_throughput.py [--latency 0.2] [--rounds 20] [--levels 1 8 32]
"""

import argparse
import sys
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fakes.openai_server import FakeOpenAIServer  # noqa: E402
from postern.judge import JudgeItem  # noqa: E402
from postern.judge.logprob import OpenAILogprobJudge  # noqa: E402


def measure(server: FakeOpenAIServer, concurrency: int, rounds: int) -> tuple[int, int, float]:
    n_items = max(1, rounds * concurrency // 2)
    items = [JudgeItem(f"q{i}", f"question {i}?", f"answer {i}.") for i in range(n_items)]
    judge = OpenAILogprobJudge("bench-judge", base_url=server.base_url, api_key="bench", concurrency=concurrency)
    before = len(server.calls)
    start = time.perf_counter()
    judgments = judge.judge(items)
    seconds = time.perf_counter() - start
    assert len(judgments) == n_items, judgments
    if judge.usage.retries:
        print(f"  ({judge.usage.retries} retries at concurrency {concurrency})")
    return n_items, len(server.calls) - before, seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the server waits before each answer")
    parser.add_argument("--rounds", type=int, default=20, help="calls per concurrency slot")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--stock-server", action="store_true", help="the test server as it is (backlog 5, Nagle on)")
    args = parser.parse_args()
    if not args.stock_server:
        # The loopback server as a benchmark harness: a listen backlog for 32+ simultaneous connects (the
        # stdlib default of 5 drops SYNs, costing 1 s retransmits), and TCP_NODELAY so a response's body is
        # not held back by Nagle until the client's delayed ACK (about 40 ms per call).
        ThreadingHTTPServer.request_queue_size = 128
    server = FakeOpenAIServer()
    if not args.stock_server:
        server._httpd.RequestHandlerClass.disable_nagle_algorithm = True
    with server:
        server.logprobs = lambda body: {"80": -0.1, "90": -2.4}
        server.fail_if(lambda body: ("delay", args.latency))
        measure(server, 2, 1)  # warm up: imports, first connection
        print(f"loopback server ({'stock' if args.stock_server else 'backlog 128, TCP_NODELAY'}), "
              f"{args.latency * 1000:.0f} ms latency per call, 2 calls per judgment")
        print(f"{'concurrency':>11} {'judgments':>9} {'calls':>6} {'seconds':>8} {'judgments/s':>12} "
              f"{'ideal/s':>8} {'of ideal':>9} {'max in flight':>14}")
        for c in args.levels:
            server.max_in_flight = 0
            n, calls, seconds = measure(server, c, args.rounds)
            rate, ideal = n / seconds, c / args.latency / 2
            print(f"{c:>11} {n:>9} {calls:>6} {seconds:>8.2f} {rate:>12.1f} {ideal:>8.1f} {rate / ideal:>9.0%} "
                  f"{server.max_in_flight:>14}")


if __name__ == "__main__":
    main()
