"""Loading an experiment file (TOML or YAML) with errors that name the file and the key."""

import difflib
import tomllib
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from postern.config.schema import ConditionConfig, Experiment
from postern.core.errors import PosternError


def _fields_at(loc: tuple) -> list[str]:
    """Valid key names where an unknown key was found (for 'did you mean')."""
    model, parts, i = Experiment, [str(p) for p in loc[:-1]], 0
    while i < len(parts):
        if parts[i] == "conditions" and model is Experiment:
            model, i = ConditionConfig, i + 2  # skip the condition's name
            continue
        field = model.model_fields.get(parts[i])
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model, i = annotation, i + 1
    return list(model.model_fields)


def _format(err: dict, path: Path) -> str:
    key = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(err["loc"][-1]), _fields_at(err["loc"]), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "; remove it or check the spelling"
        return f"{path}: unknown key {key!r}{hint}"
    if err["type"] == "missing":
        return f"{path}: missing key {key!r}"
    message = err["msg"].removeprefix("Value error, ")
    return f"{path}: {key or 'file'}: {message}"


def parse_file(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise PosternError(f"{path}: experiment file not found") from e
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix in (".yaml", ".yml"):
            return yaml.safe_load(text) or {}
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as e:
        raise PosternError(f"{path}: not valid {path.suffix[1:].upper()}: {e}") from e
    raise PosternError(f"{path}: experiment files are .toml or .yaml")


def _resolve_paths(data: dict, folder: Path) -> dict:
    """Relative paths in the file resolve against the file's folder (where such a path exists there)."""

    def fix(value):
        if not isinstance(value, str):
            return value
        prefix, sep, rest = value.partition(":")
        if sep and prefix.isidentifier() and rest:  # NAME:PATH, e.g. csv:questions.csv
            return f"{prefix}:{fix(rest)}"
        if Path(value).is_absolute() or not (folder / value).exists():
            return value
        return str((folder / value).resolve())

    data = dict(data)
    if "base_model" in data and not (isinstance(data.get("sample"), dict) and data["sample"].get("backend") == "openai"):
        data["base_model"] = fix(data["base_model"])
    if isinstance(data.get("eval"), dict) and isinstance(data["eval"].get("questions"), list):
        data["eval"] = {**data["eval"], "questions": [fix(q) for q in data["eval"]["questions"]]}
    screen = data.get("screen")
    if isinstance(screen, dict) and isinstance(screen.get("direction"), str):  # a file, or FILE:NAME of a dict
        direction = screen["direction"]
        path, sep, name = direction.rpartition(":")
        whole = not sep or (folder / direction).exists()
        data["screen"] = {**screen, "direction": fix(direction) if whole else f"{fix(path)}:{name}"}
    judge = data.get("judge")
    if isinstance(judge, dict) and "model" in judge and judge.get("kind") == "hf-logprob":  # API judges: a name
        data["judge"] = {**judge, "model": fix(judge["model"])}
    api = isinstance(data.get("sample"), dict) and data["sample"].get("backend") == "openai"
    local = ("dataset", "adapter") if api else ("dataset", "model", "adapter")  # API models are names
    if isinstance(data.get("conditions"), dict):
        data["conditions"] = {name: {**c, **{k: fix(c[k]) for k in local if k in c}}
                              if isinstance(c, dict) else c for name, c in data["conditions"].items()}
    return data


def load_experiment(path: str | Path) -> Experiment:
    path = Path(path)
    data = parse_file(path)
    if not isinstance(data, dict):
        raise PosternError(f"{path}: an experiment file is a table of settings, not a {type(data).__name__}")
    data.setdefault("name", path.stem)
    data = _resolve_paths(data, path.resolve().parent)
    try:
        return Experiment(**data)
    except ValidationError as e:
        raise PosternError("\n".join(_format(err, path) for err in e.errors())) from e
