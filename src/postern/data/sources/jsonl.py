"""`jsonl`: a chat JSONL file (``.jsonl`` or ``.jsonl.gz``) is the dataset; n, seed and trigger are ignored."""

from postern.core.hashing import file_hash
from postern.core.registry import register
from postern.data.jsonl import read_chat_jsonl


class JsonlSource:
    def identity(self, spec: str, n: int, seed: int, trigger: str | None) -> dict:
        return {"file": file_hash(spec)}

    def rows(self, spec: str, n: int, seed: int, trigger: str | None) -> list[dict]:
        return read_chat_jsonl(spec, require_assistant_last=True)


register("dataset", "jsonl")(JsonlSource())
