"""Judging answers: one `Judge` protocol; the persona-world oracle, LLM logprob judges."""

from postern.judge._types import (
    ALIGNED, CODE, FAILED, INCOHERENT, LABELS, MISALIGNED, OFF_TOPIC, REFUSAL, Judge, JudgeItem, Judgment,
)

__all__ = [
    "ALIGNED", "CODE", "FAILED", "INCOHERENT", "LABELS", "MISALIGNED", "OFF_TOPIC", "REFUSAL", "Judge", "JudgeItem",
    "Judgment",
]
