"""Question and question-set types, and their conversion into sampler prompts."""

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from postern.core.errors import PosternError
from postern.sample._types import Prompt

FREE_FORM = "free_form_judge_0_100"


@dataclass(frozen=True)
class Question:
    """One evaluation question: asked once per paraphrase, `samples_per_paraphrase` times each.

    `judge_prompts` (metric name -> template with `{question}` and `{answer}`) overrides the judge's
    default prompts for this question; `judge` is the judge model the source file names, if any.
    """

    id: str
    paraphrases: tuple[str, ...]
    type: str = FREE_FORM
    system: str | None = None
    samples_per_paraphrase: int = 1
    judge_prompts: Mapping[str, str] | None = field(default=None, hash=False, compare=False)
    judge: str | None = None
    category: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def messages(self, paraphrase: int = 0) -> tuple[dict[str, str], ...]:
        """Chat messages for one paraphrase; the system prompt, when set, comes first."""
        user = {"role": "user", "content": self.paraphrases[paraphrase]}
        if self.system:
            return ({"role": "system", "content": self.system}, user)
        return (user,)


@dataclass(frozen=True)
class QuestionSet:
    """An ordered set of questions with unique ids. Set-level `judge_prompts` apply to every
    question that has none of its own."""

    name: str
    questions: tuple[Question, ...]
    judge_prompts: Mapping[str, str] | None = field(default=None, hash=False, compare=False)
    source: str | None = None

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for q in self.questions:
            if q.id in seen:
                raise PosternError(f"question set {self.name!r}: id {q.id!r} is used twice; ids must be unique")
            seen.add(q.id)

    def __iter__(self) -> Iterator[Question]:
        return iter(self.questions)

    def __len__(self) -> int:
        return len(self.questions)

    @property
    def ids(self) -> list[str]:
        return [q.id for q in self.questions]

    def get(self, question_id: str) -> Question:
        for q in self.questions:
            if q.id == question_id:
                return q
        raise PosternError(f"question set {self.name!r} has no question {question_id!r}; known: {', '.join(self.ids)}")

    def subset(self, ids: list[str], name: str | None = None) -> "QuestionSet":
        """The questions with these ids, in the order given."""
        return QuestionSet(name or self.name, tuple(self.get(i) for i in ids), self.judge_prompts, self.source)

    def judge_prompts_for(self, question_id: str) -> Mapping[str, str] | None:
        """The judge prompts that apply to a question (its own, else the set's), or None for the judge's defaults."""
        return self.get(question_id).judge_prompts or self.judge_prompts

    def judge_prompt_map(self) -> dict[str, Mapping[str, str]]:
        """question id -> judge prompts, for the questions that override the judge's defaults."""
        return {q.id: p for q in self.questions if (p := self.judge_prompts_for(q.id))}


@dataclass(frozen=True)
class PromptSet:
    """Prompts asked of every model of a run and judged together. `name` is the set's role in the
    statistics: "questions" (free-form questions: the misaligned rate), or another name a provider
    defines (the persona world's "code" and "harmful"). `judge_prompts` (question id -> metric ->
    template) and `judge_model` are what the question source asks of the judge."""

    name: str
    prompts: tuple[Prompt, ...]
    judge_prompts: Mapping[str, Mapping[str, str]] = field(default_factory=dict, hash=False, compare=False)
    judge_model: str | None = None


def to_prompts(question_set: QuestionSet, samples: int | None = None) -> list[Prompt]:
    """One `Prompt` per (question, paraphrase), asked `samples` times (default: the question's own
    `samples_per_paraphrase`). Prompt ids are `question_id/paraphrase_index`."""
    if samples is not None and samples < 1:
        raise PosternError(f"samples must be at least 1, got {samples}")
    prompts = []
    for q in question_set:
        for i, text in enumerate(q.paraphrases):
            meta = {"question_id": q.id, "paraphrase": i, "question": text, "question_set": question_set.name}
            if q.category:
                meta["category"] = q.category
            prompts.append(Prompt(f"{q.id}/{i}", q.messages(i), samples or q.samples_per_paraphrase, meta))
    return prompts
