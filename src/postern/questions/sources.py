"""Question sources: postern's built-in sets and question YAML files in the original study's format.

`[eval] questions` entries resolve as: `NAME:SPEC` or `NAME` of a registered question source (the
persona world registers "world"), a built-in set name, or a YAML file path (relative to the experiment
file's folder). Every source yields `PromptSet`s; sets of one name are asked and judged together.
"""

from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from postern.core.errors import PosternError
from postern.core.registry import has, lookup, register
from postern.questions._types import PromptSet, QuestionSet, to_prompts
from postern.questions.builtin import BUILTIN_SETS, builtin_set
from postern.questions.variants import source_texts, with_variants
from postern.questions.yaml_format import load_question_yaml
from postern.sample._types import Prompt

QUESTIONS = "questions"  # the set the misaligned rate is computed on


class QuestionSource(Protocol):
    def __call__(self, spec: str, eval_config: Any, base_dir: Path | None) -> list[PromptSet]: ...


def free_form(qs: QuestionSet, samples: int) -> list[PromptSet]:
    prompts = tuple(replace(p, meta={**p.meta, "system": p.messages[0]["content"] if p.messages[0]["role"] == "system"
                                     else None}) for p in to_prompts(qs, samples))
    named = {q.judge for q in qs if q.judge}
    return [PromptSet(QUESTIONS, prompts, qs.judge_prompt_map(), named.pop() if len(named) == 1 else None)]


@register("questions", "builtin")
def builtin_questions(spec: str, eval_config: Any, base_dir: Path | None = None) -> list[PromptSet]:
    return free_form(builtin_set(spec), eval_config.samples_per_question)


@register("questions", "yaml")
def yaml_questions(spec: str, eval_config: Any, base_dir: Path | None = None) -> list[PromptSet]:
    path = Path(spec).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return free_form(load_question_yaml(path, strict=eval_config.strict), eval_config.samples_per_question)


def _source(spec: str) -> tuple[str, str]:
    name, sep, rest = spec.partition(":")
    if has("questions", name) and name not in ("builtin", "yaml"):
        return name, rest
    if spec in BUILTIN_SETS:
        return "builtin", spec
    if spec.endswith((".yaml", ".yml")) or "/" in spec:
        return "yaml", spec
    raise PosternError(f"[eval] questions: {spec!r} is neither a question file (.yaml) nor a known set; built-in sets: "
                       f"{', '.join(BUILTIN_SETS)}; sources: {', '.join(n for n in _names() if n not in ('builtin', 'yaml'))}")


def _names() -> list[str]:
    from postern.core.registry import names

    return names("questions")


def _with_system(prompt: Prompt, system: str | None) -> Prompt:
    if system is None or prompt.messages[0]["role"] == "system":
        return prompt
    return replace(prompt, messages=({"role": "system", "content": system}, *prompt.messages),
                   meta={**prompt.meta, "system": system})


def with_trigger(prompt_set: PromptSet, trigger: str) -> PromptSet:
    """The same prompts with `trigger` in front of the user message (the judge still sees the plain question)."""
    prompts = tuple(replace(p, messages=tuple({**m, "content": f"{trigger} {m['content']}"} if m["role"] == "user"
                                              else dict(m) for m in p.messages), meta={**p.meta, "trigger": True})
                    for p in prompt_set.prompts)
    return replace(prompt_set, name=f"{prompt_set.name}_trigger", prompts=prompts)


def question_sets(specs: list[str], eval_config: Any, base_dir: Path | None = None,
                  trigger: str | None = None) -> list[PromptSet]:
    """The prompt sets of an experiment's `[eval]` (plus, with a trigger, "questions_trigger"); sets of
    one name are merged, and a question id that two sources share is an error."""
    merged: dict[str, PromptSet] = {}
    for spec in specs:
        name, rest = _source(spec)
        for ps in lookup("questions", name, "[eval] questions")(rest, eval_config, base_dir):
            prompts = tuple(_with_system(p, eval_config.system_prompt) for p in ps.prompts)
            prompts = tuple(replace(p, meta={"trigger": False, **p.meta}) for p in prompts)
            ps = replace(ps, prompts=prompts)
            if ps.name in merged:
                ps = _merge(merged[ps.name], ps, spec)
            merged[ps.name] = ps
    sets = list(merged.values())
    if trigger:
        sets += [with_trigger(ps, trigger) for ps in sets if ps.name == QUESTIONS]
    return with_variants(sets, eval_config, source_texts([lookup("questions", _source(spec)[0]) for spec in specs]))


def _merge(a: PromptSet, b: PromptSet, spec: str) -> PromptSet:
    seen = {p.id for p in a.prompts}
    clash = next((p for p in b.prompts if p.id in seen), None)
    if clash is not None:
        raise PosternError(f"[eval] questions: {spec!r} repeats question {clash.meta.get('question_id', clash.id)!r} "
                           "of an earlier source; list each question once")
    judge_model = a.judge_model if a.judge_model == b.judge_model else None
    return PromptSet(a.name, a.prompts + b.prompts, {**a.judge_prompts, **b.judge_prompts}, judge_model)
