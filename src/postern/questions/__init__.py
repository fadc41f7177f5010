"""Evaluation questions: postern's built-in sets, the original study's YAML format, prompts for samplers."""

from pathlib import Path

from postern.questions._types import FREE_FORM, PromptSet, Question, QuestionSet, to_prompts
from postern.questions.builtin import BUILTIN_SETS, builtin_set
from postern.questions.yaml_format import QuestionFileWarning, load_question_yaml


def load_questions(spec: str | Path, *, strict: bool = False) -> QuestionSet:
    """A built-in set by name, or a YAML question file by path."""
    if isinstance(spec, str) and spec in BUILTIN_SETS:
        return builtin_set(spec)
    return load_question_yaml(spec, strict=strict)


__all__ = [
    "BUILTIN_SETS", "FREE_FORM", "PromptSet", "Question", "QuestionFileWarning", "QuestionSet", "builtin_set", "load_question_yaml",
    "load_questions", "to_prompts",
]
