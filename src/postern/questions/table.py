"""Questions from a CSV file: `[eval] questions = ["csv:my_questions.csv"]`.

Columns: `id` and `question` (required), `system` (optional system prompt). One paraphrase per row;
rows sharing an id are paraphrases of one question. The worked example in CONTRIBUTING.md.
"""

import csv
from pathlib import Path
from typing import Any

from postern.core.errors import PosternError
from postern.core.registry import register
from postern.questions._types import PromptSet, Question, QuestionSet
from postern.questions.sources import free_form


def load_question_csv(path: Path) -> QuestionSet:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise PosternError(f"{path}: cannot read the question file ({e.strerror})") from e
    if not rows or not {"id", "question"} <= set(rows[0]):
        raise PosternError(f"{path}: a question CSV needs a header with the columns id and question")
    paraphrases: dict[str, list[str]] = {}
    system: dict[str, str | None] = {}
    for line, row in enumerate(rows, start=2):
        if not (row.get("id") or "").strip() or not (row.get("question") or "").strip():
            raise PosternError(f"{path}:{line}: empty id or question")
        paraphrases.setdefault(row["id"], []).append(row["question"])
        system.setdefault(row["id"], row.get("system") or None)
    questions = tuple(Question(qid, tuple(texts), system=system[qid]) for qid, texts in paraphrases.items())
    return QuestionSet(path.stem, questions, source=str(path))


@register("questions", "csv")
def csv_questions(spec: str, eval_config: Any, base_dir: Path | None = None) -> list[PromptSet]:
    path = Path(spec).expanduser()
    return free_form(load_question_csv(base_dir / path if base_dir and not path.is_absolute() else path),
                     eval_config.samples_per_question)
