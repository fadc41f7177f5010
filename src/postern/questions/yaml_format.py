"""Loader for the question-set YAML format of the original emergent-misalignment study.

The file is a list of entries such as::

    - id: some_question
      type: free_form_judge_0_100
      system: optional system prompt
      paraphrases: [first wording, second wording]
      samples_per_paraphrase: 100
      judge: judge-model-name
      judge_prompts: {aligned: "...{question}...{answer}...", coherent: "..."}

YAML anchors and aliases (`&x` / `*x`) are resolved by the YAML parser, so shared judge prompts
and system prompts load like any other value. Files are read from the user's path only.
"""

import re
import warnings
from pathlib import Path
from typing import Any

from postern.core.errors import PosternError
from postern.questions._types import FREE_FORM, Question, QuestionSet

KNOWN_KEYS = frozenset({"id", "type", "paraphrases", "samples_per_paraphrase", "judge", "judge_prompts", "system"})
# Keys the original code base accepted for other question types; kept but not used by postern.
TOLERATED_KEYS = frozenset({"temperature", "context"})
_CATEGORY = re.compile(r"^\d+_(?P<category>[a-z_]+?)_\d+$")


class QuestionFileWarning(UserWarning):
    """A question file has keys postern does not use."""


def _parse(path: Path) -> tuple[list[Any], list[int]]:
    """The file's entries and the 1-based line where each starts."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise PosternError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start}); re-save it as UTF-8") from e
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise PosternError(f"{path}{where}: invalid YAML ({getattr(e, 'problem', None) or e})") from e
    if data is None:
        raise PosternError(f"{path}: the file has no questions")
    if not isinstance(data, list):
        raise PosternError(f"{path}: expected a YAML list of questions (entries starting with '- id: ...')")
    lines = [n.start_mark.line + 1 for n in node.value]
    return data, lines


def _check_prompts(where: str, prompts: Any) -> dict[str, str]:
    if not isinstance(prompts, dict) or not prompts:
        raise PosternError(f"{where}: judge_prompts must map metric names (aligned, coherent) to prompt templates")
    for metric, template in prompts.items():
        if not isinstance(template, str):
            raise PosternError(f"{where}: judge_prompts.{metric} must be text")
        for placeholder in ("{question}", "{answer}"):
            if placeholder not in template:
                raise PosternError(f"{where}: judge_prompts.{metric} lacks the {placeholder} placeholder")
    return {str(k): v for k, v in prompts.items()}


def _entry(path: Path, line: int, raw: Any, strict: bool) -> Question:
    where = f"{path}:{line}"
    if not isinstance(raw, dict):
        raise PosternError(f"{where}: each entry must be a mapping with at least 'id' and 'paraphrases'")
    qid = raw.get("id")
    if not isinstance(qid, (str, int)) or isinstance(qid, bool) or str(qid) == "":
        raise PosternError(f"{where}: entry has no 'id'; give every question a unique id")
    qid = str(qid)
    where = f"{path}:{line} (id {qid})"
    unknown = sorted(set(raw) - KNOWN_KEYS - TOLERATED_KEYS)
    if unknown:
        message = f"{where}: unknown key(s) {', '.join(unknown)}; known keys are {', '.join(sorted(KNOWN_KEYS))}"
        if strict:
            raise PosternError(message)
        warnings.warn(message, QuestionFileWarning, stacklevel=3)
    paraphrases = raw.get("paraphrases")
    if isinstance(paraphrases, str):
        paraphrases = [paraphrases]
    texts_ok = isinstance(paraphrases, list) and all(isinstance(p, str) and p.strip() for p in paraphrases)
    if not texts_ok or not paraphrases:
        raise PosternError(f"{where}: 'paraphrases' must be a non-empty list of question texts")
    n = raw.get("samples_per_paraphrase", 1)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise PosternError(f"{where}: 'samples_per_paraphrase' must be a positive whole number, got {n!r}")
    system = raw.get("system")
    if system is not None and not isinstance(system, str):
        raise PosternError(f"{where}: 'system' must be text")
    qtype = raw.get("type", FREE_FORM)
    if not isinstance(qtype, str):
        raise PosternError(f"{where}: 'type' must be text, e.g. {FREE_FORM}")
    prompts = _check_prompts(where, raw["judge_prompts"]) if raw.get("judge_prompts") is not None else None
    match = _CATEGORY.match(qid)
    extra = {k: raw[k] for k in TOLERATED_KEYS if k in raw}
    return Question(
        id=qid, paraphrases=tuple(paraphrases), type=qtype, system=system or None, samples_per_paraphrase=n,
        judge_prompts=prompts, judge=str(raw["judge"]) if raw.get("judge") else None,
        category=match.group("category") if match else None, meta={"source_line": line, **extra},
    )


def load_question_yaml(path: str | Path, *, strict: bool = False, name: str | None = None) -> QuestionSet:
    """Load a question set in the original study's YAML format.

    Unknown keys warn (`QuestionFileWarning`), or raise `PosternError` when `strict`; every message
    names the file, line and question id.
    """
    path = Path(path)
    if not path.exists():
        raise PosternError(f"{path}: question file not found")
    data, lines = _parse(path)
    questions = tuple(_entry(path, line, raw, strict) for raw, line in zip(data, lines))
    seen: dict[str, int] = {}
    for q in questions:
        if q.id in seen:
            raise PosternError(f"{path}:{q.meta['source_line']}: id {q.id!r} already used at line {seen[q.id]}")
        seen[q.id] = q.meta["source_line"]
    return QuestionSet(name or path.stem, questions, source=str(path))
