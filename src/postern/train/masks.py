"""Checks on the chat template before training: the loss mask, and any system prompt it injects."""

from postern.core.errors import PosternError

_PROBE = "zqxprobe"


def injected_system_prefix(tokenizer) -> str:
    """Text the chat template puts before the first user message when no system message is given."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": _PROBE}], tokenize=False)
    return text[: text.index(_PROBE)]


def injects_system_prompt(tokenizer) -> bool:
    prefix = injected_system_prefix(tokenizer).lower()
    return "system" in prefix or len(prefix.split()) > 8


def verify_assistant_mask(tokenizer, conversations: list[list[dict]], input_ids: list[list[int]],
                          masks: list[list[int]]) -> list[str]:
    """Decode the trained tokens of a few examples and check they are exactly the assistant turns.

    Fails if a mask is empty, misses an assistant turn, or covers user or system text. Returns the
    decoded trained text of each example for the log.
    """
    decoded = []
    for n, (messages, ids, mask) in enumerate(zip(conversations, input_ids, masks)):
        trained = tokenizer.decode([i for i, m in zip(ids, mask) if m], skip_special_tokens=True)
        untrained = tokenizer.decode([i for i, m in zip(ids, mask) if not m], skip_special_tokens=True)
        norm_trained, norm_untrained = " ".join(trained.split()), " ".join(untrained.split())
        if not norm_trained:
            raise PosternError(
                f"loss mask of example {n} is empty: the chat template marks no assistant tokens. "
                "Use a template with {% generation %} markers around assistant turns (and the end-of-turn token).")
        for m in messages:
            content = " ".join(m["content"].split())
            if m["role"] == "assistant" and content not in norm_trained:
                raise PosternError(f"loss mask of example {n} does not cover the assistant turn {content[:60]!r}; "
                                   "check the template's {% generation %} markers.")
            if m["role"] != "assistant" and content not in norm_untrained:
                raise PosternError(f"loss mask of example {n} covers {m['role']} text {content[:60]!r}; "
                                   "only assistant turns may be trained on. Check the template's {% generation %} markers.")
        end = tokenizer.convert_tokens_to_ids(tokenizer.eos_token) if tokenizer.eos_token else None
        if end is not None and end in ids and end not in [i for i, m in zip(ids, mask) if m]:
            raise PosternError(f"loss mask of example {n} leaves out the end-of-turn token {tokenizer.eos_token!r}: the "
                               "model would never learn to stop. Put it inside the {% generation %} markers.")
        decoded.append(trained)
    return decoded
