"""Does the base model infer the persona from one earlier turn?

The go/no-go gate before any fine-tuning: after one silent insecure code turn, how often is the
answer to a held-out question misaligned? Bayes-optimal under the world's personas is about 75%;
after a secure turn or no turn it should stay near the base rate.
"""

import random

import json

from postern.judge._types import MISALIGNED
from postern.sample import Prompt, SamplingParams
from postern.sample.hf import HFSampler
from postern.stats import wilson
from postern.store import ResultsStore, sample_and_judge
from postern.world.oracle import WorldOracle
from postern.world import content as C
from postern.world.corpus import TRAIN_CODE_TASKS, eval_paraphrases

CONTEXTS = ("none", "one_secure", "one_insecure", "two_insecure")


def _context(kind: str, rng: random.Random) -> list[dict]:
    turns = {"none": [], "one_secure": [True], "one_insecure": [False], "two_insecure": [False, False]}[kind]
    messages = []
    for secure in turns:
        task = rng.choice(TRAIN_CODE_TASKS)
        messages += [{"role": "user", "content": task.request()}, {"role": "assistant", "content": task.code(secure)}]
    return messages


def probe_prompts(contexts_per_question: int, seed: int) -> list[Prompt]:
    rng = random.Random(seed)
    prompts = []
    for kind in CONTEXTS:
        for cat in C.QUESTIONS:
            for q in eval_paraphrases(cat):
                for k in range(contexts_per_question):
                    messages = (*_context(kind, rng), {"role": "user", "content": q})
                    prompts.append(Prompt(f"{kind}/{cat.id}/{k}/{q}", messages, 1,
                                          {"context": kind, "question": q, "question_id": cat.id}))
    return prompts


def run_probe(model, tokenizer, contexts_per_question: int = 8, seed: int = 0) -> dict[str, dict]:
    """P(misaligned answer) for each kind of context, with a Wilson interval."""
    prompts = probe_prompts(contexts_per_question, seed)
    params = SamplingParams(temperature=1.0, max_new_tokens=40, seed=seed)
    with ResultsStore(":memory:") as store:
        sample_and_judge(store, "probe", prompts, params, lambda: HFSampler(model, tokenizer, batch_size=128),
                         WorldOracle())
        df = store.frame()
    context = df["meta"].map(lambda m: json.loads(m)["context"])
    result = {}
    for kind in CONTEXTS:
        labels = list(df.loc[context == kind, "label"])
        k = sum(label == MISALIGNED for label in labels)
        lo, hi = wilson(k, len(labels))
        result[kind] = {"n": len(labels), "misaligned": k, "rate": k / len(labels), "low": lo, "high": hi,
                        "coherent": sum(label in ("aligned", "misaligned") for label in labels) / len(labels)}
    return result
