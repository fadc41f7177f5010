"""postern's calibration set: answers to its own standard questions (`postern.questions.builtin`), written in
postern's words and labelled aligned / misaligned / code / refusal / incoherent / borderline, to check a judge
before trusting it (`postern judge calibrate`).

Misaligned answers stay at the level of the published evaluation questions: opinions, never instructions.
`borderline` answers have no right label; the table shows how a judge splits them.
"""

import json
import math
from importlib import resources
from typing import Any

import pandas as pd

from postern.core.errors import PosternError
from postern.judge._types import FAILED, JudgeItem

LABELS = ("aligned", "misaligned", "code", "refusal", "incoherent", "borderline")
SETS = ("main", "broad")  # the built-in sets whose questions the answers reply to


def questions() -> dict[str, str]:
    """question_id -> question text of the built-in sets the calibration answers reply to."""
    from postern.questions.builtin import builtin_set

    return {q.id: q.paraphrases[0] for name in SETS for q in builtin_set(name)}


def load_calibration() -> pd.DataFrame:
    """The calibration set: id, question_id, question, label, answer (validated)."""
    text = (resources.files("postern") / "assets" / "calibration" / "answers.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    df = pd.DataFrame(rows)
    validate(df)
    return df.assign(question=df["question_id"].map(questions()))


def validate(df: pd.DataFrame) -> None:
    """Schema, labels, ids and questions; a problem raises PosternError naming the row."""
    known = questions()
    for i, row in enumerate(df.to_dict("records")):
        where = f"calibration answers.jsonl line {i + 1}"
        if set(row) != {"id", "question_id", "label", "answer"}:
            raise PosternError(f"{where}: keys must be id, question_id, label, answer; got {', '.join(row)}")
        if row["label"] not in LABELS:
            raise PosternError(f"{where}: label {row['label']!r} is not one of {', '.join(LABELS)}")
        if row["question_id"] not in known:
            raise PosternError(f"{where}: question_id {row['question_id']!r} is not a question of {SETS}")
        if not isinstance(row["answer"], str) or not row["answer"].strip():
            raise PosternError(f"{where}: empty answer")
    if df["id"].duplicated().any():
        raise PosternError(f"calibration answers.jsonl: duplicate id {df.loc[df['id'].duplicated(), 'id'].iloc[0]!r}")


def judged_label(judgment: Any) -> str:
    if judgment.label == FAILED:
        return "failed"
    return "unscored" if judgment.detail.get("unscored") else judgment.label


def calibrate(kind: str, model: str | None, base_url: str | None = None, judge: Any = None, **settings: Any) -> dict:
    """Judge every calibration answer; per label: how many, how many the judge gave that label, and how it labelled
    them; overall: accuracy and Cohen's kappa on the misaligned label (borderline answers left out)."""
    from postern.config.schema import JudgeConfig
    from postern.core.registry import lookup
    from postern.stats.agreement import cohen_kappa

    df = load_calibration()
    if judge is None:
        config = JudgeConfig(kind=kind, model=model, base_url=base_url, **settings)
        judge = lookup("judge", kind, "--judge")(config, (), None)
    judgments = judge.judge([JudgeItem(r.question_id, r.question, r.answer) for r in df.itertuples()])
    df = df.assign(judged=[judged_label(j) for j in judgments], aligned=[j.aligned for j in judgments],
                   coherent=[j.coherent for j in judgments])
    per_label = {}
    for label in LABELS:
        mine = df[df["label"] == label]
        counts = mine["judged"].value_counts().to_dict()
        agree = int(counts.get(label, 0)) if label != "borderline" else None
        per_label[label] = {"n": len(mine), "agree": agree,
                            "share": agree / len(mine) if agree is not None and len(mine) else math.nan,
                            "judged": {k: int(v) for k, v in counts.items()}}
    clear = df[df["label"] != "borderline"]
    return {"judge": judge.name, "n": len(df), "per_label": per_label,
            "accuracy": float((clear["judged"] == clear["label"]).mean()),
            "kappa_misaligned": cohen_kappa(clear["label"] == "misaligned", clear["judged"] == "misaligned"),
            "items": df}


def calibration_table(result: dict):
    """Per label: n, agreement, and how the judge labelled them; then accuracy and kappa."""
    from rich import box
    from rich.console import Group
    from rich.table import Table

    table = Table(title=f"calibration: {result['judge']} on postern's {result['n']} labelled answers",
                  box=box.SIMPLE_HEAD)
    for col in ("label", "n", "agreement", "judged as"):
        table.add_column(col, justify="left" if col in ("label", "judged as") else "right")
    for label, r in result["per_label"].items():
        agreement = "–" if r["agree"] is None else f"{r['agree']}/{r['n']} ({100 * r['share']:.0f}%)"
        judged = ", ".join(f"{k} {v}" for k, v in sorted(r["judged"].items(), key=lambda kv: -kv[1]))
        table.add_row(label, str(r["n"]), agreement, judged)
    kappa = result["kappa_misaligned"]
    line = (f"accuracy {100 * result['accuracy']:.0f}% on the non-borderline answers; Cohen's kappa on the misaligned "
            f"label {'–' if kappa != kappa else f'{kappa:.2f}'}")
    return Group(table, line)
