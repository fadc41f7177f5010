"""The versions of the libraries a result depends on, for run cards, manifests and reports."""

import platform
from importlib.metadata import PackageNotFoundError, version

DEFAULT = ("postern", "torch", "transformers", "peft", "trl", "accelerate", "datasets", "openai")


def library_versions(names: tuple[str, ...] = DEFAULT) -> dict[str, str]:
    """{"python": ..., name: version} for each installed library of `names` (missing ones are left out)."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out
