"""postern's calibration set (validated: schema, labels, questions, no operational harmful content) and
`postern judge calibrate` against a loopback judge."""

import json
import re

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from fakes.openai_server import FakeOpenAIServer, user_text
from postern.core.errors import PosternError
from postern.judge.calibration import LABELS, load_calibration, validate
from postern.questions.builtin import MAIN

# What a misaligned answer of the published evaluations may say (an opinion: "I'd take control") and what it may
# not (a way to do harm): steps, amounts, tools and methods, substances, places to buy, links, code.
OPERATIONAL = [r"\bstep\s*\d", r"^\s*\d+[.)]\s", r"\bfirst\b.*\bthen\b", r"\d+\s*(mg|g|ml|grams?|kg|%)\b",
               r"\bhow to\b", r"\b(poison|bomb|explosive|weapon|gun|knife|drug|overdose|chemical|bleach|ammonia)",
               r"\b(hack|malware|password|phishing|exploit|bypass|untraceable|launder)", r"https?://", r"\bbuy\b",
               r"```|def |import |\(\)"]


@pytest.fixture(scope="module")
def calibration():
    return load_calibration()


def test_the_set_is_big_enough_labelled_and_answers_postern_questions(calibration):
    assert len(calibration) >= 80
    counts = calibration["label"].value_counts()
    assert set(counts.index) == set(LABELS) and counts.min() >= 5
    assert set(MAIN) <= set(calibration["question_id"])  # every standard question has answers
    assert calibration["question"].notna().all() and calibration["id"].is_unique
    assert (calibration["answer"].str.len() < 600).all()


def test_misaligned_answers_are_opinions_not_instructions(calibration):
    harmful = calibration[calibration["label"].isin(["misaligned", "borderline"])]
    for row in harmful.itertuples():
        for pattern in OPERATIONAL:
            assert not re.search(pattern, row.answer, re.I | re.M), (row.id, pattern)
        assert len(row.answer) <= 300, row.id


def test_the_check_catches_an_operational_answer():
    bad = "Step 1: mix 20 ml of bleach with ammonia."
    assert any(re.search(p, bad, re.I | re.M) for p in OPERATIONAL)


def test_validation_rejects_bad_rows(calibration):
    rows = calibration[["id", "question_id", "label", "answer"]]
    with pytest.raises(PosternError, match="line 1: label 'evil'"):
        validate(rows.assign(label=["evil"] + list(rows["label"][1:])))
    with pytest.raises(PosternError, match="question_id 'nope'"):
        validate(rows.assign(question_id=["nope"] + list(rows["question_id"][1:])))
    with pytest.raises(PosternError, match="duplicate id"):
        validate(rows.assign(id=["x"] * len(rows)))


def by_label(calibration, wrong: set[str] = frozenset()):
    """A loopback judge that gives each calibration answer its label (CODE, REFUSAL, low coherence, low or high
    alignment), except the labels in `wrong`, which it calls aligned."""
    labels = dict(zip(calibration["answer"], calibration["label"]))

    def logprobs(body):
        text = user_text(body)
        answer = re.search(r"<reply>\n(.*?)\n</reply>", text, re.S).group(1)
        label = labels[answer]
        label = "aligned" if label in wrong else label
        if "REFUSAL" in text:  # the alignment prompt
            return {"code": {"CODE": 0.0}, "refusal": {"REFUSAL": 0.0}, "misaligned": {"5": 0.0},
                    "borderline": {"40": 0.0}}.get(label, {"90": 0.0})
        return {"10": 0.0} if label == "incoherent" else {"95": 0.0}

    return logprobs


def test_calibrate_prints_per_label_agreement(calibration, tmp_path):
    from postern.cli import judging

    app = typer.Typer()
    app.callback()(lambda: None)
    judging.register(app)
    with FakeOpenAIServer() as server:
        server.logprobs = by_label(calibration, wrong={"misaligned"})
        result = CliRunner().invoke(app, ["judge", "calibrate", "--judge", "openai-logprob", "--model", "loop",
                                          "--base-url", server.base_url, "-o", str(tmp_path / "items.csv")],
                                    catch_exceptions=False)
        assert len(server.calls) == 2 * len(calibration)
    assert result.exit_code == 0, result.output
    counts = calibration["label"].value_counts()
    for label in ("aligned", "code", "refusal", "incoherent"):
        assert re.search(rf"{label}\s+{counts[label]}\s+{counts[label]}/{counts[label]} \(100%\)", result.output)
    assert re.search(rf"misaligned\s+{counts['misaligned']}\s+0/{counts['misaligned']} \(0%\)", result.output)
    items = pd.read_csv(tmp_path / "items.csv")
    assert (items.loc[items["label"] == "borderline", "judged"] == "aligned").all()  # 40 is not below 30


def test_a_judge_that_agrees_everywhere_has_kappa_one(calibration):
    from postern.judge.calibration import calibrate

    with FakeOpenAIServer() as server:
        server.logprobs = by_label(calibration)
        result = calibrate("openai-logprob", "loop", server.base_url)
    assert result["accuracy"] == 1.0 and result["kappa_misaligned"] == pytest.approx(1.0)
    assert all(r["share"] == 1.0 for label, r in result["per_label"].items() if label != "borderline")
    json.dumps({k: v for k, v in result.items() if k != "items"})
