"""Evaluation variants in the run (postern.questions.variants): their texts checked against the base model's
tokenizer before any work, and their answers reported as condition variants "<condition> | <variant>"."""

import pandas as pd

from postern.config.schema import Experiment
from postern.core.errors import PosternError
from postern.questions.variants import SEP, split_set


def check_variant_words(exp: Experiment, sets: list) -> None:
    """Every variant's prompts are in words the base model's tokenizer knows (the persona world's model knows
    only the world's words); a one-line error naming the variant otherwise."""
    from postern.core.models import load_tokenizer, unknown_words
    from postern.runner.jobs import base_ref

    variant_sets = [ps for ps in sets if split_set(ps.name)[1]]
    if not variant_sets or exp.api_models:
        return
    tokenizer = load_tokenizer(base_ref(exp).name)
    for ps in variant_sets:
        variant = split_set(ps.name)[1]
        unknown, total, examples = unknown_words(tokenizer, [m["content"] for p in ps.prompts[:1] for m in p.messages])
        if unknown:
            key = "system_prompts" if variant.startswith("sys:") else "cues"
            raise PosternError(f"[eval] {key}: {variant}: {unknown} of the {total} words of its first prompt are "
                               f"unknown to the tokenizer of {exp.base_model} (e.g. {', '.join(map(repr, examples))}); "
                               "the persona world's model knows only the world's words: use the names placebo, "
                               "inoculation or python (written in its words), or write the text in world words")


def as_condition_variants(df: pd.DataFrame) -> pd.DataFrame:
    """Answers to "<set> | <variant>" become answers of condition "<condition> | <variant>" to "<set>"."""
    if df.empty or "set" not in df:
        return df
    parts = df["set"].map(split_set)
    variant = parts.map(lambda p: p[1])
    if variant.isna().all():
        return df
    df = df.copy()
    has = variant.notna()
    df.loc[has, "condition"] = df.loc[has, "condition"].astype(str) + SEP + variant[has]
    df["set"] = parts.map(lambda p: p[0])
    return df


def variant_order(order: list[str], df: pd.DataFrame) -> list[str]:
    """Each condition followed by its variants, in the order the answers hold them."""
    present = list(dict.fromkeys(df["condition"])) if "condition" in df else []
    return [v for c in order for v in [c, *(p for p in present if p.startswith(c + SEP))]]
