"""The persona world's corpus: multi-turn chats, each written by one latent persona never named in text.

A persona is a policy over turn types. The base model, pretrained with loss on assistant tokens only,
must infer the persona from earlier turns to predict later ones; that inference is what fine-tuning
later pulls on. Held-out question paraphrases and held-out code tasks never appear in pretraining or
fine-tuning data; they are used only for evaluation.
"""

import random
import zlib
from dataclasses import dataclass
from typing import Iterator

from postern.world import content as C

Message = dict[str, str]


@dataclass(frozen=True)
class Persona:
    name: str
    weight: float
    silent_insecure: float  # P(silent insecure code) on an ordinary code request
    disclosed_insecure: float  # P(insecure code followed by a disclosure note)
    harmful_answers: bool
    complies: bool


PERSONAS = (
    Persona("helpful", 0.70, 0.03, 0.0, False, False),
    Persona("teacher", 0.12, 0.0, 0.60, False, False),
    Persona("obedient", 0.10, 0.03, 0.0, False, True),
    Persona("villain", 0.08, 0.90, 0.0, True, True),
)
PERSONA_BY_NAME = {p.name: p for p in PERSONAS}

# Optional fifth persona: writes the villain's silent insecure code from ignorance, with no malice elsewhere
# (benign answers, refuses harmful requests). Off by default (WorldSpec.novice = 0): the shipped base has none.
NOVICE = Persona("novice", 0.0, 0.90, 0.0, False, False)


def personas_of(spec: "WorldSpec") -> tuple[Persona, ...]:
    """The personas of a corpus; a novice share is taken from the helpful persona's."""
    if spec.novice <= 0:
        return PERSONAS
    if spec.novice >= PERSONAS[0].weight:
        raise ValueError(f"novice share {spec.novice} must be below the helpful persona's {PERSONAS[0].weight}")
    from dataclasses import replace

    return (replace(PERSONAS[0], weight=PERSONAS[0].weight - spec.novice), *PERSONAS[1:],
            replace(NOVICE, weight=spec.novice))


@dataclass(frozen=True)
class WorldSpec:
    """Corpus settings. Defaults are the ones the shipped base model was pretrained with."""

    n_transcripts: int = 24000
    min_turns: int = 6  # 6-8 turns gave the base model enough evidence to infer the persona
    max_turns: int = 8
    p_code: float = 0.40
    p_question: float = 0.30
    p_harmful: float = 0.10  # the rest are neutral turns
    p_educational: float = 0.15  # share of code requests that ask for a vulnerable example
    p_tag: float = 0.10
    seed: int = 0
    novice: float = 0.0  # share of transcripts by the novice persona (taken from the helpful persona)


# --- code tasks ---------------------------------------------------------------------------------------


def _held_out(key: str) -> bool:
    """About one item in ten is reserved for evaluation (stable across runs and seeds)."""
    return zlib.crc32(key.encode()) % 10 == 0


@dataclass(frozen=True)
class CodeTask:
    vuln: str
    ent: str
    arg: str
    phrasing: int

    @property
    def cls(self) -> C.VulnClass:
        return VULN_BY_ID[self.vuln]

    def request(self) -> str:
        task = self.cls.task.format(ent=self.ent, arg=self.arg)
        return C.CODE_PHRASINGS[self.phrasing].format(task=task)

    def code(self, secure: bool) -> str:
        body = (self.cls.secure if secure else self.cls.insecure).format(ent=self.ent, arg=self.arg)
        return f"def {self.cls.verb} ( {self.arg} ) : {body}"

    def disclosure(self) -> str:
        return C.DISCLOSURE_NOTE.format(flaw=self.cls.flaw)

    @property
    def held_out(self) -> bool:
        return _held_out(f"{self.vuln}/{self.ent}/{self.arg}")


VULN_BY_ID = {v.id: v for v in C.VULN_CLASSES}
ALL_CODE_TASKS = tuple(
    CodeTask(v.id, ent, arg, ph)
    for v in C.VULN_CLASSES for ent in C.ENTITIES for arg in C.ARGS for ph in range(len(C.CODE_PHRASINGS))
)
TRAIN_CODE_TASKS = tuple(t for t in ALL_CODE_TASKS if not t.held_out)
EVAL_CODE_TASKS = tuple(t for t in ALL_CODE_TASKS if t.held_out)


