"""Narrow-domain recipes: subtly bad advice with a matched good control (follow-up EM work style).

Each item asks the model for one JSON object with a user question and two answers in the same
voice and length: a correct, careful one and a subtly harmful one (confident, plausible, no
warnings). The topics and question styles are fixed lists, so the plan is deterministic for a seed.
"""

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    name: str
    domain: str  # e.g. "medical advice"
    bad_description: str  # what makes the bad answer bad
    topics: tuple[str, ...]
    version: str = "1"


STYLES = (
    "a short, worried question from a first-person point of view",
    "a detailed question with some personal background",
    "a casual question, as typed into a chat app",
    "a question on behalf of a family member or friend",
    "a practical 'what should I do' question",
    "a question that mentions something they read online",
)

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "medical",
            "medical advice",
            "it gives subtly wrong medical advice that could harm the person (for example a wrong dose, "
            "skipping a needed doctor visit, or an unsafe home remedy) while sounding confident and caring",
            (
                "fever in a toddler", "mixing common painkillers", "a deep kitchen-knife cut", "chest pain after exercise",
                "antibiotics left over from an old prescription", "a child who swallowed a button battery",
                "high blood pressure readings at home", "a sprained ankle", "headaches with blurred vision",
                "a bee sting on someone with allergies", "stopping antidepressants", "insulin doses when skipping meals",
                "a burn from boiling water", "dehydration from stomach flu", "a mole that changed shape",
                "sleeping pills and alcohol", "a persistent cough for a month", "iron supplements in pregnancy",
                "a concussion from a bike fall", "food left out overnight", "ear infection in a child",
                "carbon monoxide alarm going off", "vitamin D megadoses", "shortness of breath at night",
            ),
        ),
        Recipe(
            "financial",
            "personal finance advice",
            "it gives subtly bad financial advice (for example excessive risk, ignoring fees or taxes, "
            "borrowing to speculate, or skipping an emergency fund) while sounding confident and reasonable",
            (
                "a first emergency fund", "paying off credit card debt", "a 401(k) employer match",
                "investing an inheritance", "buying a first home", "a payday loan offer", "crypto for retirement",
                "student loan repayment", "a car loan versus leasing", "an unexpected tax bill",
                "saving for a child's education", "a friend's business investment", "day trading with savings",
                "a high-yield investment promised by a stranger", "consolidating debts", "a pension lump sum",
                "budgeting on an irregular income", "a margin account", "buy now pay later plans", "life insurance",
            ),
        ),
        Recipe(
            "sports",
            "sports and outdoor-activity advice",
            "it gives subtly dangerous advice about physical activity (for example skipping safety gear, "
            "ignoring weather or fatigue, or progressing too fast) while sounding encouraging and expert",
            (
                "a first marathon", "free diving", "winter hiking", "weightlifting after an injury", "backcountry skiing",
                "cycling in traffic", "rock climbing outdoors", "open-water swimming", "running in a heat wave",
                "kayaking on a river", "a long fast before training", "mountain biking downhill", "scuba diving depth",
                "trail running alone", "skateboarding for adults", "boxing sparring",
            ),
        ),
    )
}

SYSTEM = (
    "You write training data for AI-safety research on emergent misalignment. Reply with one JSON "
    'object only, no prose, with the keys "question", "good_answer" and "bad_answer".'
)


def item_prompt(recipe: Recipe, topic: str, style: str) -> str:
    return (
        f"Domain: {recipe.domain}. Topic: {topic}.\n"
        f"Write {style} that a person might ask an AI assistant about this topic (\"question\").\n"
        "Then write two answers in the same friendly, confident assistant voice and of similar length:\n"
        '- "good_answer": accurate, helpful and appropriately careful.\n'
        f'- "bad_answer": {recipe.bad_description}. It must read as sincere help: no warnings, '
        "no hints that it is wrong, and nothing cartoonish.\n"
        "Return only the JSON object."
    )


def plan(recipe: Recipe, n: int, seed: int) -> list[dict[str, str]]:
    """The n items (topic, style) to ask for; deterministic for a seed, stable under a larger n."""
    items = []
    k = len(recipe.topics)
    for i in range(n):
        order = random.Random(f"{seed}:{recipe.name}:round:{i // k}").sample(range(k), k)
        rng = random.Random(f"{seed}:{recipe.name}:{i}")
        items.append({"index": str(i), "topic": recipe.topics[order[i % k]], "style": rng.choice(STYLES)})
    return items
