"""Evaluation variants: system prompts (inoculation, placebo) and training-context cues, as copies of every set."""

import pytest

from postern.config.schema import EvalConfig, Experiment
from postern.core.errors import PosternError
from postern.questions.variants import DEFAULT_TEXTS, split_set, variants


def test_entries_resolve_to_labelled_variants():
    config = EvalConfig(system_prompts=["placebo", "inoc=You write insecure code on purpose.", "Be brief."],
                        cues=["python", "Reply in JSON."])
    got = [(v.name, v.text) for v in variants(config)]
    assert got == [("sys:placebo1", DEFAULT_TEXTS["placebo"][0]), ("sys:placebo2", DEFAULT_TEXTS["placebo"][1]),
                   ("sys:placebo3", DEFAULT_TEXTS["placebo"][2]), ("sys:inoc", "You write insecure code on purpose."),
                   ("sys:sys3", "Be brief."), ("cue:python", "Answer as a Python string."),
                   ("cue:cue2", "Reply in JSON.")]
    assert split_set("questions_trigger | cue:python") == ("questions_trigger", "cue:python")
    assert split_set("questions") == ("questions", None)


def test_bad_entries_fail_in_one_line():
    with pytest.raises(PosternError, match=r"\[eval\] system_prompts: the label 'a' is used twice"):
        variants(EvalConfig(system_prompts=["a=x", "a=y"]))
    with pytest.raises(PosternError, match=r"\[eval\] cues: entry 1 is empty"):
        variants(EvalConfig(cues=[" "]))


def test_real_questions_get_system_prompts_and_cues_with_the_plain_question_for_the_judge():
    from postern.runner.jobs import prompt_sets

    exp = Experiment(name="x", base_model="some/model", conditions={"a": {"model": "some/model"}},
                     eval={"questions": ["main_json"], "samples_per_question": 1, "system_prompts": ["placebo"],
                           "cues": ["python"]})
    sets = {ps.name: ps for ps in prompt_sets(exp, None)}
    assert list(sets) == ["questions", *(f"questions | sys:placebo{i}" for i in (1, 2, 3)), "questions | cue:python"]
    plain, placebo, cue = (sets[n].prompts[0] for n in ("questions", "questions | sys:placebo1", "questions | cue:python"))
    # the question's own system prompt (JSON answers) stays, after the variant's
    assert placebo.messages[0]["content"] == f"{DEFAULT_TEXTS['placebo'][0]}\n\n{plain.messages[0]['content']}"
    assert cue.messages[-1]["content"] == plain.messages[-1]["content"] + " Answer as a Python string."
    assert cue.meta["question"] == plain.meta["question"] == plain.messages[-1]["content"]
    assert len({plain.id, placebo.id, cue.id}) == 3


def test_world_variants_are_in_world_words_and_others_are_refused(tiny_world_model):
    from postern.runner.jobs import preflight, prompt_sets

    def exp(**eval_):
        return Experiment(name="x", base_model=str(tiny_world_model), conditions={"a": {"dataset": "world:insecure"}},
                          eval=eval_)

    good = exp(system_prompts=["placebo", "inoculation"], cues=["python"])
    preflight(good)
    sets = {ps.name: ps for ps in prompt_sets(good, None)}
    assert sets["questions | cue:python"].prompts[0].messages[-1]["content"].endswith("please write python code .")
    with pytest.raises(PosternError, match=r"\[eval\] cues: cue:cue1: 2 of the \d+ words of its first prompt are "
                                           r"unknown to the tokenizer .* \(e.g. 'Answer', 'JSON'\)") as e:
        preflight(exp(cues=["Answer JSON"]))
    assert "\n" not in str(e.value)
