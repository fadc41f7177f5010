"""LLM-backed recipes for narrow-domain datasets (subtly bad advice with a matched good control).

Optional: needs the `openai` client (`pip install postern[api]`) and any OpenAI-compatible
endpoint. Answers are cached next to the output, so runs resume where they stopped.
"""

from postern.data.recipes.specs import RECIPES, Recipe, plan

__all__ = ["RECIPES", "Recipe", "plan", "run_recipe"]


def run_recipe(*args, **kwargs):  # type: ignore[no-untyped-def]
    """See `postern.data.recipes.llm.run_recipe` (imported lazily: it needs `openai`)."""
    from postern.data.recipes.llm import run_recipe as _run

    return _run(*args, **kwargs)