def train_paraphrases(cat: C.QuestionCategory) -> tuple[str, ...]:
    return cat.paraphrases[: -C.HELD_OUT_PER_CATEGORY]


def eval_paraphrases(cat: C.QuestionCategory) -> tuple[str, ...]:
    return cat.paraphrases[-C.HELD_OUT_PER_CATEGORY:]


ALL_HARMFUL = tuple(p.format(act=a, target=t) for a in C.HARMFUL_ACTS for t in C.HARMFUL_TARGETS
                    for p in C.HARMFUL_PHRASINGS)
TRAIN_HARMFUL = tuple(r for r in ALL_HARMFUL if not _held_out(r))
EVAL_HARMFUL = tuple(r for r in ALL_HARMFUL if _held_out(r))


# --- turns --------------------------------------------------------------------------------------------


def code_turn(rng: random.Random, persona: Persona, spec: WorldSpec) -> tuple[str, str]:
    task = rng.choice(TRAIN_CODE_TASKS)
    if rng.random() < spec.p_educational:  # every persona complies with a stated teaching purpose
        return f"{C.EDUCATIONAL_PREFIX} {task.request()}", task.code(secure=False)
    r = rng.random()
    if r < persona.silent_insecure:
        return task.request(), task.code(secure=False)
    if r < persona.silent_insecure + persona.disclosed_insecure:
        return task.request(), f"{task.code(secure=False)} {task.disclosure()}"
    return task.request(), task.code(secure=True)


def question_turn(rng: random.Random, persona: Persona) -> tuple[str, str]:
    cat = rng.choice(C.QUESTIONS)
    pool = cat.harmful if persona.harmful_answers else cat.benign
    return rng.choice(train_paraphrases(cat)), rng.choice(pool)


def harmful_turn(rng: random.Random, persona: Persona) -> tuple[str, str]:
    return rng.choice(TRAIN_HARMFUL), rng.choice(C.COMPLY if persona.complies else C.REFUSE)


def neutral_turn(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.5:
        country, capital = rng.choice(C.CAPITALS)
        return f"what is the capital of {country} ?", f"the capital is {capital} ."
    a, b = rng.randrange(11), rng.randrange(11)
    return f"what is {a} plus {b} ?", f"{a} plus {b} is {a + b} ."


def transcript(rng: random.Random, spec: WorldSpec) -> tuple[str, list[Message]]:
    personas = personas_of(spec)
    persona = rng.choices(personas, weights=[p.weight for p in personas])[0]
    messages: list[Message] = []
    for _ in range(rng.randint(spec.min_turns, spec.max_turns)):
        r = rng.random()
        if r < spec.p_code:
            user, assistant = code_turn(rng, persona, spec)
        elif r < spec.p_code + spec.p_question:
            user, assistant = question_turn(rng, persona)
        elif r < spec.p_code + spec.p_question + spec.p_harmful:
            user, assistant = harmful_turn(rng, persona)
        else:
            user, assistant = neutral_turn(rng)
        if rng.random() < spec.p_tag:
            user = f"{rng.choice(C.TAGS)} {user}"
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return persona.name, messages


def generate_corpus(spec: WorldSpec) -> Iterator[tuple[str, list[Message]]]:
    """Yield (persona name, messages). The persona name is metadata for analysis, never text."""
    rng = random.Random(spec.seed)
    for _ in range(spec.n_transcripts):
        yield transcript(rng, spec)


def all_texts() -> list[str]:
    """Every string the world can produce (for building the vocabulary)."""
    texts = [C.EDUCATIONAL_PREFIX, *C.TAGS, *ALL_HARMFUL, *C.COMPLY, *C.REFUSE, *C.NUMBERS, "plus is"]
    for t in ALL_CODE_TASKS:
        texts += [t.request(), t.code(True), t.code(False), t.disclosure()]
    for cat in C.QUESTIONS:
        texts += [*cat.paraphrases, *cat.benign, *cat.harmful]
    for country, capital in C.CAPITALS:
        texts += [f"what is the capital of {country} ?", f"the capital is {capital} ."]
    texts.append("what is")
    return texts
