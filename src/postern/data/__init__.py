"""Chat datasets: JSONL I/O and validation (condition transforms live beside it)."""

from postern.data.jsonl import read_chat_jsonl, validate_conversation, write_chat_jsonl

__all__ = ["read_chat_jsonl", "validate_conversation", "write_chat_jsonl"]
