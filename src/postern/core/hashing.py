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


def file_hash(path: str | Path, length: int = 16, exclude: tuple[str, ...] = (), skip_dirs: tuple[str, ...] = (),
              by_size_above: int | None = None) -> str:
    """Hash of a file's bytes, or of every file under a folder (names and bytes) except those named in
    `exclude` or lying under a top-level folder of `skip_dirs`. Files larger than `by_size_above` bytes
    count by name and size only (so a 60 GB model is not read whole to name it)."""
    path = Path(path)
    h = hashlib.sha256()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name not in exclude
                       and p.relative_to(path).parts[0] not in skip_dirs)
    else:
        files = [path]
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        size = f.stat().st_size
        h.update(str(size).encode() if by_size_above is not None and size > by_size_above else f.read_bytes())
    return h.hexdigest()[:length]
