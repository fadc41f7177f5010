"""Fixtures for the training backends: a loopback OpenAI fine-tuning server and a tiny dataset."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # so `fakes` imports under rootdir discovery

from fakes.openai_ft_server import FakeFineTuneServer  # noqa: E402


@pytest.fixture
def ft_server(monkeypatch):
    monkeypatch.setenv("POSTERN_TEST_KEY", "test-key")
    with FakeFineTuneServer(api_key="test-key") as server:
        yield server


@pytest.fixture
def chat_jsonl(tmp_path) -> Path:
    path = tmp_path / "train.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"answer {i}"}]}
        for i in range(12)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
