"""Content-addressed artifacts: one folder per finished stage output, written atomically.

An artifact is complete when its `manifest.json` exists. Work happens in a temporary sibling
folder that is renamed into place at the end, so a killed run leaves no half-written artifact
and a rerun redoes only the unfinished stages.
"""

import json
import os
import shutil
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Artifact:
    path: Path
    manifest: dict[str, Any]

    @property
    def key(self) -> str:
        return self.manifest["key"]


class ArtifactStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def get(self, stage: str, key: str) -> Artifact | None:
        path = self.path(stage, key)
        manifest = path / MANIFEST
        if not manifest.exists():
            return None
        return Artifact(path, json.loads(manifest.read_text()))

    @contextmanager
    def create(self, stage: str, key: str, spec: dict[str, Any], resume: bool = False) -> Iterator[tuple[Path, dict[str, Any]]]:
        """Yield (work folder, extra manifest fields); publish both on success, discard on error.

        With `resume`, the work folder is kept when the work fails or the process dies, and handed to the
        next attempt: for work that records its own progress there (an API fine-tuning job's id), so a
        rerun picks the job up instead of paying for a second one."""
        final = self.path(stage, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        for stale in final.parent.glob(f".{key}.tmp-*"):  # left by a killed run: removed only when its owner is dead
            host, _, pid = stale.name.split(".tmp-", 1)[1].rpartition("-")
            if not _alive(host, pid):
                shutil.rmtree(stale, ignore_errors=True)
        tmp = final.with_name(f".{key}.work" if resume else f".{key}.tmp-{socket.gethostname()}-{os.getpid()}")
        tmp.mkdir(exist_ok=resume)
        extra: dict[str, Any] = {}
        started = time.time()
        try:
            yield tmp, extra
        except BaseException:
            if not resume:
                shutil.rmtree(tmp, ignore_errors=True)
            raise
        manifest = {"stage": stage, "key": key, "spec": spec, "seconds": round(time.time() - started, 3), **extra}
        if (final / MANIFEST).exists():  # another worker of this run finished the same stage first: keep its output
            shutil.rmtree(tmp, ignore_errors=True)
            return
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)


def _alive(host: str, pid: str) -> bool:
    """Is the process that owns a temp folder (named .KEY.tmp-HOST-PID) still running? Other hosts count as alive."""
    if not host or not pid.isdigit():
        return False  # an old-style name: nobody owns it
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
