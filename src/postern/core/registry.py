"""Backends register themselves: `@register("sampler", "hf")` on a factory, `lookup("sampler", "hf")` to use it.

Kinds: dataset, questions, trainer, sampler, judge, model, intervention, corpus. A backend is one file with one `@register`
call in its stage's package (`postern.data.sources`, `postern.questions`, `postern.train`, `postern.sample`,
`postern.judge`); the first lookup of a kind imports those packages' modules (their heavy libraries are
imported lazily inside functions, so this is cheap). Providers that register into several kinds (the
persona world) are listed in `PROVIDERS`; third-party packages add theirs under the `postern.plugins`
entry-point group, and an experiment file can name modules to import in `plugins = [...]`.
"""

import importlib
import pkgutil
from importlib.metadata import entry_points
from typing import Any, Callable, TypeVar

from postern.core.errors import PosternError

T = TypeVar("T")

HOMES: dict[str, tuple[str, ...]] = {
    "dataset": ("postern.data.sources",),
    "questions": ("postern.questions",),
    "trainer": ("postern.train",),
    "sampler": ("postern.sample",),
    "judge": ("postern.judge",),
    "model": (),
    "intervention": ("postern.interp.defences",),
    "corpus": (),  # a labelled pretraining corpus: fn(n, seed, base_dir) -> [(label, messages)] (the persona check)
}
PROVIDERS: tuple[str, ...] = ("postern.world.provider",)

_REGISTRY: dict[str, dict[str, Any]] = {kind: {} for kind in HOMES}
_LOADED: set[str] = set()


def register(kind: str, name: str) -> Callable[[T], T]:
    """Decorator: make `obj` the `kind` backend called `name`. A second registration of a name is an error."""
    if kind not in _REGISTRY:
        raise ValueError(f"unknown backend kind {kind!r}; kinds are {', '.join(_REGISTRY)}")

    def add(obj: T) -> T:
        known = _REGISTRY[kind].get(name)
        if known is not None and known is not obj and _qualname(known) != _qualname(obj):
            raise ValueError(f"{kind} backend {name!r} is registered twice ({_qualname(known)}, {_qualname(obj)})")
        _REGISTRY[kind][name] = obj
        return obj

    return add


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


def import_plugins(modules: list[str] | tuple[str, ...]) -> None:
    """Import modules that register backends (an experiment file's `plugins`)."""
    for module in modules:
        if module in _LOADED:
            continue
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise PosternError(f"plugin module {module!r} could not be imported ({e}); check `plugins`") from e
        _LOADED.add(module)


def _discover(kind: str) -> None:
    if f"kind:{kind}" in _LOADED:
        return
    modules = list(PROVIDERS)
    for package in HOMES[kind]:
        pkg = importlib.import_module(package)
        modules += [f"{package}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")]
    import_plugins(modules)
    for ep in entry_points(group="postern.plugins"):
        if ep.value not in _LOADED:
            ep.load()
            _LOADED.add(ep.value)
    _LOADED.add(f"kind:{kind}")


def names(kind: str) -> list[str]:
    _discover(kind)
    return sorted(_REGISTRY[kind])


def has(kind: str, name: str) -> bool:
    _discover(kind)
    return name in _REGISTRY[kind]


def lookup(kind: str, name: str, where: str = "") -> Any:
    """The backend `name` of `kind`; an error that lists the known ones otherwise (`where`: the key that named it)."""
    _discover(kind)
    try:
        return _REGISTRY[kind][name]
    except KeyError:
        prefix = f"{where}: " if where else ""
        raise PosternError(f"{prefix}unknown {kind} backend {name!r}; known: {', '.join(sorted(_REGISTRY[kind]))}") from None
