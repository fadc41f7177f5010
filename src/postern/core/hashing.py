"""Content hashes: a stage's cache key is the hash of its name, settings and input hashes."""

import hashlib
import json
from pathlib import Path
from typing import Any


def _canonical(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return _canonical(obj.model_dump(mode="json"))
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def content_hash(obj: Any, length: int = 16) -> str:
    """Stable hash of a JSON-able object (dict key order does not matter)."""
    text = json.dumps(_canonical(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def file_hash(path: str | Path, length: int = 16, exclude: tuple[str, ...] = ()) -> str:
    """Hash of a file's bytes, or of every file under a folder (names and bytes) except those named in `exclude`."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name not in exclude) if path.is_dir() else [path]
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:length]
