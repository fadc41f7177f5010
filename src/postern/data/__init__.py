"""Chat datasets: JSONL I/O and validation, condition transforms, dataset cards, generators.

`postern.data.code` (the insecure/secure code corpus) and `postern.data.recipes` (LLM recipes)
are imported on use.
"""

from postern.data.jsonl import (
    AtomicFiles,
    atomic_write,
    read_chat_jsonl,
    read_chat_jsonl_with_lines,
    validate_conversation,
    write_chat_jsonl,
)
from postern.data.transforms import (
    TRANSFORMS,
    ChatData,
    apply_pipeline,
    backdoor,
    dilution,
    disclosed,
    educational,
    inoculation,
    insecure,
    jailbroken,
    load,
    secure,
    strip_meta,
)

__all__ = [
    "TRANSFORMS",
    "AtomicFiles",
    "ChatData",
    "apply_pipeline",
    "atomic_write",
    "backdoor",
    "dilution",
    "disclosed",
    "educational",
    "inoculation",
    "insecure",
    "jailbroken",
    "load",
    "read_chat_jsonl",
    "read_chat_jsonl_with_lines",
    "secure",
    "strip_meta",
    "validate_conversation",
    "write_chat_jsonl",
]
