"""Which conditions a condition's training needs: the one it continues from (`continue_from`) and the one
whose fine-tune gives its intervention's direction ("condition:NAME"), both seed-matched. Checked when the
experiment file loads: names exist, are trained, and form no cycle."""

from pydantic import ValidationError

NAMED_DIRECTIONS = ("base", "random")


def direction_condition(direction: str) -> str | None:
    """The condition a direction spec reads its fine-tune from: "condition:NAME" or "random:condition:NAME"."""
    spec = direction.removeprefix("random:") if direction.startswith("random:") else direction
    return spec.partition(":")[2] if spec.startswith("condition:") else None


def upstream_conditions(exp, name: str) -> list[str]:
    """The conditions whose seed-matched fine-tune `name`'s training needs (evaluation-only conditions: none)."""
    cond = exp.conditions[name]
    if cond.evaluation_only:
        return []
    out = [cond.continue_from] if cond.continue_from else []
    intervention = exp.train_config(name, exp.seeds[0]).intervention
    if intervention and (source := direction_condition(intervention.direction)):
        out.append(source)
    return list(dict.fromkeys(out))


def _train_error(name: str, err: ValidationError) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    return f"conditions.{name}.train.{key}: {first['msg'].removeprefix('Value error, ')}"


def check_dependencies(exp) -> None:
    """ValueError (one line, naming the key) for a condition's training settings that cannot work."""
    for name, cond in exp.conditions.items():
        if cond.evaluation_only or set(cond.train) - set(type(exp.train).model_fields):
            continue  # unknown keys are reported by the schema itself
        try:
            config = exp.train_config(name, exp.seeds[0])
        except ValidationError as e:
            raise ValueError(_train_error(name, e)) from None
        where = f"conditions.{name}.train.intervention" if "intervention" in cond.train else "train.intervention"
        if config.intervention and config.backend != "local":
            raise ValueError(f"{where}: interventions hook the model's activations during training; "
                             f'[train] backend = "{config.backend}" does not train here (use "local")')
        for key, other in ((f"conditions.{name}.continue_from", cond.continue_from),
                           (f"{where}.direction", direction_condition(config.intervention.direction)
                            if config.intervention else None)):
            if other is None:
                continue
            if other not in exp.conditions:
                raise ValueError(f"{key}: no condition {other!r}; known: {', '.join(exp.conditions)}")
            if exp.conditions[other].evaluation_only:
                raise ValueError(f"{key}: {other!r} is evaluation-only (not trained here), so it has no "
                                 "seed-matched fine-tune to use")
    _check_cycles(exp)


def _check_cycles(exp) -> None:
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "open":
            cycle = path[path.index(name):] + [name]
            raise ValueError(f"conditions.{name}: its training needs itself ({' -> '.join(cycle)}); a condition "
                             "cannot continue from, or take its direction from, a condition that needs it")
        state[name] = "open"
        for other in upstream_conditions(exp, name):
            visit(other, [*path, name])
        state[name] = "done"

    for name in exp.conditions:
        visit(name, [])
