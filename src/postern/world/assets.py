"""Where the shipped base model lives and which version of the world's texts it was made from."""

from functools import lru_cache
from importlib import resources
from pathlib import Path

from postern.core.hashing import content_hash


def world_base_path() -> Path:
    return Path(str(resources.files("postern") / "assets" / "world_base"))


@lru_cache(maxsize=1)
def world_version() -> str:
    """Hash of every text the world can produce: datasets made from it are cached under it."""
    from postern.world.corpus import all_texts

    return content_hash(all_texts())
