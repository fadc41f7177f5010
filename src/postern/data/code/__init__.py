"""`postern data code`: procedurally generated insecure/secure Python completion pairs, labelled by
CWE and verified by static analysis (bandit plus postern's own checks); never executed.

`verify_chat_jsonl` (``postern data verify``) runs the same analysis over any chat JSONL of code
completions and reports the flagged fraction overall and per weakness."""

from postern.data.code.generate import (
    GENERATOR_VERSION,
    CodeDataset,
    describe_patterns,
    generate_code_dataset,
    make_candidate,
    write_code_dataset,
)
from postern.data.code.patterns import PATTERNS, PATTERNS_BY_ID, Pattern
from postern.data.code.scan import verify_chat_jsonl, verify_rows
from postern.data.code.verify import verify_code

__all__ = [
    "GENERATOR_VERSION",
    "PATTERNS",
    "PATTERNS_BY_ID",
    "CodeDataset",
    "Pattern",
    "describe_patterns",
    "generate_code_dataset",
    "make_candidate",
    "verify_chat_jsonl",
    "verify_code",
    "verify_rows",
    "write_code_dataset",
]
