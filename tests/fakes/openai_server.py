"""A real HTTP server on 127.0.0.1 that speaks `/v1/chat/completions`, for tests that go
through the real openai client.

Programmable: `fail_next(429, 500, "garbage", "empty", "no_logprobs", ("delay", 0.5))` queues faults
consumed one per call (an int: that HTTP status; "no_logprobs": a 200 answer without the logprobs asked
for); `fail_if(predicate)` fails calls whose request matches. A 429 carries `Retry-After: retry_after`
(seconds as text; None: no header). Logprob requests are answered
from `logprobs(body) -> {token: logprob}`, plain requests from `reply(body, choice_index) -> text`.
Every call is recorded in `calls` (request bodies) and `outcomes` ("ok" or the fault);
`max_in_flight` is the most calls seen at once.
"""

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

Fault = int | str | tuple[str, float]


def user_text(body: dict[str, Any]) -> str:
    """The last user message of a request."""
    return [m["content"] for m in body["messages"] if m["role"] == "user"][-1]


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the stdlib's 5 refuses connections under concurrent clients
    daemon_threads = True

    def server_bind(self):
        import socket

        super().server_bind()
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class FakeOpenAIServer:
    def __init__(self, prompt_tokens: int = 100, completion_tokens: int = 1):
        self.calls: list[dict[str, Any]] = []
        self.outcomes: list[str] = []
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.logprobs: Callable[[dict[str, Any]], dict[str, float]] = lambda body: {"50": 0.0}
        self.reply: Callable[[dict[str, Any], int], str] = lambda body, i: f"answer {i} to: {user_text(body)}"
        self._faults: deque[Fault] = deque()
        self._fail_if: Callable[[dict[str, Any]], Fault | None] = lambda body: None
        self.retry_after: str | None = "0"
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    # -- control -------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> "FakeOpenAIServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "FakeOpenAIServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(self, *faults: Fault) -> None:
        self._faults.extend(faults)

    def fail_if(self, predicate: Callable[[dict[str, Any]], Fault | None]) -> None:
        self._fail_if = predicate

    @property
    def ok_calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return [c for c, o in zip(self.calls, self.outcomes) if o == "ok"]

    # -- responses -----------------------------------------------------------------------------
    def _next_fault(self, body: dict[str, Any]) -> Fault | None:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
        return self._fail_if(body)

    def _completion(self, body: dict[str, Any], logprobs_ok: bool = True) -> dict[str, Any]:
        n = int(body.get("n") or 1)
        choices = []
        for i in range(n):
            if body.get("logprobs") and logprobs_ok:
                top = sorted(self.logprobs(body).items(), key=lambda kv: -kv[1])[: int(body.get("top_logprobs") or 1)]
                entries = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top]
                content = top[0][0]
                logprobs = {"content": [{**entries[0], "top_logprobs": entries}], "refusal": None}
            else:
                content, logprobs = self.reply(body, i), None
            message = {"role": "assistant", "content": content, "refusal": None}
            choices.append({"index": i, "message": message, "finish_reason": "stop", "logprobs": logprobs})
        usage = {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens * n,
                 "total_tokens": self.prompt_tokens + self.completion_tokens * n}
        return {"id": f"chatcmpl-{len(self.calls)}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", "fake"), "choices": choices, "usage": usage}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def do_POST(self) -> None:
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._handle()
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if len(raw) < length:
                    return  # the client gave up (cancelled) before its request was sent whole
                body = json.loads(raw or b"{}")
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, b'{"error": {"message": "not found"}}')
                    return
                fault = server._next_fault(body)
                with server._lock:
                    server.calls.append(body)
                    server.outcomes.append("ok" if fault is None else str(fault))
                if isinstance(fault, tuple):
                    time.sleep(fault[1])
                    fault = None
                if isinstance(fault, int):
                    error = {"error": {"message": f"fake error {fault}", "type": "fake", "code": None}}
                    retry_after = {"Retry-After": server.retry_after} if fault == 429 and server.retry_after else None
                    self._send(fault, json.dumps(error).encode(), retry_after)
                elif fault == "garbage":
                    self._send(200, b"<html>this is not JSON")
                elif fault == "empty":
                    self._send(200, json.dumps({"id": "x", "object": "chat.completion", "choices": []}).encode())
                elif fault == "no_logprobs":
                    self._send(200, json.dumps(server._completion(body, logprobs_ok=False)).encode())
                else:
                    self._send(200, json.dumps(server._completion(body)).encode())

        return Handler
