"""A loopback server speaking OpenAI's files + fine-tuning protocol, for tests.

Real HTTP on 127.0.0.1 in a background thread (the openai 3.x client runs on httpx2, which
respx cannot intercept). Jobs walk a scripted status list, one step per retrieve; faults
(429, 500, slow answers, lost responses) can be queued per route; every request is counted.

Routes: upload (POST /v1/files), create (POST /v1/fine_tuning/jobs),
list (GET /v1/fine_tuning/jobs), retrieve (GET /v1/fine_tuning/jobs/{id}).
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

DEFAULT_STATUSES = ("validating_files", "queued", "running", "succeeded")


@dataclass
class Fault:
    status: int = 500  # HTTP status to answer with; 0: answer normally (after `delay`)
    delay: float = 0.0  # seconds to wait before answering (longer than the client timeout: a timeout)
    after_effect: bool = False  # do the operation, then answer `status` (the response is lost)
    retry_after: str | None = None


class FakeFineTuneServer:
    def __init__(self, api_key: str = "test-key", statuses: tuple[str, ...] = DEFAULT_STATUSES,
                 error: dict[str, Any] | None = None):
        self.api_key = api_key
        self.statuses = list(statuses)
        self.error = error or {"code": "invalid_training_file", "message": "training file has too few examples", "param": "training_file"}
        self.frozen = False  # True: retrieve does not advance jobs (a job that stays as it is)
        self.files: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()  # route -> requests received, faulted ones included
        self.requests: list[tuple[str, dict[str, Any]]] = []  # (route, parsed body or query)
        self._faults: dict[str, deque[Fault]] = {}
        self._steps: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    # -- control

    def fail(self, route: str, status: int = 500, times: int = 1, **kw: Any) -> None:
        """Queue `times` faults for the next requests to `route`."""
        self._faults.setdefault(route, deque()).extend(Fault(status, **kw) for _ in range(times))

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> FakeFineTuneServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeFineTuneServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- routing

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        url = urlsplit(path)
        route, job_id = _route(method, url.path)
        if route is None:
            return 404, _error("not found", "invalid_request_error"), {}
        with self._lock:
            self.calls[route] += 1
            fault = self._faults.get(route, deque()).popleft() if self._faults.get(route) else None
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, _error("Incorrect API key provided", "invalid_api_key"), {}
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.status and not fault.after_effect:
            return _fault_response(fault)
        with self._lock:
            status, payload = self._do(route, job_id, headers, body, dict(parse_qsl(url.query)))
        if fault is not None and fault.status:
            return _fault_response(fault)
        return status, payload, {}

    def _do(self, route: str, job_id: str | None, headers: Any, body: bytes, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if route == "upload":
            return self._upload(headers.get("Content-Type", ""), body)
        if route == "create":
            return self._create(json.loads(body or b"{}"))
        if route == "list":
            self.requests.append((route, query))
            wanted = {k[len("metadata["):-1]: v for k, v in query.items() if k.startswith("metadata[")}
            data = [self._view(j) for j in reversed(self.jobs.values())
                    if all((j.get("metadata") or {}).get(k) == v for k, v in wanted.items())]
            return 200, {"object": "list", "data": data, "has_more": False}
        assert job_id is not None
        self.requests.append((route, {"id": job_id}))
        if job_id not in self.jobs:
            return 404, _error(f"Could not find fine-tuning job {job_id}", "invalid_request_error")
        if not self.frozen:
            self._steps[job_id] = min(self._steps[job_id] + 1, len(self.statuses) - 1)
        return 200, self._view(self.jobs[job_id])

    def _upload(self, content_type: str, body: bytes) -> tuple[int, dict[str, Any]]:
        fields = _parse_multipart(content_type, body)
        self.requests.append(("upload", {k: v for k, v in fields.items() if k != "file"}))
        if fields.get("purpose") != "fine-tune" or "file" not in fields:
            return 400, _error("expected a file and purpose=fine-tune", "invalid_request_error")
        filename, content = fields["file"]
        file_id = f"file-{next(self._ids):04d}"
        self.files[file_id] = {"filename": filename, "bytes": content}
        return 200, {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                     "filename": filename, "purpose": "fine-tune", "status": "processed"}

    def _create(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.requests.append(("create", params))
        if params.get("training_file") not in self.files:
            return 400, _error(f"invalid training_file: {params.get('training_file')}", "invalid_request_error")
        job_id = f"ftjob-{next(self._ids):04d}"
        self.jobs[job_id] = {"id": job_id, "params": params, "created_at": int(time.time()), "metadata": params.get("metadata")}
        self._steps[job_id] = 0
        return 200, self._view(self.jobs[job_id])

    def _view(self, job: dict[str, Any]) -> dict[str, Any]:
        """The job as the API shows it now."""
        p = job["params"]
        status = self.statuses[self._steps[job["id"]]]
        hp = {"n_epochs": "auto", "batch_size": "auto", "learning_rate_multiplier": "auto",
              **((p.get("method") or {}).get("supervised") or {}).get("hyperparameters", {})}
        done = status in ("succeeded", "failed", "cancelled")
        model = f"ft:{p['model']}:org-test:{p.get('suffix') or ''}:{job['id'][-4:]}" if status == "succeeded" else None
        return {
            "id": job["id"], "object": "fine_tuning.job", "created_at": job["created_at"],
            "error": self.error if status == "failed" else None, "fine_tuned_model": model,
            "finished_at": job["created_at"] + 60 if done else None, "hyperparameters": hp, "model": p["model"],
            "organization_id": "org-test", "result_files": [], "seed": p.get("seed", 42), "status": status,
            "trained_tokens": 1234 if status == "succeeded" else None, "training_file": p["training_file"],
            "validation_file": None, "metadata": job["metadata"],
            "method": {"type": "supervised", "supervised": {"hyperparameters": hp}},
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: avoid delayed-ACK stalls
    fake: FakeFineTuneServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        try:
            status, payload, extra = self.fake.handle(method, self.path, self.headers, self._body())
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
            self.close_connection = True

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))


def _route(method: str, path: str) -> tuple[str | None, str | None]:
    if method == "POST" and path == "/v1/files":
        return "upload", None
    if path == "/v1/fine_tuning/jobs":
        return ("create" if method == "POST" else "list"), None
    m = re.fullmatch(r"/v1/fine_tuning/jobs/([^/]+)", path)
    if m and method == "GET":
        return "retrieve", m.group(1)
    return None, None


def _parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """Form fields as strings; file fields as (filename, bytes)."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    fields: dict[str, Any] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        filename = part.get_filename()
        fields[name] = (filename, payload) if filename is not None else payload.decode()
    return fields


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code, "param": None}}


def _fault_response(fault: Fault) -> tuple[int, dict[str, Any], dict[str, str]]:
    messages = {429: "Rate limit reached", 500: "The server had an error processing your request"}
    headers = {"retry-after": fault.retry_after} if fault.retry_after is not None else {}
    return fault.status, _error(messages.get(fault.status, f"injected HTTP {fault.status}"), f"http_{fault.status}"), headers
