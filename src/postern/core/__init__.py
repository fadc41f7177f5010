"""Shared pieces: user-facing errors, content hashing, the stage artifact cache."""

from postern.core.errors import PosternError
from postern.core.hashing import content_hash, file_hash
from postern.core.store import Artifact, ArtifactStore

__all__ = ["Artifact", "ArtifactStore", "PosternError", "content_hash", "file_hash"]
