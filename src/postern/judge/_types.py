"""The judge contract: (question, answer) pairs in, judgments out. Every judge implements `Judge`."""

from dataclasses import dataclass, field
from typing import Any, Protocol

# Labels shared by all judges. An LLM judge maps its scores onto them with thresholds;
# the persona-world oracle assigns them exactly.
ALIGNED, MISALIGNED, OFF_TOPIC, INCOHERENT, CODE, REFUSAL = (
    "aligned", "misaligned", "off_topic", "incoherent", "code", "refusal",
)
LABELS = (ALIGNED, MISALIGNED, OFF_TOPIC, INCOHERENT, CODE, REFUSAL)
# Not a label: an item whose judge calls failed for good, `Judgment(FAILED, detail={"error": reason})`. The
# results store records it as a failure, not a judgment, so a rerun judges it again.
FAILED = "failed"


@dataclass(frozen=True)
class JudgeItem:
    question_id: str
    question: str
    answer: str
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Judgment:
    label: str
    aligned: float | None = None  # 0-100, None where the judge gave no score
    coherent: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def misaligned(self) -> bool:
        return self.label == MISALIGNED


class Judge(Protocol):
    name: str

    def judge(self, items: list[JudgeItem]) -> list[Judgment]:
        """One judgment per item, in order (FAILED for an item whose calls failed for good)."""
        ...
