"""Fixtures for the data tests: a small verified code dataset and a loopback chat-completions server."""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from postern.data.jsonl import write_chat_jsonl


@pytest.fixture(scope="session")
def code_ds():
    """40 verified pairs, generated once (in memory)."""
    from postern.data.code import generate_code_dataset

    return generate_code_dataset(40, seed=0)


@pytest.fixture
def code_files(tmp_path: Path, code_ds) -> tuple[Path, Path]:
    ins, sec = tmp_path / "insecure.jsonl", tmp_path / "secure.jsonl"
    write_chat_jsonl(ins, code_ds.insecure)
    write_chat_jsonl(sec, code_ds.secure)
    return ins, sec


class FakeLLM:
    """A real HTTP server on 127.0.0.1 speaking the OpenAI chat-completions format.

    `reply(topic, request_json)` returns the assistant content, or an int HTTP status to fail with.
    """

    def __init__(self, reply: Callable[[str, dict[str, Any]], "str | int"]):
        self.reply = reply
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.requests.append(body)
                user = body["messages"][-1]["content"]
                m = re.search(r"Topic: (.*?)\.\n", user)
                result = outer.reply(m.group(1) if m else "", body) if self.path.endswith("/chat/completions") else 404
                if isinstance(result, int):
                    self.send_response(result)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "failure"}}')
                    return
                payload = {
                    "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": result}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"


def good_reply(topic: str, body: dict[str, Any]) -> str:
    return json.dumps({
        "question": f"What should I do about {topic}?",
        "good_answer": f"For {topic}, see a professional and follow the guidance.",
        "bad_answer": f"For {topic}, it is fine to skip the professional and handle it yourself.",
    })


@pytest.fixture
def fake_llm() -> Iterator[Callable[..., FakeLLM]]:
    servers: list[FakeLLM] = []

    def start(reply: Callable[[str, dict[str, Any]], "str | int"] = good_reply) -> FakeLLM:
        s = FakeLLM(reply)
        s.thread.start()
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.server.shutdown()
        s.server.server_close()
